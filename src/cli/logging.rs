//! Tracing setup: one place, `RUST_LOG`-style filtering, plain text on a terminal and JSON
//! when asked (or when stderr is not a terminal and `json` is chosen).

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// Format of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Plain text, coloured on a terminal.
    Auto,
    /// Plain text without colour.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `MODELSHIP_LOG` (then `RUST_LOG`) sets the filter;
/// the default is `info` for modelship and `warn` for everything else.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MODELSHIP_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn,modelship=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (as in tests) keeps the first subscriber; ignoring that is fine.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Plain => builder.with_ansi(false).try_init(),
        LogFormat::Auto => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
