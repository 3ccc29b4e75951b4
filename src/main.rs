use clap::Parser;

use modelship::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cli::logging::init(cli.log_format);
    cli::run(cli).into()
}
