//! The statements prepared on one connection.

use super::*;

/// The statements prepared on one connection, so a repeated statement costs
/// one map lookup: the application's, each with its result column names, and
/// apart from them the driver's own (KV), prepared with declared parameter
/// types. The driver's are a fixed handful of texts, never evicted.
#[derive(Default)]
pub(crate) struct StmtCache {
    pub(crate) map: Mutex<HashMap<Box<str>, Arc<Prepared>, foldhash::fast::RandomState>>,
    pub(crate) internal:
        Mutex<HashMap<Box<str>, tokio_postgres::Statement, foldhash::fast::RandomState>>,
}

/// A prepared statement of the application's, its column names and whether
/// dbx can decode every one of its result columns.
pub(crate) struct Prepared {
    pub(crate) stmt: tokio_postgres::Statement,
    pub(crate) names: Arc<[String]>,
    pub(crate) decodable: bool,
}

impl StmtCache {
    pub(crate) fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<Prepared>, foldhash::fast::RandomState>>
    {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, sql: &str) -> Option<Arc<Prepared>> {
        self.map().get(sql).cloned()
    }

    /// Keep `prepared`, starting over when the cache holds `capacity` entries.
    pub(crate) fn insert(&self, sql: &str, prepared: Arc<Prepared>, capacity: usize) {
        let mut map = self.map();
        if map.len() >= capacity {
            map.clear();
        }
        map.insert(sql.into(), prepared);
    }

    pub(crate) fn remove(&self, sql: &str) {
        self.map().remove(sql);
    }

    /// One of the driver's own statements, prepared with `types` on first use.
    pub(crate) async fn internal(
        &self,
        client: &ClientWrapper,
        sql: &str,
        types: &[Type],
    ) -> Result<tokio_postgres::Statement> {
        let cached = self
            .internal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        if let Some(stmt) = cached {
            return Ok(stmt);
        }
        // Boxed: the prepare future (about 1 KB) would otherwise size the
        // future of every KV operation (see `run`).
        let stmt = Box::pin(client.prepare_typed(sql, types))
            .await
            .map_err(map_err)?;
        self.internal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql.into(), stmt.clone());
        Ok(stmt)
    }
}
