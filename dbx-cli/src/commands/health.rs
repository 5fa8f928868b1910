//! `dbx health [TARGET]...`: one round trip per database, checked at once.

use super::{App, close};
use crate::cli::HealthArgs;
use crate::error::{CliError, CliResult, redact};
use crate::output::{Cell, Style, Table, human_duration, millis};
use dbx::{BreakerState, Health, NodeRole, NodeState, NodeStatus, PoolStatus};
use serde_json::{Value as J, json};

/// One database's outcome.
struct Report {
    label: String,
    result: Result<Health, dbx::Error>,
}

/// Check each target (every database of dbx.toml when none is given);
/// exit 1 if any failed, after printing every result.
pub(crate) async fn run(app: &App, args: HealthArgs) -> CliResult {
    // Resolve everything first: a wrong name fails before any connection.
    let targets = if args.targets.is_empty() {
        app.targets.all()?
    } else {
        args.targets
            .iter()
            .map(|t| app.targets.resolve(t))
            .collect::<CliResult<Vec<_>>>()?
    };
    let checks = targets.into_iter().map(|t| async move {
        let result = match t.connect().await {
            Ok(db) => {
                let r = db.health().await;
                close(&db).await;
                r
            }
            Err(e) => Err(e),
        };
        Report {
            label: t.label,
            result,
        }
    });
    let reports = futures_util::future::join_all(checks).await;

    if app.out.json {
        let items: Vec<J> = reports.iter().map(report_json).collect();
        app.out.json_value(&J::Array(items))?;
    } else {
        app.out.write(&render(app, &reports))?;
    }
    let mut failed = false;
    for r in &reports {
        match &r.result {
            Err(e) => {
                app.out.error_text(&format!("{}: {e}", r.label));
                failed = true;
            }
            Ok(h) if args.strict => {
                for n in h.nodes.iter().filter(|n| !n.is_up()) {
                    app.out.error_text(&format!(
                        "{}: node {} ({}) is {}",
                        r.label,
                        n.addr,
                        role(n.role),
                        state_name(n.state)
                    ));
                    failed = true;
                }
            }
            Ok(_) => {}
        }
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

fn render(app: &App, reports: &[Report]) -> String {
    let out = &app.out;
    let mut table = Table::new(["TARGET", "BACKEND", "STATUS", "LATENCY", "POOL", "BREAKER"]);
    let mut nodes = nodes_table();
    for r in reports {
        match &r.result {
            Ok(h) => {
                let degraded = h.nodes.iter().any(|n| !n.is_up());
                table.push(vec![
                    Cell::text(&r.label),
                    Cell::text(h.backend),
                    if degraded {
                        Cell::text("degraded").style(Style::Yellow)
                    } else {
                        Cell::text("ok").style(Style::Green)
                    },
                    Cell::number(human_duration(h.latency)),
                    Cell::text(pool_text(h.pool.as_ref())),
                    breaker_cell(h.breaker),
                ]);
                for n in &h.nodes {
                    nodes.push(node_row(&r.label, n));
                }
            }
            Err(e) => table.push(vec![
                Cell::text(&r.label),
                Cell::text(e.backend().unwrap_or("-")),
                Cell::text("FAILED").style(Style::Red),
                Cell::number("-"),
                Cell::text("-"),
                Cell::text("-"),
            ]),
        }
    }
    let mut s = table.render(out);
    if nodes.len() > 0 {
        s.push('\n');
        s.push_str(&nodes.render(out));
    }
    s
}

fn report_json(r: &Report) -> J {
    match &r.result {
        Ok(h) => json!({
            "target": r.label,
            "ok": true,
            "backend": h.backend,
            "latency_ms": millis(h.latency),
            "pool": pool_json(h.pool.as_ref()),
            "breaker": h.breaker.as_str(),
            "nodes": h.nodes.iter().map(node_json).collect::<Vec<_>>(),
        }),
        Err(e) => json!({
            "target": r.label,
            "ok": false,
            "backend": e.backend(),
            "error": error_json(e),
        }),
    }
}

/// An error as JSON: kind, message (redacted), transient, the database's code.
pub(crate) fn error_json(e: &dbx::Error) -> J {
    json!({
        "kind": e.kind().as_str(),
        "message": redact(&e.to_string()),
        "transient": e.is_transient(),
        "code": e.code(),
    })
}

/// The breaker state, coloured.
pub(crate) fn breaker_cell(b: BreakerState) -> Cell {
    let style = match b {
        BreakerState::Closed => Style::Plain,
        BreakerState::Open => Style::Red,
        _ => Style::Yellow,
    };
    Cell::text(b.as_str()).style(style)
}

/// `1/16 open, 1 idle, 0 waiting`, or `-` without a pool.
pub(crate) fn pool_text(p: Option<&PoolStatus>) -> String {
    match p {
        Some(p) => format!(
            "{}/{} open, {} idle, {} waiting",
            p.size, p.max_size, p.idle, p.waiting
        ),
        None => "-".into(),
    }
}

/// The pool as JSON, `null` without one.
pub(crate) fn pool_json(p: Option<&PoolStatus>) -> J {
    match p {
        Some(p) => json!({
            "max_size": p.max_size,
            "size": p.size,
            "idle": p.idle,
            "in_use": p.in_use,
            "waiting": p.waiting,
        }),
        None => J::Null,
    }
}

/// The table of topology nodes.
pub(crate) fn nodes_table() -> Table {
    Table::new(["TARGET", "NODE", "ROLE", "STATE", "DETAIL"])
}

/// One node's row.
pub(crate) fn node_row(label: &str, n: &NodeStatus) -> Vec<Cell> {
    let state = match n.state {
        NodeState::Up => Style::Green,
        NodeState::Avoided => Style::Yellow,
        _ => Style::Red,
    };
    vec![
        Cell::text(label),
        Cell::text(&n.addr),
        Cell::text(role(n.role)),
        Cell::text(state_name(n.state)).style(state),
        Cell::text(redact(&node_detail(n))),
    ]
}

fn node_detail(n: &NodeStatus) -> String {
    let mut parts = Vec::new();
    if !n.slots.is_empty() {
        let slots: Vec<String> = n
            .slots
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        parts.push(format!("slots {}", slots.join(",")));
    }
    if let Some(lag) = n.lag {
        parts.push(format!("lag {}", human_duration(lag)));
    }
    if let Some(e) = &n.error {
        parts.push(e.clone());
    }
    parts.join("; ")
}

/// One node as JSON.
pub(crate) fn node_json(n: &NodeStatus) -> J {
    json!({
        "addr": n.addr,
        "role": role(n.role),
        "state": state_name(n.state),
        "error": n.error.as_deref().map(redact),
        "slots": n.slots.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        "lag_ms": n.lag.map(millis),
    })
}

fn role(r: NodeRole) -> &'static str {
    match r {
        NodeRole::Primary => "primary",
        NodeRole::Replica => "replica",
        NodeRole::Peer => "peer",
        _ => "other",
    }
}

fn state_name(s: NodeState) -> &'static str {
    match s {
        NodeState::Up => "up",
        NodeState::Avoided => "avoided",
        NodeState::Down => "down",
        _ => "unknown",
    }
}
