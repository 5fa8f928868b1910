//! The `dbx` command-line tool: health checks, SQL queries, key-value,
//! documents, vectors and statistics on any database dbx speaks, through
//! dbx's public API only. See README.md.

mod cli;
mod commands;
mod error;
mod output;
mod parse;
mod target;

use clap::Parser;
use cli::Cli;
use commands::App;
use error::EXIT_FAILED;
use output::Output;
use std::process::ExitCode;
use target::Targets;

fn main() -> ExitCode {
    // A bug must not greet the user with a backtrace (RUST_BACKTRACE may be
    // set): one line on stderr, exit 101 as for any panic.
    std::panic::set_hook(Box::new(|info| {
        let out = Output::new(false, cli::ColorChoice::Auto);
        out.error_text(&format!(
            "internal error (a bug in dbx-cli, please report it): {info}"
        ));
    }));
    // clap prints help, versions and usage errors itself (exit 0 or 2).
    let cli = Cli::parse();
    let out = Output::new(cli.global.json, cli.global.color);
    let verbose = cli.global.verbose;
    let app = App {
        out,
        targets: Targets::new(cli.global.config.clone(), cli.global.timeout),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error_text(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let result = runtime.block_on(commands::run(cli, &app));
    // Do not wait for background tasks (health probes) of closed databases.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e, verbose);
            ExitCode::from(e.exit_code())
        }
    }
}
