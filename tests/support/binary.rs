//! The `modelship` binary of this build, run the one way every test runs it: plain output
//! (`NO_COLOR`), without the log filters of the caller's shell (`MODELSHIP_LOG`,
//! `RUST_LOG`, which would add lines to the stderr tests read), no standard input, and
//! killed when the test drops it. Callers add what their test needs (a working directory,
//! the test-only step interval, a log file) to the command they get.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// The path of the binary Cargo built for these tests.
pub const PATH: &str = env!("CARGO_BIN_EXE_modelship");

/// `modelship ARGS`.
pub fn command<I, S>(args: I) -> tokio::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = tokio::process::Command::from(std_command(args));
    command.kill_on_drop(true);
    command
}

/// `modelship ARGS --kubeconfig KUBECONFIG`: a command against the cluster of
/// `kubeconfig`.
pub fn on_cluster<I, S>(kubeconfig: &Path, args: I) -> tokio::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = command(args);
    command.arg("--kubeconfig").arg(kubeconfig);
    command
}

/// Runs `command` to its end; fails the test when it cannot start or takes longer than
/// `limit`.
pub async fn output(mut command: tokio::process::Command, limit: Duration) -> Output {
    tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("modelship did not finish within {limit:?}"))
        .expect("the modelship binary runs")
}

/// Runs `modelship ARGS` to its end from a test without a runtime.
pub fn output_blocking(args: &[&str]) -> Output {
    std_command(args)
        .output()
        .expect("the modelship binary runs")
}

fn std_command<I, S>(args: I) -> std::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = std::process::Command::new(PATH);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("MODELSHIP_LOG")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    command
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
