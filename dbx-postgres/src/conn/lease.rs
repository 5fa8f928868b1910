//! A connection lent to one statement or stream, and what happens to it
//! when the caller is done or gives up.

use super::*;

/// An exclusive pooled connection. Returned to the pool when dropped, unless
/// it is in an unknown state: a transaction still open is rolled back first;
/// a connection whose statement was abandoned midway is cancelled and closed.
pub(crate) struct Lease {
    pub(crate) obj: Option<Object<PgManager>>,
    pub(crate) cancel: CancelToken,
    pub(crate) tls: MakeTls,
    pub(crate) timeout: Duration,
    pub(crate) broken: AtomicBool,
    pub(crate) in_tx: bool,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("in_tx", &self.in_tx)
            .field("broken", &self.is_broken())
            .finish()
    }
}

/// Dropping it closes the connection instead of returning it to the pool,
/// unless it was taken back out after a clean rollback.
pub(crate) struct Discard(Option<Object<PgManager>>);

impl Drop for Discard {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            drop(Object::take(obj));
        }
    }
}

impl Lease {
    #[allow(clippy::expect_used)]
    pub(crate) fn client(&self) -> &ClientWrapper {
        // The object is only taken out in `drop`.
        &self
            .obj
            .as_ref()
            .expect("a lease holds its connection until dropped")
            .client
    }

    #[allow(clippy::expect_used)]
    pub(crate) fn stmts(&self) -> &StmtCache {
        // The object is only taken out in `drop`.
        &self
            .obj
            .as_ref()
            .expect("a lease holds its connection until dropped")
            .stmts
    }

    #[allow(clippy::expect_used)]
    pub(crate) fn client_mut(&mut self) -> &mut ClientWrapper {
        &mut self
            .obj
            .as_mut()
            .expect("a lease holds its connection until dropped")
            .client
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    pub(crate) fn guard(&self) -> CancelGuard<'_> {
        CancelGuard {
            lease: self,
            armed: true,
        }
    }

    /// A statement was left running: ask the server to cancel it, and never
    /// reuse this connection (a late cancel could hit the next statement).
    pub(crate) fn abandon(&self) {
        if self.broken.swap(true, Ordering::AcqRel) {
            return;
        }
        let (token, tls, limit) = (self.cancel.clone(), self.tls.clone(), self.timeout);
        if let Ok(rt) = Runtime::try_current() {
            rt.spawn(async move {
                match tokio::time::timeout(limit, token.cancel_query(tls)).await {
                    Ok(Ok(())) => tracing::debug!("postgres: cancelled an abandoned statement"),
                    Ok(Err(e)) => tracing::debug!(error = %e, "postgres: cancel request failed"),
                    Err(_) => tracing::debug!("postgres: cancel request timed out"),
                }
            });
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut obj) = self.obj.take() else {
            return;
        };
        if self.is_broken() || obj.client.is_closed() {
            drop(Object::take(obj));
            return;
        }
        if self.in_tx {
            // Roll back before anyone else gets the connection; if that
            // cannot happen, close it (the server rolls back on disconnect).
            let Ok(rt) = Runtime::try_current() else {
                drop(Object::take(obj));
                return;
            };
            let limit = self.timeout;
            let mut held = Discard(Some(obj));
            rt.spawn(async move {
                let ok = match &held.0 {
                    Some(o) => matches!(
                        tokio::time::timeout(limit, o.client.batch_execute("ROLLBACK")).await,
                        Ok(Ok(()))
                    ),
                    None => false,
                };
                if ok && let Some(mut o) = held.0.take() {
                    o.idle_since = Instant::now();
                }
            });
            return;
        }
        obj.idle_since = Instant::now();
    }
}

/// Armed while a statement runs on an exclusive connection; see [`Lease::abandon`].
pub(crate) struct CancelGuard<'a> {
    pub(crate) lease: &'a Lease,
    pub(crate) armed: bool,
}

impl CancelGuard<'_> {
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.lease.abandon();
        }
    }
}
