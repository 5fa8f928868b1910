//! The resilience stack's success-path overhead: a `Kv::get` through
//! `dbx::Database` (closed check, in-flight count, breaker, retry loop,
//! per-attempt timeout, span, duration histogram, stats counters) against
//! calling the same store directly, on a tiny in-process key-value store
//! that answers at once. The difference of the two is what the policy costs
//! per operation.
//!
//! Four lines: no subscriber or recorder installed (`none`), a `tracing`
//! fmt subscriber writing to a sink at INFO (`tracing`), a Prometheus
//! recorder (`metrics`), and both. They are installed thread-locally on a
//! current-thread runtime, so the lines do not leak into each other.
//!
//! `cargo bench -p benches --bench policy`

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use dbx::core::driver::async_trait;
use dbx::core::driver::{Backend, KvStore, ScanPage};
use dbx::{ConnectOptions, Database, Result, Ttl};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// A key-value store that answers every call at once.
#[derive(Debug)]
struct Noop;

#[async_trait]
impl KvStore for Noop {
    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    async fn set(&self, _key: &str, _value: &[u8], _ttl: Option<Duration>) -> Result<()> {
        Ok(())
    }
    async fn set_nx(&self, _key: &str, _value: &[u8], _ttl: Option<Duration>) -> Result<bool> {
        Ok(true)
    }
    async fn delete(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
    async fn exists(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
    async fn incr(&self, _key: &str, delta: i64) -> Result<i64> {
        Ok(delta)
    }
    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(vec![None; keys.len()])
    }
    async fn mset(&self, _entries: &[(&str, &[u8])], _ttl: Option<Duration>) -> Result<()> {
        Ok(())
    }
    async fn expire(&self, _key: &str, _ttl: Duration) -> Result<bool> {
        Ok(false)
    }
    async fn ttl(&self, _key: &str) -> Result<Ttl> {
        Ok(Ttl::Missing)
    }
    async fn scan_page(
        &self,
        _prefix: &str,
        _cursor: Option<&str>,
        _limit: usize,
    ) -> Result<ScanPage> {
        Ok(ScanPage::default())
    }
}

/// The backend around [`Noop`].
#[derive(Debug)]
struct NoopBackend(Arc<Noop>);

#[async_trait]
impl Backend for NoopBackend {
    fn name(&self) -> &'static str {
        "noop"
    }
    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(self.0.clone())
    }
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
    async fn close(&self) {}
}

fn policy(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(Noop);
    let direct: Arc<dyn KvStore> = store.clone();
    let db = {
        let _enter = rt.enter();
        Database::new(Arc::new(NoopBackend(store)), ConnectOptions::new("noop"))
    };
    let kv = db.kv().unwrap().clone();

    let mut g = c.benchmark_group("policy/kv_get");
    g.bench_function("direct", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(direct.get(black_box("k")).await.unwrap()) })
    });
    let lines = |g: &mut criterion::BenchmarkGroup<'_, _>, name: &str| {
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(kv.get(black_box("k")).await.unwrap()) })
        });
    };
    lines(&mut g, "dbx_none");

    let subscriber = || {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::INFO)
            .finish()
    };
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    {
        let _t = tracing::subscriber::set_default(subscriber());
        lines(&mut g, "dbx_tracing");
    }
    {
        let _m = metrics::set_default_local_recorder(&recorder);
        lines(&mut g, "dbx_metrics");
    }
    {
        let _t = tracing::subscriber::set_default(subscriber());
        let _m = metrics::set_default_local_recorder(&recorder);
        lines(&mut g, "dbx_tracing_metrics");
    }
    g.finish();

    // The same, from 50 tasks on a two-worker runtime: what the shared
    // counters (in-flight, breaker, stats) and the timer wheel cost when
    // the workers contend for them.
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("policy/kv_get_c50");
    benches::bench_shared(&mut g, &mt, "direct", 50, &direct, |direct, _| async move {
        direct.get("k").await.map(|v| drop(black_box(v)))
    });
    benches::bench_shared(&mut g, &mt, "dbx_none", 50, &kv, |kv, _| async move {
        kv.get("k").await.map(|v| drop(black_box(v)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = benches::criterion_config();
    targets = policy
}
criterion_main!(benches);
