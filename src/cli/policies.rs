//! `modelship policies ...`: the policy commands, and the helpers `validate` uses to load
//! policies from a repository and from `--policies DIR` and to print violations.
//!
//! `modelship policies export [DIR]` writes the policies of the repository (and of every
//! `--policies DIR`) with their bindings as Kubernetes YAML for `kubectl apply`, one file
//! per policy in DIR, or all of them to stdout. Policies that only check ModelService
//! specs are skipped with a note on stderr: the cluster never sees specs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::policy::{self, PolicySet, Violation};
use crate::spec::{Diagnostic, Severity};

/// `modelship policies <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum PoliciesCommand {
    /// Write the policies and their bindings as Kubernetes YAML, for admission-time
    /// enforcement with `kubectl apply -f DIR`.
    Export(ExportArgs),
}

/// Arguments of `modelship policies export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Directory to write `<policy>.yaml` files to; stdout when omitted.
    pub dir: Option<PathBuf>,
    /// Repository root (its `policies/**/*.yaml` are exported).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// More policy directories (repeatable).
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
}

/// What `export` needs, resolved from the arguments (tests build it by hand).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    pub root: PathBuf,
    pub policy_dirs: Vec<PathBuf>,
    pub out_dir: Option<PathBuf>,
}

impl From<ExportArgs> for ExportConfig {
    fn from(args: ExportArgs) -> Self {
        ExportConfig {
            root: args.path,
            policy_dirs: args.policies,
            out_dir: args.dir,
        }
    }
}

/// Runs `modelship policies <command>`; returns the exit code.
pub fn run(
    command: PoliciesCommand,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<i32> {
    match command {
        PoliciesCommand::Export(args) => export(&args.into(), stdout, stderr),
    }
}

/// `policies export`: exit code 0, or 2 when a policy has errors (nothing is written).
pub fn export(
    config: &ExportConfig,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<i32> {
    let repository = read_yaml_tree(&config.root.join("policies"), "policies")?;
    let (set, diagnostics) = load_policies(&repository, &config.policy_dirs)?;
    print_diagnostics(&diagnostics, stderr)?;
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Ok(2);
    }
    let exported = policy::export::export(&set)?;
    for note in &exported.skipped {
        writeln!(stderr, "note: {note}")?;
    }
    match &config.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, yaml) in &exported.files {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            writeln!(
                stderr,
                "wrote {} policies to {}",
                exported.files.len(),
                dir.display()
            )?;
        }
        None => {
            let texts: Vec<&str> = exported
                .files
                .iter()
                .map(|(_, yaml)| yaml.as_str())
                .collect();
            write!(stdout, "{}", texts.join("---\n"))?;
        }
    }
    Ok(0)
}

/// Loads the repository's policies (`policies/**/*.yaml` of `repository_files`) and those
/// of every extra directory, named by their path on disk.
pub fn load_policies(
    repository_files: &BTreeMap<String, Vec<u8>>,
    extra_dirs: &[PathBuf],
) -> anyhow::Result<(PolicySet, Vec<Diagnostic>)> {
    let mut files = policy::policy_files(repository_files);
    for dir in extra_dirs {
        files.extend(read_yaml_tree(dir, &dir.display().to_string())?);
    }
    Ok(PolicySet::load(&files))
}

/// Prints violations like diagnostics; true when one of them denies.
pub fn print_violations(violations: &[Violation], out: &mut dyn Write) -> std::io::Result<bool> {
    for violation in violations {
        writeln!(out, "{violation}")?;
    }
    Ok(violations.iter().any(Violation::is_deny))
}

fn print_diagnostics(diagnostics: &[Diagnostic], out: &mut dyn Write) -> std::io::Result<()> {
    for diagnostic in diagnostics {
        writeln!(out, "{diagnostic}")?;
    }
    Ok(())
}

/// The `*.yaml` / `*.yml` files under `dir`, keyed `<prefix>/<relative path>`; an absent
/// directory has none.
fn read_yaml_tree(dir: &Path, prefix: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return Ok(files);
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("reading {}", current.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("reading {}", current.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                let relative: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                files.insert(
                    format!("{}/{}", prefix.trim_end_matches('/'), relative.join("/")),
                    bytes,
                );
            }
        }
    }
    Ok(files)
}
