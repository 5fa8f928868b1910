//! `dbx completions SHELL`: a completion script on stdout.

use super::App;
use crate::cli::{Cli, CompletionsArgs};
use crate::error::CliResult;
use clap::CommandFactory;

/// Write the script for `args.shell`.
pub(crate) fn run(app: &App, args: CompletionsArgs) -> CliResult {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "dbx", &mut script);
    app.out.write_bytes(&script)?;
    Ok(())
}
