//! Several named databases from `dbx.toml`; see [`dbx_core::config`] for the format.

use crate::{Dbx, Error, ErrorKind, Registry, Result};
use std::fmt;
use std::path::Path;

/// Named databases loaded from a `dbx.toml` file (with environment
/// overrides), all connected.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dbx::Result<()> {
/// let dbs = dbx::Databases::from_toml(r#"
///     [databases.cache]
///     url = "sqlite::memory:"
///     [databases.cache.retry]
///     max_attempts = 5
/// "#).await?;
/// let cache = dbs.get("cache")?;
/// cache.kv()?.set("k", b"v", None).await?;
/// assert!(dbs.get("nope").is_err());
/// # Ok(()) }
/// ```
pub struct Databases {
    dbs: Vec<(String, Dbx)>,
}

impl fmt::Debug for Databases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.dbs.iter().map(|(n, d)| (n, d)))
            .finish()
    }
}

impl Databases {
    /// Read `path`, apply `DBX_DATABASES__...` environment overrides, and
    /// connect every database. Errors name the file, the database and the field.
    pub async fn from_file(path: impl AsRef<Path>) -> Result<Databases> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_config(format!("cannot read {}: {e}", path.display())).with_source(e)
        })?;
        Self::from_toml_with(
            &text,
            &path.display().to_string(),
            std::env::vars(),
            &crate::registry(),
        )
        .await
    }

    /// Like [`from_file`](Databases::from_file), from TOML text.
    pub async fn from_toml(text: &str) -> Result<Databases> {
        Self::from_toml_with(text, "dbx.toml", std::env::vars(), &crate::registry()).await
    }

    /// From TOML text, with an explicit environment and registry.
    pub async fn from_toml_with(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
        registry: &Registry,
    ) -> Result<Databases> {
        let entries = dbx_core::config::parse(text, origin, env)?;
        let mut dbs = Vec::with_capacity(entries.len());
        for (name, options) in entries {
            match registry.connect_with(options).await {
                Ok(db) => dbs.push((name, Dbx { db })),
                Err(e) => {
                    for (_, db) in &dbs {
                        db.close().await;
                    }
                    let msg = format!("database `{name}`: {e}");
                    return Err(Error::new(e.kind(), msg)
                        .set_transient(e.is_transient())
                        .with_source(e));
                }
            }
        }
        Ok(Databases { dbs })
    }

    /// The database of that name, or [`ErrorKind::NotFound`] listing the names there are.
    pub fn get(&self, name: &str) -> Result<&Dbx> {
        self.dbs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "no database named `{name}`; configured: {}",
                        self.names().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    }

    /// The configured names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.dbs.iter().map(|(n, _)| n.as_str())
    }

    /// Close every database gracefully.
    pub async fn close(&self) {
        for (_, db) in &self.dbs {
            db.close().await;
        }
    }
}
