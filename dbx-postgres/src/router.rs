//! Read routing to standbys (`replica_reads=true`): writes, transactions
//! and anything that is not a plain read go to the primary; plain reads go
//! to a standby, unless
//! - this database wrote within the `read_your_writes` window (so a task
//!   reads what it just wrote),
//! - the standby lags by more than `max_replica_lag` (checked every second
//!   on one of its connections), or
//! - the standby just failed to answer (then for a second).
//!
//! In each of those cases the read goes to the primary.

use crate::conn::Conns;
use dbx_core::{Error, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the standby's lag is measured.
const LAG_CHECK: Duration = Duration::from_secs(1);
/// How long reads avoid a standby that failed to answer.
const AVOID_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Seconds of replay lag: 0 when the standby has replayed all it received
/// (an idle primary leaves the last replay timestamp old).
const LAG_SQL: &str = "SELECT COALESCE(CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
     ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END, 0)::float8::text";

#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) primary: Arc<Conns>,
    replica: Option<Replica>,
}

#[derive(Debug)]
struct Replica {
    conns: Arc<Conns>,
    started: Instant,
    /// Milliseconds after `started` of the last write (0: none yet).
    last_write: AtomicU64,
    window: Duration,
    /// Milliseconds after `started` until which reads avoid the standby.
    avoid_until: AtomicU64,
    /// The last measured lag, in milliseconds (for `stats`/debugging).
    lag_ms: AtomicU64,
    max_lag: Option<Duration>,
}

impl Replica {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn avoid_for(&self, d: Duration) {
        let until = self.now_ms() + u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.avoid_until.fetch_max(until, Ordering::Relaxed);
    }
}

impl Router {
    /// Route everything to `primary` (no `replica_reads`).
    pub(crate) fn primary_only(primary: Arc<Conns>) -> Arc<Router> {
        Arc::new(Router {
            primary,
            replica: None,
        })
    }

    /// Route plain reads to `replica` (and watch its lag).
    pub(crate) fn with_replica(
        primary: Arc<Conns>,
        replica: Arc<Conns>,
        window: Duration,
        max_lag: Option<Duration>,
    ) -> Arc<Router> {
        let router = Arc::new(Router {
            primary,
            replica: Some(Replica {
                conns: replica,
                started: Instant::now(),
                last_write: AtomicU64::new(0),
                window,
                avoid_until: AtomicU64::new(0),
                lag_ms: AtomicU64::new(0),
                max_lag,
            }),
        });
        tokio::spawn(watch_lag(Arc::downgrade(&router)));
        router
    }

    /// Where a plain read goes now.
    pub(crate) fn for_read(&self) -> &Arc<Conns> {
        let Some(r) = &self.replica else {
            return &self.primary;
        };
        let now = r.now_ms();
        let last = r.last_write.load(Ordering::Relaxed);
        let window = u64::try_from(r.window.as_millis()).unwrap_or(u64::MAX);
        if (last != 0 && now.saturating_sub(last) < window)
            || now < r.avoid_until.load(Ordering::Relaxed)
        {
            &self.primary
        } else {
            &r.conns
        }
    }

    /// Note a write (or a statement that may write), starting the
    /// read-your-writes window.
    pub(crate) fn wrote(&self) {
        if let Some(r) = &self.replica {
            r.last_write.store(r.now_ms().max(1), Ordering::Relaxed);
        }
    }

    /// After a read on `used` failed: if that was the standby and the
    /// error says it cannot be reached, send reads to the primary for a
    /// second (the retry of the read goes there), and mark the error
    /// partial, so the circuit breaker does not stop the primary's calls
    /// for the standby's failure.
    pub(crate) fn read_failed(&self, used: &Arc<Conns>, e: Error) -> Error {
        if let Some(r) = &self.replica
            && Arc::ptr_eq(used, &r.conns)
            && matches!(
                e.kind(),
                ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::PoolTimeout
            )
        {
            r.avoid_for(AVOID_AFTER_FAILURE);
            return e.set_partial(true);
        }
        e
    }

    /// The standby's connections, if reads are routed.
    pub(crate) fn replica(&self) -> Option<&Arc<Conns>> {
        self.replica.as_ref().map(|r| &r.conns)
    }

    /// Whether plain reads avoid the standby now (it lags or failed), and
    /// its last measured lag; `None` without `replica_reads`.
    pub(crate) fn replica_state(&self) -> Option<(bool, Duration)> {
        let r = self.replica.as_ref()?;
        let avoided = r.now_ms() < r.avoid_until.load(Ordering::Relaxed);
        Some((
            avoided,
            Duration::from_millis(r.lag_ms.load(Ordering::Relaxed)),
        ))
    }

    /// The last measured replay lag of the standby.
    pub(crate) fn replica_lag(&self) -> Option<Duration> {
        self.replica
            .as_ref()
            .map(|r| Duration::from_millis(r.lag_ms.load(Ordering::Relaxed)))
    }

    pub(crate) fn close(&self) {
        self.primary.close();
        if let Some(r) = &self.replica {
            r.conns.close();
        }
    }
}

/// Measure the standby's lag every [`LAG_CHECK`]; a standby that lags too
/// much, or does not answer, is avoided until the next good measurement.
async fn watch_lag(router: Weak<Router>) {
    loop {
        tokio::time::sleep(LAG_CHECK).await;
        let Some(router) = router.upgrade() else {
            return;
        };
        let Some(r) = &router.replica else { return };
        if r.conns.is_closed() {
            return;
        }
        let lag = tokio::time::timeout(r.conns.settings.timeout, async {
            let handle = r.conns.handle().await.ok()?;
            let guard = handle.guard();
            let rows = handle.client().simple_query(LAG_SQL).await;
            guard.disarm();
            let rows = rows.ok()?;
            rows.into_iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    row.get(0).and_then(|s| s.parse::<f64>().ok())
                }
                _ => None,
            })
        })
        .await
        .ok()
        .flatten();
        match lag {
            Some(secs) => {
                let lag = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX);
                r.lag_ms.store(
                    u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                if r.max_lag.is_some_and(|max| lag > max) {
                    tracing::debug!(target: "dbx_postgres", ?lag, "standby lags: reads go to the primary");
                    r.avoid_for(LAG_CHECK + LAG_CHECK / 2);
                } else {
                    r.avoid_until.store(0, Ordering::Relaxed);
                }
            }
            None => r.avoid_for(LAG_CHECK + LAG_CHECK / 2),
        }
    }
}
