//! The shared, pipelined clients: one slot per client, and how busy each is.
//!
//! A pipelined connection answers in order, so one slow statement holds up
//! every statement sent after it on the same connection. To keep that from
//! spreading, each shared client counts its statements in flight and notes
//! when it last answered one; a client that is busy and has answered nothing
//! for `shared_stall` is *stalled*, and new statements go to another shared
//! client or, when every one is stalled, to an exclusive pooled connection
//! (see `Conns::handle`). Statements are pipelined only behind a client that
//! keeps answering, so at most the statements arriving within `shared_stall`
//! of a slow one's start can end up behind it. A statement whose caller gave up still occupies the
//! connection on the server: it keeps counting as in flight until an empty
//! query sent after it comes back ([`SharedConn::drain`]).

use super::*;

/// A shared client, when it was opened and how busy it is.
pub(crate) struct SharedConn {
    pub(crate) client: ClientWrapper,
    pub(crate) stmts: StmtCache,
    pub(crate) created: Instant,
    /// Statements sent and not yet answered, abandoned ones included.
    inflight: AtomicUsize,
    /// When (nanoseconds since `created`) the client last answered a
    /// statement (0: when it was opened).
    answered: AtomicU64,
    /// Statements whose callers gave up, not yet known to be finished.
    abandoned: AtomicUsize,
    /// A [`SharedConn::drain`] task runs.
    draining: AtomicBool,
    /// Abandoned statements did not finish within `drain_limit`: the slot
    /// replaces this connection, which closes once its last user is done.
    retired: AtomicBool,
    drain_limit: Duration,
}

impl SharedConn {
    pub(crate) fn new(client: ClientWrapper, drain_limit: Duration) -> SharedConn {
        SharedConn {
            client,
            stmts: StmtCache::default(),
            created: Instant::now(),
            inflight: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
            abandoned: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            drain_limit,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Statements in flight.
    pub(crate) fn load(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    /// Busy, and nothing answered for longer than `limit`: whatever runs at
    /// the head of its pipeline may be slow, and anything sent now would
    /// wait for it. A client that was idle counts as stalled from its first
    /// statement until that one is answered (so statements arriving together
    /// spread over idle clients and the pool instead of queueing behind one
    /// another); one that keeps answering, as under a stream of fast
    /// statements, never does.
    pub(crate) fn stalled(&self, limit: Duration) -> bool {
        let since = self.answered.load(Ordering::Acquire);
        self.load() > 0 && u128::from(self.now().saturating_sub(since)) > limit.as_nanos()
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Count one statement in flight until the returned guard is dropped.
    pub(crate) fn enter(self: Arc<Self>) -> InFlight {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            conn: self,
            abandoned: AtomicBool::new(false),
        }
    }

    /// `n` statements were answered.
    fn finish(&self, n: usize) {
        if n > 0 {
            self.answered.store(self.now(), Ordering::Release);
            self.inflight.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// A statement's caller gave up: it stays counted until the server is
    /// known to be done with it.
    fn abandon(self: &Arc<Self>) {
        self.abandoned.fetch_add(1, Ordering::AcqRel);
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        match Runtime::try_current() {
            Ok(rt) => {
                let conn = self.clone();
                drop(rt.spawn(conn.drain()));
            }
            Err(_) => {
                // No runtime to wait on: stop counting it.
                self.finish(self.abandoned.swap(0, Ordering::AcqRel));
                self.draining.store(false, Ordering::Release);
            }
        }
    }

    /// Wait until the abandoned statements are done: answers come in order,
    /// so once an empty query sent now is answered, every statement sent
    /// before it is. One more round trip per batch of abandoned statements.
    /// When that takes longer than `drain_limit` (a statement without a
    /// `statement_timeout` that keeps running), the connection is retired.
    async fn drain(self: Arc<Self>) {
        loop {
            let n = self.abandoned.load(Ordering::Acquire);
            let answered =
                tokio::time::timeout(self.drain_limit, self.client.simple_query("")).await;
            self.abandoned.fetch_sub(n, Ordering::AcqRel);
            self.finish(n);
            if answered.is_err() {
                tracing::debug!(
                    limit = ?self.drain_limit,
                    "postgres: an abandoned statement still runs on a shared client; replacing it"
                );
                self.retired.store(true, Ordering::Release);
                self.finish(self.abandoned.swap(0, Ordering::AcqRel));
                self.draining.store(false, Ordering::Release);
                return;
            }
            self.draining.store(false, Ordering::Release);
            if self.abandoned.load(Ordering::Acquire) == 0
                || self.draining.swap(true, Ordering::AcqRel)
            {
                return;
            }
        }
    }
}

/// One statement in flight on a shared client.
pub(crate) struct InFlight {
    pub(crate) conn: Arc<SharedConn>,
    /// Set when the statement's caller gave up before its answer.
    pub(crate) abandoned: AtomicBool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.abandoned.load(Ordering::Acquire) {
            self.conn.abandon();
        } else {
            self.conn.finish(1);
        }
    }
}

#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) current: RwLock<Option<Arc<SharedConn>>>,
    pub(crate) connecting: tokio::sync::Mutex<()>,
    /// Connection attempts made so far; waiters that see it move on after
    /// a failure report that failure instead of trying again one by one.
    pub(crate) attempts: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    pub(crate) kicked: AtomicBool,
}

impl Slot {
    pub(crate) fn live(&self) -> Option<Arc<SharedConn>> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|c| !c.client.is_closed() && !c.is_retired())
            .cloned()
    }

    pub(crate) fn set(&self, conn: Option<Arc<SharedConn>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = conn;
    }
}
