//! Several named databases from `dbx.toml`; see [`dbx_core::config`] for the format.

use crate::{Dbx, Error, ErrorKind, Registry, Result};
use std::fmt;
use std::future::Future;
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
    ///
    /// The future is `Send`, so it can be spawned:
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("dbx-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let path = dir.join("dbx.toml");
    /// # std::fs::write(&path, "[databases.cache]\nurl = \"sqlite::memory:\"\n")?;
    /// let dbs = tokio::spawn(dbx::Databases::from_file(path)).await??;
    /// dbs.get("cache")?.kv()?.set("k", b"v", None).await?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn from_file(
        path: impl AsRef<Path>,
    ) -> impl Future<Output = Result<Databases>> + Send + 'static {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let registry = crate::registry();
        // Read and parsed here, before the future: `std::env::Vars` is not
        // `Send`, and the future must be.
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid_config(format!("cannot read {origin}: {e}")).with_source(e))
            .and_then(|text| {
                dbx_core::config::parse_for(&text, &origin, std::env::vars(), &registry)
            });
        async move { Self::connect_all(parsed?, &origin, &registry).await }
    }

    /// Like [`from_file`](Databases::from_file), from TOML text.
    pub fn from_toml(text: &str) -> impl Future<Output = Result<Databases>> + Send + 'static {
        let registry = crate::registry();
        let parsed = dbx_core::config::parse_for(text, "dbx.toml", std::env::vars(), &registry);
        async move { Self::connect_all(parsed?, "dbx.toml", &registry).await }
    }

    /// From TOML text, with an explicit environment and registry. `origin`
    /// names the file in errors.
    ///
    /// The text and the environment are parsed before the returned future
    /// runs, so the future is `Send` whatever `env` is.
    pub fn from_toml_with<'r>(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
        registry: &'r Registry,
    ) -> impl Future<Output = Result<Databases>> + Send + 'r {
        let parsed = dbx_core::config::parse_for(text, origin, env, registry);
        let origin = origin.to_owned();
        async move { Self::connect_all(parsed?, &origin, registry).await }
    }

    /// Connect each database in turn; on the first failure close the ones
    /// already open. A configuration error found only by the driver names
    /// the file too.
    async fn connect_all(
        entries: Vec<(String, dbx_core::ConnectOptions)>,
        origin: &str,
        registry: &Registry,
    ) -> Result<Databases> {
        let mut dbs = Vec::with_capacity(entries.len());
        for (name, options) in entries {
            match registry.connect_with(options).await {
                Ok(db) => dbs.push((name, Dbx { db })),
                Err(e) => {
                    for (_, db) in &dbs {
                        db.close().await;
                    }
                    let msg = if e.kind() == ErrorKind::InvalidConfig {
                        format!("{origin}: database `{name}`: {e}")
                    } else {
                        format!("database `{name}`: {e}")
                    };
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
