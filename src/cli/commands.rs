//! The commands behind the subcommands of [`super::Command`].

use std::io::Write;
use std::path::{Path, PathBuf};

use super::output::{Color, write_diagnostics};
use super::{Exit, RenderFormat};
use crate::compile::{self, Source};
use crate::meta::ServiceId;
use crate::spec::{self, Repository};

/// Reads and validates a repository, printing its diagnostics on stderr. Tenants' GPU
/// budgets are counted in path order (no live view here).
/// `None` means the directory could not be read (already reported).
fn load_dir(dir: &Path) -> Option<Repository> {
    match crate::source::read_dir(dir) {
        Ok(files) => {
            let mut repository = spec::load(&files);
            crate::budget::enforce(&mut repository, &Default::default());
            Some(repository)
        }
        Err(err) => {
            eprintln!("error: {err}");
            None
        }
    }
}

/// Loads, validates and compiles the repository at `dir`, reporting every problem on
/// stderr. `Err` carries the exit code when anything failed.
pub(crate) fn load_and_compile(dir: &Path) -> Result<(Repository, compile::DesiredSet), Exit> {
    let repo = load_dir(dir).ok_or(Exit::Failure)?;
    report(&repo);
    if !repo.is_valid() {
        return Err(Exit::Invalid);
    }
    let compiled = compile::compile_repository(&repo, &Source::local());
    if let Some(code) = report_compile_errors(&compiled) {
        return Err(code);
    }
    Ok((repo, compiled))
}

fn report(repo: &Repository) {
    let mut stderr = std::io::stderr().lock();
    // A closed stderr leaves nobody to tell; the exit code still says what happened.
    let _ = write_diagnostics(&mut stderr, &repo.diagnostics, Color::for_stderr());
}

/// `modelship validate DIR`: 0 when valid, 2 with diagnostics or a denying policy, 1 when
/// unreadable.
pub fn validate(dir: &Path, policy_dirs: &[PathBuf]) -> Exit {
    let (repo, compiled) = match load_and_compile(dir) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let policies = super::policies::check(dir, policy_dirs, &repo, &compiled);
    if policies != Exit::Ok {
        return policies;
    }
    eprintln!(
        "{}: {} valid, {} objects",
        dir.display(),
        plural(repo.services.len(), "service"),
        compiled.objects().len()
    );
    Exit::Ok
}

/// `modelship render DIR`: every object on stdout. An invalid repository prints nothing on
/// stdout (so a pipe into `kubectl apply` never applies half a repository) and exits 2.
pub fn render(dir: &Path, service: Option<&str>, format: RenderFormat) -> Exit {
    let (_, compiled) = match load_and_compile(dir) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let selected: Vec<&compile::Object> = match service {
        None => compiled.objects(),
        Some(wanted) => {
            let mut objects: Vec<_> = compiled
                .services
                .iter()
                .filter(|s| matches_service(s, wanted))
                .flat_map(|s| s.objects.iter())
                .collect();
            compile::sort_in_apply_order(&mut objects);
            objects
        }
    };
    if let Some(wanted) = service
        && selected.is_empty()
    {
        eprintln!("error: no service named `{wanted}` in {}", dir.display());
        return Exit::Invalid;
    }
    let text = match format {
        RenderFormat::Yaml => compile::render_yaml(selected.iter().copied()),
        RenderFormat::Json => compile::render_json(selected.iter().copied()),
    };
    let text = match text {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::Failure;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // A closed pipe (`render | head`) is not a failure of ours.
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: writing output: {err}");
            return Exit::Failure;
        }
    }
    Exit::Ok
}

/// `ns/name` names one service; a bare name (no valid id) matches it in any namespace.
fn matches_service(service: &compile::ServiceObjects, wanted: &str) -> bool {
    match wanted.parse::<ServiceId>() {
        Ok(id) => service.id == id,
        Err(_) => service.id.name() == wanted,
    }
}

fn report_compile_errors(compiled: &compile::DesiredSet) -> Option<Exit> {
    if compiled.errors.is_empty() {
        return None;
    }
    for failed in &compiled.errors {
        eprintln!("{}: error: {}: {}", failed.file, failed.id, failed.error);
    }
    Some(Exit::Failure)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `modelship sandbox`: serve the embedded API server until Ctrl-C.
#[cfg(feature = "sandbox")]
pub fn sandbox(listen: std::net::SocketAddr, kubeconfig: Option<&Path>) -> Exit {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return Exit::Failure;
        }
    };
    let result = runtime.block_on(crate::sandbox::serve(listen, kubeconfig, async {
        // If the signal handler cannot be installed the server runs until killed.
        let _ = tokio::signal::ctrl_c().await;
    }));
    match result {
        Ok(()) => Exit::Ok,
        Err(err) => {
            eprintln!("error: {err}");
            Exit::Failure
        }
    }
}
