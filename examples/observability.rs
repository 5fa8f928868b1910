//! What an operator sees: dbx's spans on stderr, its metrics in Prometheus
//! text format, and the `stats()` snapshot for those without a metrics stack.
//!
//! ```text
//! cargo run -p examples --example observability                 # SQLite in memory
//! cargo run -p examples --example observability -- sqlite:x.db  # or any URL (also DBX_URL)
//! ```
//!
//! dbx itself never installs a subscriber or a recorder: this example does,
//! as an application would.

use dbx::{Dbx, params};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Spans and events of target `dbx`, with span open/close lines.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("dbx=debug")),
        )
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .init();
    // A Prometheus recorder without its HTTP listener: we render the text ourselves.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;

    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DBX_URL").ok())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "sqlite::memory:?log_statements=true".to_owned());
    let db = Dbx::connect(&url).await?;
    if let Ok(sql) = db.sql() {
        sql.execute(
            "CREATE TABLE IF NOT EXISTS obs (id BIGINT PRIMARY KEY, v TEXT)",
            params![],
        )
        .await?;
        for i in 0..100 {
            sql.execute(
                "INSERT INTO obs (id, v) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                params![i, "x"],
            )
            .await?;
        }
        let _ = sql.query("SELECT nope FROM obs", params![]).await; // a failing query, on purpose
    }
    if let Ok(kv) = db.kv() {
        for i in 0..100 {
            kv.set(&format!("obs:{i}"), b"v", Some(Duration::from_secs(60)))
                .await?;
            kv.get(&format!("obs:{i}")).await?;
        }
        let _ = kv.incr("obs:0", 1).await; // "v" is not a counter: WrongType, on purpose
    }

    println!("# ---- Prometheus text, as a /metrics endpoint would serve it ----");
    println!("{}", prometheus.render());
    let stats = db.stats();
    println!("# ---- db.stats() ----");
    println!(
        "operations: {}, errors: {} {:?}",
        stats.operations,
        stats.errors(),
        stats.errors_by_kind
    );
    println!(
        "latency p50 {:?}, p90 {:?}, p99 {:?}; retries {}; breaker {:?}; pool {:?}",
        stats.latency.p50,
        stats.latency.p90,
        stats.latency.p99,
        stats.retries,
        stats.breaker,
        stats.pool
    );
    db.close().await;
    Ok(())
}
