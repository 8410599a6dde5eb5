//! `kettle`: see `cli` for the commands and `lib.rs` for a tour of the code.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: after a burst of sign-ins (each password hash
/// takes 19 MiB) glibc kept the memory it grew in per-thread arenas, while mimalloc gives
/// freed pages back to the system (figures in tests/bench/README.md).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = kettle::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("kettle: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(kettle::cli::run(cli));
    // Work still running on blocking threads (a render, a password hash) is bounded and
    // of no use once the server has stopped: do not wait long for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kettle: {err:#}");
            ExitCode::FAILURE
        }
    }
}
