//! TARGET arguments: a connection URL, or the name of a database in
//! dbx.toml (with `DBX_DATABASES__...` environment overrides), resolved to
//! [`dbx::ConnectOptions`] and connected.

use crate::error::{CliError, CliResult, add_secret, add_url_secret};
use dbx::{ConnectOptions, Dbx};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The default config file, used when it exists.
pub(crate) const DEFAULT_CONFIG: &str = "dbx.toml";

/// Whether a TARGET is a URL (has `://` or starts with `sqlite:`) rather
/// than a name.
pub(crate) fn is_url(target: &str) -> bool {
    target.contains("://") || target.starts_with("sqlite:")
}

/// A resolved target: what to call it in output, and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The name from dbx.toml, or the URL as redacted by `ConnectOptions`.
    pub(crate) label: String,
    /// The options, with `--timeout` applied.
    pub(crate) options: ConnectOptions,
}

/// Resolves and connects targets; reads dbx.toml once, when a name needs it.
#[derive(Debug)]
pub(crate) struct Targets {
    /// `--config`, if given.
    config: Option<PathBuf>,
    /// `--timeout`.
    timeout: Option<Duration>,
    /// The named databases, parsed on first use.
    named: OnceLock<Result<Named, String>>,
}

/// The databases of the config file.
#[derive(Debug)]
struct Named {
    /// Where they came from, for messages.
    origin: String,
    dbs: Vec<(String, ConnectOptions)>,
}

impl Targets {
    /// Targets with `--config` and `--timeout`.
    pub(crate) fn new(config: Option<PathBuf>, timeout: Option<Duration>) -> Targets {
        Targets {
            config,
            timeout,
            named: OnceLock::new(),
        }
    }

    /// The config file: `--config` (or `DBX_CONFIG`), else `./dbx.toml` if
    /// it exists. `None`: no file, only environment-defined databases.
    fn config_path(&self) -> Option<PathBuf> {
        match &self.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
        }
    }

    fn named(&self) -> CliResult<&Named> {
        self.named
            .get_or_init(|| self.load())
            .as_ref()
            .map_err(|m| CliError::Usage(m.clone()))
    }

    fn load(&self) -> Result<Named, String> {
        let (text, origin) = match self.config_path() {
            Some(path) => (read(&path)?, path.display().to_string()),
            // Databases may still be defined by DBX_DATABASES__<NAME>__URL.
            None => (String::new(), "environment".to_owned()),
        };
        // Variables that are not UTF-8 cannot be dbx settings: skip them
        // (`std::env::vars` would panic on them).
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        let dbs = dbx::core::config::parse_for(&text, &origin, env, &dbx::registry())
            .map_err(|e| e.to_string())?;
        for (_, options) in &dbs {
            remember_secrets(options);
        }
        Ok(Named { origin, dbs })
    }

    /// Every database of the config, in its order (names sorted).
    pub(crate) fn all(&self) -> CliResult<Vec<Resolved>> {
        let named = self.named()?;
        if named.dbs.is_empty() {
            return Err(CliError::Usage(match self.config_path() {
                Some(_) => format!("{} names no databases", named.origin),
                None => format!(
                    "no TARGET given and no {DEFAULT_CONFIG} here (pass a URL, or --config PATH)"
                ),
            }));
        }
        named
            .dbs
            .iter()
            .map(|(name, options)| self.finish(name.clone(), options.clone()))
            .collect()
    }

    /// Resolve one TARGET. An unknown name is a usage error listing the
    /// known ones.
    pub(crate) fn resolve(&self, target: &str) -> CliResult<Resolved> {
        if is_url(target) {
            add_url_secret(target);
            let options = ConnectOptions::from_url(target)
                .map_err(|e| CliError::Usage(format!("invalid URL: {e}")))?;
            remember_secrets(&options);
            // The scheme and the parameters are checked here, as dbx.toml's
            // are, so that a wrong URL is a usage error before connecting.
            let registry = dbx::registry();
            let driver = registry
                .driver(options.scheme())
                .map_err(|e| CliError::Usage(format!("invalid URL: {e}")))?;
            options
                .check_params(driver.name(), driver.params())
                .map_err(|e| CliError::Usage(format!("invalid URL: {e}")))?;
            let label = options.to_string();
            return self.finish(label, options);
        }
        let named = self.named()?;
        if let Some((name, options)) = named
            .dbs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(target))
        {
            return self.finish(name.clone(), options.clone());
        }
        let known: Vec<&str> = named.dbs.iter().map(|(n, _)| n.as_str()).collect();
        let message = if known.is_empty() {
            match self.config_path() {
                Some(_) => format!(
                    "unknown database `{target}`: {} names no databases",
                    named.origin
                ),
                None => format!(
                    "unknown database `{target}`: not a URL, and there is no {DEFAULT_CONFIG} here (pass --config PATH)"
                ),
            }
        } else {
            format!(
                "unknown database `{target}` (not a URL, and not in {}); known databases: {}",
                named.origin,
                known.join(", ")
            )
        };
        let hint = if target.contains(['/', '.']) {
            format!(" (for a SQLite file, write sqlite:{target})")
        } else {
            String::new()
        };
        Err(CliError::Usage(message + &hint))
    }

    fn finish(&self, label: String, mut options: ConnectOptions) -> CliResult<Resolved> {
        if let Some(t) = self.timeout {
            options
                .set_connect_timeout(t)
                .map_err(|e| CliError::Usage(format!("--timeout: {e}")))?;
        }
        Ok(Resolved { label, options })
    }
}

impl Resolved {
    /// Connect (errors name the target; dbx redacts passwords).
    pub(crate) async fn connect(&self) -> dbx::Result<Dbx> {
        Dbx::connect_with(self.options.clone()).await
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Remember an options' password and secret parameters for redaction.
fn remember_secrets(options: &ConnectOptions) {
    if let Some(p) = options.password() {
        add_secret(p.expose());
    }
    for (name, value) in options.params() {
        if dbx::core::options::is_secret_param(name) {
            add_secret(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names() {
        assert!(is_url("sqlite::memory:"));
        assert!(is_url("sqlite:app.db"));
        assert!(is_url("redis://127.0.0.1"));
        assert!(is_url("mongodb+srv://h/db"));
        assert!(!is_url("cache"));
        assert!(!is_url("primary-db"));
    }
}
