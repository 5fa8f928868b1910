//! `dbx stats TARGET`: connect, one health round trip, then `db.stats()`.

use super::health::{
    breaker_cell, error_json, node_json, node_row, nodes_table, pool_json, pool_text,
};
use super::{App, close};
use crate::cli::StatsArgs;
use crate::error::{CliError, CliResult};
use crate::output::{Cell, Style, Table, human_duration, millis};
use dbx::Stats;
use serde_json::json;
use std::time::Duration;

/// Print the statistics; exit 1 (after printing them) if the round trip failed.
pub(crate) async fn run(app: &App, args: StatsArgs) -> CliResult {
    let (resolved, db) = app.connect(&args.target).await?;
    let health = db.health().await;
    let stats = db.stats();
    close(&db).await;

    if app.out.json {
        app.out.json_value(&json!({
            "target": resolved.label,
            "backend": stats.backend,
            "health": match &health {
                Ok(h) => json!({ "ok": true, "latency_ms": millis(h.latency) }),
                Err(e) => json!({ "ok": false, "error": error_json(e) }),
            },
            "operations": stats.operations,
            "errors": stats.errors(),
            "errors_by_kind": stats
                .errors_by_kind
                .iter()
                .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "retries": stats.retries,
            "in_flight": stats.in_flight,
            "breaker": stats.breaker.as_str(),
            "breaker_opened": stats.breaker_opened,
            "pool": pool_json(stats.pool.as_ref()),
            "latency_ms": {
                "p50": stats.latency.p50.map(millis),
                "p90": stats.latency.p90.map(millis),
                "p99": stats.latency.p99.map(millis),
            },
            "nodes": stats.nodes.iter().map(node_json).collect::<Vec<_>>(),
        }))?;
    } else {
        app.out
            .write(&render(app, &resolved.label, &stats, &health))?;
    }
    match health {
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::Db(e)),
    }
}

fn render(
    app: &App,
    label: &str,
    stats: &Stats,
    health: &Result<dbx::Health, dbx::Error>,
) -> String {
    let mut t = Table::new(["NAME", "VALUE"]);
    let mut add =
        |name: &str, value: Cell| t.push(vec![Cell::text(name).style(Style::Bold), value]);
    add("target", Cell::text(label));
    add("backend", Cell::text(stats.backend));
    add(
        "health",
        match health {
            Ok(h) => Cell::text(format!("ok ({})", human_duration(h.latency))).style(Style::Green),
            Err(e) => Cell::text(format!("FAILED ({})", e.kind())).style(Style::Red),
        },
    );
    add("operations", Cell::text(stats.operations.to_string()));
    let by_kind: Vec<String> = stats
        .errors_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    add(
        "errors",
        Cell::text(if by_kind.is_empty() {
            "0".to_owned()
        } else {
            format!("{} ({})", stats.errors(), by_kind.join(", "))
        }),
    );
    add("retries", Cell::text(stats.retries.to_string()));
    add("in flight", Cell::text(stats.in_flight.to_string()));
    let breaker = breaker_cell(stats.breaker);
    add("breaker", breaker);
    add(
        "breaker opened",
        Cell::text(format!("{} times", stats.breaker_opened)),
    );
    add("pool", Cell::text(pool_text(stats.pool.as_ref())));
    let p = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), human_duration);
    add(
        "latency",
        Cell::text(format!(
            "p50 {}  p90 {}  p99 {}",
            p(stats.latency.p50),
            p(stats.latency.p90),
            p(stats.latency.p99)
        )),
    );
    let mut s = t.render_rows(&app.out);
    if !stats.nodes.is_empty() {
        let mut nodes = nodes_table();
        for n in &stats.nodes {
            nodes.push(node_row(label, n));
        }
        s.push('\n');
        s.push_str(&nodes.render(&app.out));
    }
    s
}
