//! `kettle`: see `cli` for the commands and `lib.rs` for a tour of the code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kettle::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("kettle: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(kettle::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kettle: {err:#}");
            ExitCode::FAILURE
        }
    }
}
