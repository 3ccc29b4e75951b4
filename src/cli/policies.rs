//! `modelship policies ...`: the policy commands, and the helpers `validate` uses to load
//! policies from a repository and from `--policies DIR` and to print violations.
//!
//! `modelship policies export [DIR] [-o OUT]` writes the policies of the repository at DIR
//! (and of every `--policies DIR`) with their bindings as Kubernetes YAML for `kubectl
//! apply`: all of them to stdout, or one file per policy in OUT. It refuses to write into a
//! directory it reads policies from (the next run would load the generated files as
//! policies). Policies that only check ModelService specs are skipped with a note on
//! stderr: the cluster never sees specs. The bindings it writes select the objects of
//! one modelship instance (`--instance NAME`, default `modelship`), unless a policy is
//! annotated `modelship.dev/scope: cluster` or ships its own binding.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Exit;
use super::output::{Color, write_diagnostics};
use crate::compile::DesiredSet;
use crate::policy::{self, ClusterView, PolicySet, Violation};
use crate::source::DirError;
use crate::spec::{Diagnostic, Repository, Severity};

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
    /// The repository (its `policies/**/*.yaml` are exported).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Directory to write `<policy>.yaml` files to; stdout when omitted.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// More policy directories (repeatable).
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// The modelship instance whose objects the exported bindings select (label
    /// `modelship.dev/instance`); policies annotated `modelship.dev/scope: cluster` and
    /// written bindings are not narrowed.
    #[arg(long, value_name = "NAME", default_value = policy::export::DEFAULT_INSTANCE)]
    pub instance: String,
}

/// What `export` needs, resolved from the arguments (tests build it by hand).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    pub root: PathBuf,
    pub policy_dirs: Vec<PathBuf>,
    pub out_dir: Option<PathBuf>,
    /// The instance the bindings modelship writes select.
    pub instance: String,
}

impl From<ExportArgs> for ExportConfig {
    fn from(args: ExportArgs) -> Self {
        ExportConfig {
            root: args.dir,
            policy_dirs: args.policies,
            out_dir: args.out,
            instance: args.instance,
        }
    }
}

/// Runs `modelship policies <command>` on the process's stdout and stderr.
pub fn run(command: PoliciesCommand) -> Exit {
    let result = match command {
        PoliciesCommand::Export(args) => export(
            &args.into(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
    };
    result.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        Exit::Failure
    })
}

/// `policies export`: [`Exit::Invalid`] when a policy has errors (nothing is written).
pub fn export(
    config: &ExportConfig,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> anyhow::Result<Exit> {
    if let Some(out) = &config.out_dir {
        let own = config.root.join("policies");
        let read =
            std::iter::once(own.as_path()).chain(config.policy_dirs.iter().map(PathBuf::as_path));
        for dir in read {
            if inside(out, dir) {
                writeln!(
                    stderr,
                    "error: refusing to write into {}: policies are read from {} (choose another -o directory)",
                    out.display(),
                    dir.display()
                )?;
                return Ok(Exit::Failure);
            }
        }
    }
    let (set, diagnostics) = load_policies(&config.root, &config.policy_dirs)?;
    write_diagnostics(&mut &mut *stderr, &diagnostics, Color::Never)?;
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Ok(Exit::Invalid);
    }
    let exported = policy::export::export(&set, &config.instance)?;
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
    Ok(Exit::Ok)
}

/// The policy check of `validate`: loads the policies of `root` and `extra_dirs`, checks
/// every service and compiled object (offline: no live objects, namespace labels
/// unknown), and prints problems and violations on stderr. [`Exit::Invalid`] when a
/// policy is broken or a violation denies; warnings and audits are printed only.
pub fn check(root: &Path, extra_dirs: &[PathBuf], repo: &Repository, desired: &DesiredSet) -> Exit {
    let mut stderr = std::io::stderr().lock();
    let color = Color::for_stderr();
    let checked = load_policies(root, extra_dirs).and_then(|(set, diagnostics)| {
        // A closed stderr leaves nobody to tell; the exit code still says what happened.
        let _ = write_diagnostics(&mut stderr, &diagnostics, color);
        let broken = diagnostics.iter().any(|d| d.severity == Severity::Error);
        let violations = policy::check_repository(repo, desired, &set, &ClusterView::default())?;
        Ok((broken, violations))
    });
    match checked {
        Ok((broken, violations)) => {
            let denied = print_violations(&violations, &mut stderr).unwrap_or(true);
            if broken || denied {
                Exit::Invalid
            } else {
                Exit::Ok
            }
        }
        Err(err) => {
            let _ = writeln!(stderr, "error: {err:#}");
            Exit::Failure
        }
    }
}

/// Loads the policies of the repository at `root` (`policies/**/*.yaml`) and of every
/// extra directory; files are named relative to the root, or by their path on disk.
pub fn load_policies(
    root: &Path,
    extra_dirs: &[PathBuf],
) -> anyhow::Result<(PolicySet, Vec<Diagnostic>)> {
    let mut files = BTreeMap::new();
    let own = root.join("policies");
    if own.is_dir() {
        files.extend(read_prefixed(&own, "policies")?);
    }
    files.extend(read_policy_dirs(extra_dirs)?);
    Ok(PolicySet::load(&files))
}

/// True when `path` is `dir` or below it (compared after resolving both, as far as they
/// exist).
fn inside(path: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| -> PathBuf {
        let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        // The longest existing ancestor, resolved; the rest appended as written.
        let mut existing = absolute.as_path();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = parent;
                }
                _ => break,
            }
        }
        let mut resolved = existing
            .canonicalize()
            .unwrap_or_else(|_| existing.to_path_buf());
        resolved.extend(rest.iter().rev());
        resolved
    };
    resolve(path).starts_with(resolve(dir))
}

/// The policy files of extra directories (`--policies DIR`), keyed by their path on disk.
pub fn read_policy_dirs(dirs: &[PathBuf]) -> Result<BTreeMap<String, Vec<u8>>, DirError> {
    let mut files = BTreeMap::new();
    for dir in dirs {
        files.extend(read_prefixed(dir, &dir.display().to_string())?);
    }
    Ok(files)
}

/// Prints violations like diagnostics; true when one of them denies.
pub fn print_violations(violations: &[Violation], out: &mut dyn Write) -> std::io::Result<bool> {
    for violation in violations {
        writeln!(out, "{violation}")?;
    }
    Ok(violations.iter().any(Violation::is_deny))
}

/// The YAML files under `dir`, keyed `<prefix>/<relative path>`.
fn read_prefixed(dir: &Path, prefix: &str) -> Result<BTreeMap<String, Vec<u8>>, DirError> {
    let files = crate::source::read_dir(dir)?;
    let prefix = prefix.trim_end_matches('/');
    Ok(files
        .into_iter()
        .map(|(path, bytes)| (format!("{prefix}/{path}"), bytes))
        .collect())
}
