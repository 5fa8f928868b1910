//! The shared, pipelined clients: one slot per client.

use super::*;

/// A shared client and when it was opened.
pub(crate) struct SharedConn {
    pub(crate) client: ClientWrapper,
    pub(crate) stmts: StmtCache,
    pub(crate) created: Instant,
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
        guard.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    pub(crate) fn set(&self, conn: Option<Arc<SharedConn>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = conn;
    }
}
