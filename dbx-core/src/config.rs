//! `dbx.toml`: several named databases in one file, with environment overrides.
//!
//! ```toml
//! [databases.primary]
//! url = "postgres://app@db/app"
//! pool_max_size = 16
//! timeout = "5s"
//!
//! [databases.cache]
//! url = "redis://cache:6379"
//! [databases.cache.retry]
//! max_attempts = 5
//! [databases.cache.breaker]
//! open_for = "2s"
//!
//! [databases.local]
//! url = "sqlite:data/app.db"
//! params = { journal_mode = "wal", kv_table = "cache" }
//! ```
//!
//! Keys of a database: `url` (required), `username`, `password`,
//! `pool_max_size`, `timeout`, `connect_timeout`, `acquire_timeout`,
//! `log_statements`, `health_check_interval`, `close_timeout`, and the tables
//! `retry` (`max_attempts`, `min_backoff`, `max_backoff`, `max_elapsed`,
//! `jitter`, `budget_ratio`, `budget_min_per_sec`), `breaker` (`enabled`,
//! `consecutive_failures`, `failure_rate`, `window`, `min_calls`, `open_for`,
//! `half_open_probes`), `limit` (`max_concurrency`, `rate_limit`,
//! `rate_burst`), `cache` (`enabled`, `max_entries`, `max_bytes`, `ttl`,
//! `swr`, `sync`, `tier_timeout`, `namespace`: the result cache, with the
//! `cache` feature) and `params` (backend-specific URL parameters). Durations
//! are strings like `"250ms"` or numbers of seconds. Unknown keys are errors.
//!
//! # Environment overrides
//!
//! `DBX_DATABASES__<NAME>__<KEY>` overrides a key, and
//! `DBX_DATABASES__<NAME>__<TABLE>__<KEY>` a key of a table, for example
//! `DBX_DATABASES__CACHE__URL=redis://...`,
//! `DBX_DATABASES__PRIMARY__PASSWORD=...`,
//! `DBX_DATABASES__CACHE__RETRY__MAX_ATTEMPTS=5`. Names and keys are
//! case-insensitive. A name the file does not have defines a new database
//! (it then needs a `URL`). Secrets belong in the environment, not the file.

use crate::{ConnectOptions, Error, Registry, Result};

/// Keys of a database's table besides the settings of [`crate::settings`]:
/// where it is, who connects, and the tables of settings.
const OWN_KEYS: &[&str] = &["url", "username", "password"];
/// The tables of a database: the settings' tables, and `params` for the
/// backend's own parameters (checked by its driver).
const TABLES: &[&str] = &["retry", "breaker", "limit", "cache", "params"];

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "DBX_DATABASES__";

/// One setting from the file or the environment, before it is applied.
#[derive(Debug)]
struct Setting {
    /// `retry.max_attempts`, `url`, `params.kv_table`...
    path: String,
    value: String,
    /// Where it came from, for errors: `dbx.toml` or the variable name.
    origin: String,
}

/// One database's settings, in the order they apply.
#[derive(Debug, Default)]
struct Entry {
    name: String,
    settings: Vec<Setting>,
}

/// Parse a `dbx.toml` text and the environment into named connection options.
/// `origin` names the file in errors; `env` is usually `std::env::vars()`.
///
/// Backend parameters (`params = {...}`) are checked by the driver when
/// connecting; [`parse_for`] checks them here, against a registry.
pub fn parse(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, ConnectOptions)>> {
    parse_inner(text, origin, env, None)
}

/// [`parse`], and check each database's scheme and backend parameters
/// against the drivers of `registry`, so that every configuration error
/// names the file (or the environment variable), the database and the key.
pub fn parse_for(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
    registry: &Registry,
) -> Result<Vec<(String, ConnectOptions)>> {
    parse_inner(text, origin, env, Some(registry))
}

fn parse_inner(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
    registry: Option<&Registry>,
) -> Result<Vec<(String, ConnectOptions)>> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        // The message only: toml's full Display quotes the offending line,
        // which may hold a password.
        Error::invalid_config(format!(
            "{origin}: line {line}, column {col}: invalid TOML: {}",
            e.message().trim()
        ))
    })?;
    let mut entries: Vec<Entry> = Vec::new();
    for (key, value) in &table {
        if key != "databases" {
            return Err(Error::invalid_config(format!(
                "{origin}: unknown top-level key `{key}`; expected [databases.<name>] tables"
            )));
        }
        let dbs = value.as_table().ok_or_else(|| {
            Error::invalid_config(format!(
                "{origin}: `databases` must be a table of [databases.<name>]"
            ))
        })?;
        for (name, db) in dbs {
            let db = db.as_table().ok_or_else(|| {
                Error::invalid_config(format!("{origin}: database `{name}` must be a table"))
            })?;
            let mut entry = Entry {
                name: name.clone(),
                settings: Vec::new(),
            };
            collect(db, "", origin, name, &mut entry.settings)?;
            entries.push(entry);
        }
    }
    apply_env(&mut entries, env)?;
    entries
        .into_iter()
        .map(|e| {
            let opts = build(&e, origin, registry)?;
            Ok((e.name, opts))
        })
        .collect()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Whether `key` may stand in `section` (`""`: the database's table).
/// `None` for `params`, whose keys the driver checks.
fn key_known(section: &str, key: &str) -> Option<bool> {
    if section == "params" {
        return None;
    }
    Some(
        crate::settings::by_key(section, key).is_some()
            || (section.is_empty() && (OWN_KEYS.contains(&key) || TABLES.contains(&key))),
    )
}

/// The keys `section` takes, for error messages.
fn known_keys(section: &str) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = crate::settings::SETTINGS
        .iter()
        .filter(|s| s.table == section)
        .map(|s| s.key)
        .collect();
    if section.is_empty() {
        keys.splice(0..0, OWN_KEYS.iter().copied());
        keys.extend(TABLES);
    }
    keys
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn collect(
    table: &toml::Table,
    section: &str,
    origin: &str,
    db: &str,
    out: &mut Vec<Setting>,
) -> Result<()> {
    for (key, value) in table {
        let path = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        if key_known(section, key) == Some(false) {
            let known = known_keys(section);
            return Err(Error::invalid_config(format!(
                "{origin}: database `{db}`: unknown key `{path}`; known keys{}: {}",
                if section.is_empty() {
                    String::new()
                } else {
                    format!(" of [{section}]")
                },
                known.join(", ")
            )));
        }
        match value {
            toml::Value::Table(t) if section.is_empty() && TABLES.contains(&key.as_str()) => {
                collect(t, key, origin, db, out)?;
            }
            v => {
                let value = scalar(v).ok_or_else(|| {
                    Error::invalid_config(format!(
                        "{origin}: database `{db}`: `{path}` must be a string, number or boolean"
                    ))
                })?;
                out.push(Setting {
                    path,
                    value,
                    origin: origin.to_owned(),
                });
            }
        }
    }
    Ok(())
}

fn apply_env(
    entries: &mut Vec<Entry>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<()> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.to_ascii_uppercase().starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, value) in vars {
        let rest = &var[ENV_PREFIX.len()..];
        let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let (name, path) = match parts.as_slice() {
            [name, key] => (name.clone(), key.clone()),
            [name, section, key] => (name.clone(), format!("{section}.{key}")),
            _ => {
                return Err(Error::invalid_config(format!(
                    "environment variable {var}: expected {ENV_PREFIX}<NAME>__<KEY> or {ENV_PREFIX}<NAME>__<TABLE>__<KEY>"
                )));
            }
        };
        let (section, key) = path.split_once('.').unwrap_or(("", &path));
        let section_ok = section.is_empty() || TABLES.contains(&section);
        let key_ok = key_known(section, key) != Some(false)
            && !(section.is_empty() && TABLES.contains(&key));
        if !section_ok || !key_ok {
            return Err(Error::invalid_config(format!(
                "environment variable {var}: unknown key `{path}`"
            )));
        }
        let idx = match entries
            .iter()
            .position(|e| e.name.eq_ignore_ascii_case(&name))
        {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    name,
                    settings: Vec::new(),
                });
                entries.len() - 1
            }
        };
        entries[idx].settings.push(Setting {
            path,
            value,
            origin: format!("environment variable {var}"),
        });
    }
    Ok(())
}

/// The URL parameter a config path sets: a setting's, or a backend
/// parameter's name under `params`.
fn param_name(path: &str) -> String {
    let (section, key) = path.split_once('.').unwrap_or(("", path));
    match crate::settings::by_key(section, key) {
        Some(s) => s.param.to_owned(),
        None => key.to_owned(),
    }
}

fn build(entry: &Entry, file: &str, registry: Option<&Registry>) -> Result<ConnectOptions> {
    let name = &entry.name;
    // The last `url` wins (the environment's over the file's).
    let url = entry
        .settings
        .iter()
        .rev()
        .find(|s| s.path == "url")
        .ok_or_else(|| {
            Error::invalid_config(format!(
                "{file}: database `{name}` has no url (set it in the file or in {ENV_PREFIX}{}__URL)",
                name.to_ascii_uppercase()
            ))
        })?;
    let at = |s: &Setting, e: Error| {
        Error::invalid_config(format!(
            "{}: database `{name}`: {}: {}",
            s.origin,
            s.path,
            e.message()
        ))
    };
    let mut opts = ConnectOptions::from_url(&url.value).map_err(|e| at(url, e))?;
    let driver = match registry {
        Some(r) => Some(r.driver(opts.scheme()).map_err(|e| at(url, e))?),
        None => None,
    };
    for s in entry.settings.iter().filter(|s| s.path != "url") {
        let r = match s.path.as_str() {
            "username" => {
                opts.set_username(s.value.clone());
                Ok(())
            }
            "password" => {
                opts.set_password(s.value.clone());
                Ok(())
            }
            path => opts.set_param(param_name(path), s.value.clone()).map(drop),
        };
        r.map_err(|e| at(s, e))?;
    }
    if let Some(driver) = driver {
        // Every parameter, the URL's included, against the driver's list;
        // the error names where the offending one was set.
        let known = driver.params();
        if let Err(e) = opts.check_params(driver.name(), known) {
            let culprit = entry
                .settings
                .iter()
                .rev()
                .find(|s| {
                    s.path.starts_with("params.")
                        && e.message().contains(&format!("`{}`", param_name(&s.path)))
                })
                .unwrap_or(url);
            return Err(at(culprit, e));
        }
    }
    // Checks across fields: name the setting the message is about (the
    // last one that set that field), or else the file.
    opts.policy().validate().map_err(|e| {
        let field = |s: &&Setting| {
            e.message()
                .strip_prefix(param_name(&s.path).as_str())
                .is_some_and(|rest| rest.starts_with(' '))
        };
        match entry.settings.iter().rev().find(field) {
            Some(s) => at(s, e),
            None => Error::invalid_config(format!("{file}: database `{name}`: {}", e.message())),
        }
    })?;
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::time::Duration;

    const FILE: &str = r#"
[databases.primary]
url = "postgres://app@db/app"
pool_max_size = 16
timeout = "5s"

[databases.cache]
url = "redis://cache:6379"
[databases.cache.retry]
max_attempts = 5
[databases.cache.breaker]
enabled = false

[databases.local]
url = "sqlite:data/app.db"
params = { journal_mode = "wal" }
"#;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_named_databases() {
        let dbs = parse(FILE, "dbx.toml", env(&[])).unwrap();
        let names: Vec<&str> = dbs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cache", "local", "primary"]);
        let primary = &dbs[2].1;
        assert_eq!(primary.pool_max_size(), Some(16));
        assert_eq!(primary.timeout(), Duration::from_secs(5));
        let cache = &dbs[0].1;
        assert_eq!(cache.policy().retry.max_attempts, 5);
        assert!(!cache.policy().breaker.enabled);
        assert_eq!(dbs[1].1.param("journal_mode"), Some("wal"));
    }

    #[test]
    fn environment_overrides_and_adds() {
        let dbs = parse(
            FILE,
            "dbx.toml",
            env(&[
                ("DBX_DATABASES__CACHE__URL", "redis://other:6380"),
                ("DBX_DATABASES__CACHE__RETRY__MAX_ATTEMPTS", "2"),
                ("DBX_DATABASES__PRIMARY__PASSWORD", "s3cret"),
                ("DBX_DATABASES__EXTRA__URL", "sqlite::memory:"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        let get = |n: &str| &dbs.iter().find(|(name, _)| name == n).unwrap().1;
        assert_eq!(get("cache").host(), "other");
        assert_eq!(get("cache").policy().retry.max_attempts, 2);
        assert_eq!(get("primary").password().unwrap().expose(), "s3cret");
        assert_eq!(get("extra").path(), ":memory:");
        assert!(!format!("{:?}", get("primary")).contains("s3cret"));
    }

    #[test]
    fn errors_name_the_file_the_database_and_the_field() {
        let cases = [
            (
                "[databases.a]\nurl = \"redis://h\"\npool_max_sise = 3\n",
                "database `a`: unknown key `pool_max_sise`",
            ),
            (
                "[databases.a]\nurl = \"redis://h\"\n[databases.a.retry]\nmax_atempts = 3\n",
                "unknown key `retry.max_atempts`",
            ),
            (
                "[databases.a]\nurl = \"redis://h\"\ntimeout = \"soon\"\n",
                "database `a`: timeout",
            ),
            (
                "[databases.a]\nurl = \"redis://h\"\n[databases.a.breaker]\nfailure_rate = 3.0\n",
                "breaker_failure_rate",
            ),
            (
                "[databases.a]\nurl = \"redis://h\"\n[databases.a.retry]\nmin_backoff = \"2s\"\nmax_backoff = \"1s\"\n",
                "retry_max_backoff",
            ),
            (
                "[databases.a]\npool_max_size = 3\n",
                "database `a` has no url",
            ),
            ("[databases.a]\nurl = \"::\"\n", "database `a`: url"),
            (
                "[database.a]\nurl = \"x\"\n",
                "unknown top-level key `database`",
            ),
            ("[databases.a]\nurl = [1, 2]\n", "must be a string"),
        ];
        for (text, needle) in cases {
            let e = parse(text, "conf/dbx.toml", env(&[])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{text}");
            assert!(e.to_string().contains(needle), "{text}\n{e}");
            assert!(e.to_string().contains("conf/dbx.toml"), "{e}");
        }
        let e = parse(
            FILE,
            "dbx.toml",
            env(&[("DBX_DATABASES__CACHE__RETRY__MAX_ATTEMPTS", "lots")]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("DBX_DATABASES__CACHE__RETRY__MAX_ATTEMPTS"),
            "{e}"
        );
        let e = parse(
            FILE,
            "dbx.toml",
            env(&[("DBX_DATABASES__CACHE__BOGUS", "1")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown key `bogus`"), "{e}");
    }

    /// A driver that only declares its parameters (never connected here).
    #[derive(Debug)]
    struct Declares;

    #[async_trait::async_trait]
    impl crate::driver::Driver for Declares {
        fn name(&self) -> &'static str {
            "declares"
        }
        fn schemes(&self) -> &'static [&'static str] {
            &["declares"]
        }
        fn params(&self) -> &'static [&'static str] {
            &["kv_table"]
        }
        async fn connect(
            &self,
            _: &ConnectOptions,
        ) -> Result<std::sync::Arc<dyn crate::driver::Backend>> {
            Err(Error::invalid_config("not for connecting"))
        }
    }

    #[test]
    fn driver_parameters_and_policy_errors_name_the_file() {
        let mut registry = Registry::new();
        registry.register(Declares);
        let check = |text: &str, vars: &[(&str, &str)]| {
            parse_for(text, "conf/dbx.toml", env(vars), &registry).unwrap_err()
        };
        let e = check(
            "[databases.a]\nurl = \"declares://h\"\nparams = { kv_tabel = \"x\" }\n",
            &[],
        );
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let msg = e.to_string();
        assert!(
            msg.contains(
                "conf/dbx.toml: database `a`: params.kv_tabel: unknown parameter `kv_tabel`"
            ),
            "{msg}"
        );
        assert!(msg.contains("kv_table"), "the known ones are listed: {msg}");
        // In the URL: the url key is named.
        let e = check("[databases.a]\nurl = \"declares://h?kv_tabel=x\"\n", &[]);
        assert!(
            e.to_string()
                .contains("conf/dbx.toml: database `a`: url: unknown parameter"),
            "{e}"
        );
        // Set by the environment: the variable is named, not the file.
        let e = check(
            "[databases.a]\nurl = \"declares://h\"\n",
            &[("DBX_DATABASES__A__PARAMS__KV_TABEL", "x")],
        );
        assert!(
            e.to_string().contains(
                ": environment variable DBX_DATABASES__A__PARAMS__KV_TABEL: database `a`"
            ),
            "{e}"
        );
        // An unknown scheme names the file and the url key.
        let e = check("[databases.a]\nurl = \"nope://h\"\n", &[]);
        assert!(
            e.to_string()
                .contains("conf/dbx.toml: database `a`: url: unknown scheme `nope`"),
            "{e}"
        );
        // Invalid breaker values name the file and the key that set them.
        let e = check(
            "[databases.a]\nurl = \"declares://h\"\n[databases.a.breaker]\nenabled = true\nfailure_rate = 3.0\n",
            &[],
        );
        assert!(
            e.to_string().contains(
                "conf/dbx.toml: database `a`: breaker.failure_rate: breaker_failure_rate"
            ),
            "{e}"
        );
        // Known parameters pass.
        let dbs = parse_for(
            "[databases.a]\nurl = \"declares://h\"\nparams = { kv_table = \"x\" }\n",
            "conf/dbx.toml",
            env(&[]),
            &registry,
        )
        .unwrap();
        assert_eq!(dbs[0].1.param("kv_table"), Some("x"));
    }

    #[test]
    fn syntax_errors_never_quote_the_file() {
        let text = "[databases.a]\nurl = \"postgres://u:hunter2@h/db\" oops\n";
        let e = parse(text, "dbx.toml", env(&[])).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    }
}
