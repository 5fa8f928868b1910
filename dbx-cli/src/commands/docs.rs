//! `dbx docs TARGET find COLLECTION [FILTER_JSON]`.

use super::{App, close};
use crate::cli::{DocsArgs, DocsCommand, DocsFindArgs};
use crate::error::CliResult;
use dbx::{Docs, FindOptions};
use futures_util::StreamExt;

/// Run a document subcommand.
pub(crate) async fn run(app: &App, args: DocsArgs) -> CliResult {
    let (_, db) = app.connect(&args.target).await?;
    let result = match db.docs() {
        Ok(docs) => match args.command {
            DocsCommand::Find(a) => find(app, docs, a).await,
        },
        Err(e) => Err(e.into()),
    };
    close(&db).await;
    result
}

/// Stream the matching documents: one JSON line each as they arrive, or
/// with `--json` one array (`[]` when none match).
async fn find(app: &App, docs: &Docs, args: DocsFindArgs) -> CliResult {
    let mut options = FindOptions::new();
    if let Some(n) = args.limit {
        options = options.limit(n);
    }
    if let Some(n) = args.skip {
        options = options.skip(n);
    }
    if let Some(sort) = args.sort {
        options = options.sort(sort);
    }
    if let Some(p) = args.projection {
        options = options.projection(p);
    }
    let mut stream = docs
        .collection(&args.collection)
        .find(&args.filter, options)
        .await?;
    let mut first = true;
    while let Some(doc) = stream.next().await {
        let doc = doc?.to_string();
        if app.out.json {
            app.out
                .write(&format!("{}{doc}", if first { "[\n  " } else { ",\n  " }))?;
        } else {
            app.out.line(&doc)?;
        }
        first = false;
    }
    if app.out.json {
        app.out.write(if first { "[]\n" } else { "\n]\n" })?;
    }
    Ok(())
}
