//! `fairtat-dashboard`: the dashboard server alone (what `fairtat serve` runs). It uses only
//! the library's tensor-free modules, so the linker leaves libtorch out of it and the server
//! stays small; training and evaluation jobs are `fairtat` child processes.

use std::process::ExitCode;

use clap::Parser;

/// Serve the fairtat dashboard (the options of `fairtat serve`).
#[derive(Parser, Debug)]
#[command(name = "fairtat-dashboard", version)]
struct Cli {
    #[command(flatten)]
    serve: fairtat_server::cli::ServeArgs,
}

fn main() -> ExitCode {
    fairtat_server::cli::init_tracing();
    let mut cli = Cli::parse();
    if cli.serve.trainer.is_none() {
        // The trainer is the `fairtat` program installed beside this one.
        cli.serve.trainer = std::env::current_exe()
            .ok()
            .map(|me| me.with_file_name("fairtat"));
    }
    match fairtat_server::cli::serve::serve_here(cli.serve) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
