//! `fairtat`: parse flags, set up tracing, run, map errors to exit codes. Logic lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    fairtat::cli::init_tracing();
    let cli = fairtat::cli::Cli::parse();
    match fairtat::cli::run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
