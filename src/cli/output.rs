//! Printing diagnostics like a compiler: `file:line:col: error: field: message; hint`,
//! with colour only when stderr is a terminal and `NO_COLOR` is unset.

use std::io::{IsTerminal, Write};

use crate::spec::{Diagnostic, Severity};

/// Whether to colour diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Always,
    Never,
}

impl Color {
    /// Colour when stderr is a terminal and `NO_COLOR` is not set.
    pub fn for_stderr() -> Color {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if !no_color && std::io::stderr().is_terminal() {
            Color::Always
        } else {
            Color::Never
        }
    }
}

/// Formats one diagnostic, coloured or not.
pub fn format_diagnostic(diagnostic: &Diagnostic, color: Color) -> String {
    let plain = diagnostic.to_string();
    if color == Color::Never {
        return plain;
    }
    let (word, code) = match diagnostic.severity {
        Severity::Error => (": error: ", "\x1b[1;31m"),
        Severity::Warning => (": warning: ", "\x1b[1;33m"),
    };
    match plain.split_once(word) {
        Some((location, rest)) => {
            format!(
                "\x1b[1m{location}\x1b[0m: {code}{}\x1b[0m: {rest}",
                word.trim_matches([':', ' '])
            )
        }
        None => plain,
    }
}

/// Writes every diagnostic and a summary line (`2 errors, 1 warning`) to `out`.
pub fn write_diagnostics(
    out: &mut impl Write,
    diagnostics: &[Diagnostic],
    color: Color,
) -> std::io::Result<()> {
    for diagnostic in diagnostics {
        writeln!(out, "{}", format_diagnostic(diagnostic, color))?;
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    if !diagnostics.is_empty() {
        writeln!(
            out,
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )?;
    }
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(severity: Severity) -> Diagnostic {
        Diagnostic {
            severity,
            file: "services/llm.yaml".into(),
            line: 17,
            column: 5,
            field: "spec.autoscaling.maxReplica".into(),
            message: "unknown field".into(),
            hint: Some("did you mean maxReplicas?".into()),
        }
    }

    #[test]
    fn plain_format_is_compiler_style() {
        let text = format_diagnostic(&diagnostic(Severity::Error), Color::Never);
        assert_eq!(
            text,
            "services/llm.yaml:17:5: error: spec.autoscaling.maxReplica: unknown field; did you mean maxReplicas?"
        );
    }

    #[test]
    fn colour_wraps_location_and_severity_only() {
        let text = format_diagnostic(&diagnostic(Severity::Warning), Color::Always);
        assert!(
            text.starts_with("\x1b[1mservices/llm.yaml:17:5\x1b[0m: \x1b[1;33mwarning\x1b[0m: "),
            "{text:?}"
        );
        assert!(text.ends_with("did you mean maxReplicas?"));
    }

    #[test]
    fn summary_counts_errors_and_warnings() {
        let mut out = Vec::new();
        let all = [
            diagnostic(Severity::Error),
            diagnostic(Severity::Error),
            diagnostic(Severity::Warning),
        ];
        write_diagnostics(&mut out, &all, Color::Never).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("2 errors, 1 warning\n"), "{text}");
    }
}
