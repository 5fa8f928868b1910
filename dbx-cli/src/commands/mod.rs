//! One module per command group, and what they share.

mod completions;
mod docs;
mod health;
mod kv;
mod migrate;
mod query;
mod stats;
mod vectors;

use crate::cli::{Cli, Command};
use crate::error::CliResult;
use crate::output::Output;
use crate::target::{Resolved, Targets};
use dbx::Dbx;
use std::time::Duration;

/// How long a command waits for its own operations when closing.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// What every command needs.
#[derive(Debug)]
pub(crate) struct App {
    /// Output settings.
    pub(crate) out: Output,
    /// Target resolution.
    pub(crate) targets: Targets,
}

impl App {
    /// Resolve and connect one TARGET.
    pub(crate) async fn connect(&self, target: &str) -> CliResult<(Resolved, Dbx)> {
        let resolved = self.targets.resolve(target)?;
        let db = resolved.connect().await?;
        Ok((resolved, db))
    }
}

/// Close a database after a command, letting its work finish.
pub(crate) async fn close(db: &Dbx) {
    db.close_within(CLOSE_WITHIN).await;
}

/// Run the command `cli` names.
pub(crate) async fn run(cli: Cli, app: &App) -> CliResult {
    match cli.command {
        Command::Health(args) => health::run(app, args).await,
        Command::Query(args) => query::run(app, args).await,
        Command::Kv(args) => kv::run(app, args).await,
        Command::Docs(args) => docs::run(app, args).await,
        Command::Vectors(args) => vectors::run(app, args).await,
        Command::Stats(args) => stats::run(app, args).await,
        Command::Migrate(args) => migrate::run(app, args).await,
        Command::Completions(args) => completions::run(app, args),
    }
}
