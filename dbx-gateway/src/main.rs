//! `dbx-gateway --config gateway.toml`: an HTTP service over the named
//! databases of a dbx.toml, built on the public API of the `dbx` crate.
//! See the README for the configuration and the endpoints.

mod api;
mod config;
mod error;
mod logjson;
mod logwriter;
mod openapi;
mod ratelimit;
mod security;
mod server;
mod values;

use api::{AppState, PeerAddr};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use clap::Parser;
use config::{CorsConfig, GatewayConfig};
use security::Security;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// An HTTP gateway over the databases of a dbx.toml.
#[derive(Debug, Parser)]
#[command(name = "dbx-gateway", version, about)]
struct Args {
    /// The gateway's configuration file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration (files, keys, roles, databases) and exit,
    /// without connecting.
    #[arg(long)]
    check: bool,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn complain(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "dbx-gateway: {line}");
}

/// Threads the runtime may start for blocking work (Tokio's default is
/// 512). dbx-sqlite runs each statement in `block_in_place`, which hands
/// the worker's other tasks to a thread of this pool; unbounded, 50
/// concurrent SQLite reads grew the process to 110-130 threads and 56-74 MB
/// of RSS (glibc gives threads malloc arenas of their own, and the request
/// path's allocations spread over all of them). With 8 (the SQLite pool's
/// default size): 12 threads and 35-41 MB over the load harness's
/// workloads, SQLite reads no slower. Work queued for the pool waits for a
/// free thread.
const MAX_BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build();
    match runtime {
        Ok(rt) => rt.block_on(gateway_main()),
        Err(e) => {
            complain(&format!("starting the runtime: {e}"));
            ExitCode::FAILURE
        }
    }
}

async fn gateway_main() -> ExitCode {
    let args = Args::parse();
    let cfg = match GatewayConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            complain(&e.to_string());
            return ExitCode::from(2);
        }
    };
    if args.check {
        return match check(&cfg, &args.config) {
            Ok(summary) => {
                say(&summary);
                ExitCode::SUCCESS
            }
            Err(e) => {
                complain(&e);
                ExitCode::from(2)
            }
        };
    }
    // Held to the end: dropping it writes out the buffered log lines.
    let log = init_logging(&cfg);
    let code = match run(cfg, &args.config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "dbx-gateway stopped");
            drop(log);
            complain(&e);
            return ExitCode::FAILURE;
        }
    };
    drop(log);
    code
}

/// `--check`: everything but connecting.
fn check(cfg: &GatewayConfig, path: &Path) -> Result<String, String> {
    let (text, origin) = cfg.databases_toml(path).map_err(|e| e.to_string())?;
    let env = cfg.database_env().map_err(|e| e.to_string())?;
    let entries =
        dbx::config::parse_for(&text, &origin, env, &dbx::registry()).map_err(|e| e.to_string())?;
    let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
    Security::from_config(cfg, &names).map_err(|e| e.to_string())?;
    if let Some(tls) = &cfg.tls {
        server::tls_acceptor(tls).map_err(|e| e.to_string())?;
    }
    if let Some(shared) = &cfg.rate_limit.shared_database
        && !names.contains(shared)
    {
        return Err(format!(
            "rate_limit.shared_database: no database named `{shared}`"
        ));
    }
    Ok(format!(
        "ok: {} database(s) ({}), {} role(s)",
        names.len(),
        names.join(", "),
        cfg.roles.len()
    ))
}

/// The log goes to stderr through a buffer written out by a thread of its
/// own (see [`logwriter`]); the returned guard writes out the rest.
fn init_logging(cfg: &GatewayConfig) -> logwriter::LogGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let spans = if cfg.log.span_events {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    let (writer, guard) = logwriter::buffered_stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(writer);
    if cfg.log.format == "json" {
        // tracing-subscriber's `.json().with_current_span(true)
        // .with_span_list(true)` lines, formatted without its per-line
        // re-parsing (see `logjson`).
        builder
            .fmt_fields(logjson::SpanFields)
            .event_format(logjson::JsonLines)
            .init();
    } else {
        builder.with_ansi(false).init();
    }
    guard
}

fn cors_layer(c: &CorsConfig) -> Result<CorsLayer, String> {
    let origin = if c.allow_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = c
            .allow_origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| format!("cors.allow_origins: `{o}` is not a valid origin"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    let mut layer = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER]);
    if let Some(s) = c.max_age_secs {
        layer = layer.max_age(Duration::from_secs(s));
    }
    Ok(layer)
}

async fn run(cfg: GatewayConfig, path: &Path) -> Result<(), String> {
    // The recorder first, so dbx's own metrics land in it from the start.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    let (text, origin) = cfg.databases_toml(path).map_err(|e| e.to_string())?;
    let registry = dbx::registry();
    let env = cfg.database_env().map_err(|e| e.to_string())?;
    let dbs = dbx::Databases::from_toml_with(&text, &origin, env, &registry)
        .await
        .map_err(|e| e.to_string())?;
    let dbs = Arc::new(dbs);
    let names: Vec<String> = dbs.names().map(str::to_owned).collect();
    let security = match Security::from_config(&cfg, &names) {
        Ok(s) => s,
        Err(e) => {
            dbs.close().await;
            return Err(e.to_string());
        }
    };
    let shared = match &cfg.rate_limit.shared_database {
        Some(name) => match dbs.get(name).and_then(|d| d.kv().cloned()) {
            Ok(kv) => Some(kv),
            Err(e) => {
                dbs.close().await;
                return Err(format!("rate_limit.shared_database: {e}"));
            }
        },
        None => None,
    };
    let tls = match cfg.tls.as_ref().map(server::tls_acceptor).transpose() {
        Ok(t) => t,
        Err(e) => {
            dbs.close().await;
            return Err(e.to_string());
        }
    };
    let state = Arc::new(AppState {
        dbs: dbs.clone(),
        security: RwLock::new(Arc::new(security)),
        limits: cfg.limits.clone(),
        rate: ratelimit::RateLimits::new(&cfg.rate_limit, shared),
        metrics: Some(metrics.clone()),
        public_metrics: cfg.public_metrics,
        draining: Default::default(),
    });

    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<axum::body::Body>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %id,
                principal = tracing::field::Empty,
            )
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
    let mut app = api::router(state.clone())
        .layer(DefaultBodyLimit::max(cfg.limits.max_body_bytes))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    if let Some(c) = &cfg.cors {
        app = app.layer(cors_layer(c)?);
    }

    let tcp = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", cfg.listen))?;
    let local = tcp.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = server::GatewayListener::new(tcp, tls).map_err(|e| e.to_string())?;

    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<PeerAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let mut server = tokio::spawn(async move { serve.await });
    tracing::info!(address = %local, %scheme, databases = %names.join(","), "dbx-gateway listening");
    say(&format!("listening on {scheme}://{local}"));

    // Housekeeping: histogram upkeep, idle limiter state.
    let upkeep = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
                state.rate.prune();
            }
        })
    };

    let early = loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: draining"); break None; }
            _ = int.recv() => { tracing::info!("SIGINT: draining"); break None; }
            _ = hup.recv() => reload(&state, path, &names),
            r = &mut server => break Some(r),
        }
    };
    upkeep.abort();
    let result = match early {
        Some(r) => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("server: {e}")),
            Err(e) => Err(format!("server task: {e}")),
        },
        None => {
            state.draining.store(true, Ordering::Relaxed);
            let _ = stop_tx.send(());
            let drain = Duration::from_secs(cfg.shutdown.drain_timeout_secs);
            match tokio::time::timeout(drain, &mut server).await {
                Ok(_) => tracing::info!("requests drained"),
                Err(_) => {
                    tracing::warn!(
                        seconds = drain.as_secs(),
                        "drain deadline passed; closing with requests in flight"
                    );
                    server.abort();
                }
            }
            Ok(())
        }
    };
    dbs.close().await;
    tracing::info!("databases closed; bye");
    result
}

/// SIGHUP: re-read the file; new auth and roles take effect, or the old
/// ones stay when the new ones are invalid.
fn reload(state: &AppState, path: &Path, names: &[String]) {
    let fresh = GatewayConfig::load(path)
        .map_err(|e| e.to_string())
        .and_then(|cfg| Security::from_config(&cfg, names).map_err(|e| e.to_string()));
    match fresh {
        Ok(sec) => {
            state.set_security(sec);
            tracing::info!("SIGHUP: auth and roles reloaded");
        }
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP: configuration invalid; keeping the old auth and roles")
        }
    }
}
