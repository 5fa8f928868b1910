//! The connection state shared by the backend and its vectors: the gRPC
//! client and the closed flag.

use super::*;

/// State shared by the backend and its vector capability.
pub(crate) struct Shared {
    pub(crate) client: qdrant_client::Qdrant,
    pub(crate) closed: AtomicBool,
    pub(crate) timeout: Duration,
    /// `host:port`, for messages (never has the API key).
    pub(crate) target: String,
    pub(crate) server_version: String,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("target", &self.target)
            .field("server_version", &self.server_version)
            .field("closed", &self.closed)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::new(ErrorKind::Closed, "the Qdrant client was closed").with_backend(BACKEND))
        } else {
            Ok(())
        }
    }
}
