//! The command line: clap definitions and the commands they run.

pub mod policies;
