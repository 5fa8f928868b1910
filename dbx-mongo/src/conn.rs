//! The connection state shared by the backend, its capabilities and
//! transactions: the client, pool figures from its events, and the watch
//! on the seeds while connecting.

use super::*;

/// Connection figures kept from the driver's connection-pool events.
#[derive(Debug, Default)]
pub(crate) struct PoolCounters {
    pub(crate) size: AtomicIsize,
    pub(crate) in_use: AtomicIsize,
    pub(crate) waiting: AtomicIsize,
}

impl PoolCounters {
    pub(crate) fn on(&self, ev: &CmapEvent) {
        let (counter, delta) = match ev {
            CmapEvent::ConnectionCreated(_) => (&self.size, 1),
            CmapEvent::ConnectionClosed(_) => (&self.size, -1),
            CmapEvent::ConnectionCheckoutStarted(_) => (&self.waiting, 1),
            CmapEvent::ConnectionCheckoutFailed(_) => (&self.waiting, -1),
            CmapEvent::ConnectionCheckedOut(_) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                (&self.in_use, 1)
            }
            CmapEvent::ConnectionCheckedIn(_) => (&self.in_use, -1),
            _ => return,
        };
        counter.fetch_add(delta, Ordering::Relaxed);
    }

    pub(crate) fn get(c: &AtomicIsize) -> usize {
        usize::try_from(c.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

/// Watches the seeds' monitors while connecting: once every seed has
/// failed a heartbeat and none has succeeded, the connect fails with the
/// last failure instead of waiting for server selection to time out.
#[derive(Debug, Clone)]
pub(crate) struct SeedWatch(Arc<std::sync::Mutex<SeedState>>);

#[derive(Debug)]
pub(crate) struct SeedState {
    pub(crate) seeds: usize,
    pub(crate) failed: std::collections::HashSet<mongodb::options::ServerAddress>,
    pub(crate) any_succeeded: bool,
    pub(crate) tell: Option<tokio::sync::oneshot::Sender<mongodb::error::Error>>,
}

impl SeedWatch {
    /// Hook into the client's SDAM events; the receiver gets the failure
    /// that left no seed reachable.
    pub(crate) fn install(
        client: &mut mongodb::options::ClientOptions,
    ) -> (
        SeedWatch,
        tokio::sync::oneshot::Receiver<mongodb::error::Error>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let watch = SeedWatch(Arc::new(std::sync::Mutex::new(SeedState {
            seeds: client.hosts.len(),
            failed: std::collections::HashSet::new(),
            any_succeeded: false,
            tell: Some(tx),
        })));
        let w = watch.clone();
        client.sdam_event_handler = Some(EventHandler::callback(move |ev: SdamEvent| w.on(ev)));
        (watch, rx)
    }

    pub(crate) fn on(&self, ev: SdamEvent) {
        let Ok(mut st) = self.0.lock() else { return };
        if st.tell.is_none() {
            return;
        }
        match ev {
            SdamEvent::ServerHeartbeatSucceeded(_) => st.any_succeeded = true,
            SdamEvent::ServerHeartbeatFailed(f) if !st.any_succeeded => {
                st.failed.insert(f.server_address);
                if st.seeds > 0
                    && st.failed.len() >= st.seeds
                    && let Some(tell) = st.tell.take()
                {
                    let _ = tell.send(f.failure);
                }
            }
            _ => {}
        }
    }

    /// Connected (or given up): later events are ignored.
    pub(crate) fn disarm(&self) {
        if let Ok(mut st) = self.0.lock() {
            st.tell = None;
            st.failed.clear();
        }
    }
}

/// State shared by the backend, its capabilities and transactions.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: mongodb::Client,
    pub(crate) db: mongodb::Database,
    pub(crate) timeout: Duration,
    /// Whether the server is a replica set member or mongos (transactions).
    pub(crate) transactions: bool,
    pub(crate) closed: AtomicBool,
    pub(crate) pool: Arc<PoolCounters>,
    pub(crate) pool_max_size: u32,
    pub(crate) target: String,
    /// Whether closing shuts the client down (not for a handle made by
    /// `with_options`, which shares another's client).
    pub(crate) owns_client: bool,
}

impl Shared {
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(
                Error::new(ErrorKind::Closed, "the MongoDB client was closed")
                    .with_backend(BACKEND),
            )
        } else {
            Ok(())
        }
    }

    /// A session with a transaction started, or Unsupported on a standalone server.
    pub(crate) async fn start_transaction(&self) -> Result<mongodb::ClientSession> {
        self.check_open()?;
        if !self.transactions {
            return Err(Error::unsupported(format!(
                "transactions need a replica set or a sharded cluster; the server at {} is a standalone mongod",
                self.target
            ))
            .with_backend(BACKEND));
        }
        let mut session = self.client.start_session().await.map_err(map_err)?;
        session.start_transaction().await.map_err(map_err)?;
        Ok(session)
    }
}
