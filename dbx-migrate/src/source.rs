//! Migration files: their names, their dialect variants, and loading them
//! from a directory or from text embedded at compile time.

use crate::sqltext;
use dbx_core::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The SQL dialects migrations run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite (`sqlite:` URLs).
    Sqlite,
    /// PostgreSQL (`postgres://` URLs).
    Postgres,
}

impl Dialect {
    /// The dialect of a backend, by its name (`db.backend_name()`).
    pub fn of_backend(name: &str) -> Result<Dialect> {
        match name {
            "sqlite" => Ok(Dialect::Sqlite),
            "postgresql" => Ok(Dialect::Postgres),
            other => Err(Error::unsupported(format!(
                "migrations run on SQLite and PostgreSQL, not on {other}"
            ))),
        }
    }

    /// The infix of its file variants (`0001_init.sqlite.sql`).
    pub fn file_tag(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_tag())
    }
}

/// What a file name says: `<version>_<name>[.<dialect>][.down].sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileName {
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) dialect: Option<Dialect>,
    pub(crate) down: bool,
}

/// The expected form, for errors.
const FORM: &str = "<version>_<name>[.sqlite|.postgres][.down].sql, e.g. 0001_create_users.sql";

/// Parse a migration file name; `None` for a file that is not SQL.
pub(crate) fn parse_file_name(file: &str) -> Option<Result<FileName>> {
    let stem = file.strip_suffix(".sql")?;
    let bad = |why: &str| {
        Some(Err(Error::invalid_config(format!(
            "migration file {file:?}: {why}; name files {FORM}"
        ))))
    };
    let (stem, down) = match stem.strip_suffix(".down") {
        Some(s) => (s, true),
        None => (stem, false),
    };
    let (stem, dialect) = if let Some(s) = stem.strip_suffix(".sqlite") {
        (s, Some(Dialect::Sqlite))
    } else if let Some(s) = stem.strip_suffix(".postgres") {
        (s, Some(Dialect::Postgres))
    } else {
        (stem, None)
    };
    let Some((digits, name)) = stem.split_once('_') else {
        return bad("no `_` between the version and the name");
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return bad("the version before the first `_` is not a number");
    }
    let Ok(version) = digits.parse::<u64>() else {
        return bad("the version is too large");
    };
    if version == 0 {
        return bad("versions start at 1");
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad("the name after the version may hold only letters, digits, `_` and `-`");
    }
    Some(Ok(FileName {
        version,
        name: name.to_owned(),
        dialect,
        down,
    }))
}

/// One migration's scripts: generic and per dialect, up and down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Scripts {
    up: Option<String>,
    down: Option<String>,
    up_by: BTreeMap<&'static str, String>,
    down_by: BTreeMap<&'static str, String>,
}

/// A set of versioned migrations, from a directory
/// ([`Migrations::from_dir`]) or embedded in the binary at compile time
/// (`dbx::migrations!("migrations")`).
#[derive(Clone, PartialEq, Eq)]
pub struct Migrations {
    /// By version: name and scripts.
    list: BTreeMap<u64, (String, Scripts)>,
}

impl fmt::Debug for Migrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|(v, (n, _))| format!("{v}_{n}")))
            .finish()
    }
}

/// One migration as it runs on a dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its version (the number of its file name).
    pub version: u64,
    /// Its name (the rest of its file name).
    pub name: String,
    /// The script that applies it.
    pub up: String,
    /// The script that reverts it, if there is a down file.
    pub down: Option<String>,
    /// The up script's checksum (comments and whitespace do not count).
    pub checksum: String,
    /// Whether the up script runs in a transaction (no
    /// `-- dbx:no-transaction` line).
    pub transactional: bool,
}

impl Migrations {
    /// Read every `*.sql` file of `dir` (other files are ignored). A `.sql`
    /// file whose name does not follow the pattern is an error naming it.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Migrations> {
        let dir = dir.as_ref();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::invalid_config(format!(
                "cannot read the migrations directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| Error::invalid_config(format!("reading {}: {e}", dir.display())))?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !file.ends_with(".sql") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::invalid_config(format!("cannot read {}: {e}", path.display()))
            })?;
            files.push((file.to_owned(), text));
        }
        Migrations::from_files(files)
    }

    /// Migrations from `(file name, text)` pairs, as
    /// `dbx::migrations!` embeds them.
    pub fn embedded(files: &[(&str, &str)]) -> Result<Migrations> {
        Migrations::from_files(
            files
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
        )
    }

    fn from_files(mut files: Vec<(String, String)>) -> Result<Migrations> {
        files.sort();
        let mut list: BTreeMap<u64, (String, Scripts)> = BTreeMap::new();
        for (file, text) in files {
            let Some(parsed) = parse_file_name(&file) else {
                continue;
            };
            let f = parsed?;
            let (name, scripts) = list
                .entry(f.version)
                .or_insert_with(|| (f.name.clone(), Scripts::default()));
            if *name != f.name {
                return Err(Error::invalid_config(format!(
                    "two migrations have version {}: {:?} and {:?}",
                    f.version, name, f.name
                )));
            }
            let slot = match (f.dialect, f.down) {
                (None, false) => &mut scripts.up,
                (None, true) => &mut scripts.down,
                (Some(d), false) => {
                    scripts.up_by.insert(d.file_tag(), text);
                    continue;
                }
                (Some(d), true) => {
                    scripts.down_by.insert(d.file_tag(), text);
                    continue;
                }
            };
            *slot = Some(text);
        }
        for (version, (name, s)) in &list {
            if s.up.is_none() && s.up_by.is_empty() {
                return Err(Error::invalid_config(format!(
                    "migration {version}_{name} has a down file but no up file"
                )));
            }
        }
        Ok(Migrations { list })
    }

    /// How many versions there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The versions and names, in order.
    pub fn versions(&self) -> impl Iterator<Item = (u64, &str)> {
        self.list.iter().map(|(v, (n, _))| (*v, n.as_str()))
    }

    /// Each migration as it runs on `dialect`: its own variant where one
    /// exists, else the generic file. A version with neither is an error.
    pub fn for_dialect(&self, dialect: Dialect) -> Result<Vec<Migration>> {
        let tag = dialect.file_tag();
        self.list
            .iter()
            .map(|(version, (name, s))| {
                let up = s.up_by.get(tag).or(s.up.as_ref()).ok_or_else(|| {
                    Error::invalid_config(format!(
                        "migration {version}_{name} has no script for {dialect} (only for {})",
                        s.up_by.keys().copied().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                let down = s.down_by.get(tag).or(s.down.as_ref()).cloned();
                let transactional = !sqltext::has_no_transaction_marker(up);
                Ok(Migration {
                    version: *version,
                    name: name.clone(),
                    checksum: sqltext::checksum(up, transactional),
                    up: up.clone(),
                    down,
                    transactional,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_names() {
        let f = parse_file_name("0001_create_users.sql").unwrap().unwrap();
        assert_eq!(
            (f.version, f.name.as_str(), f.dialect, f.down),
            (1, "create_users", None, false)
        );
        let f = parse_file_name("12_x-y.postgres.down.sql")
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.version, f.name.as_str(), f.dialect, f.down),
            (12, "x-y", Some(Dialect::Postgres), true)
        );
        let f = parse_file_name("3_a.sqlite.sql").unwrap().unwrap();
        assert_eq!(f.dialect, Some(Dialect::Sqlite));
        assert!(parse_file_name("README.md").is_none());
        for bad in [
            "init.sql",
            "x_init.sql",
            "0_init.sql",
            "1_.sql",
            "1_in it.sql",
            "99999999999999999999999_a.sql",
        ] {
            let e = parse_file_name(bad).unwrap().unwrap_err();
            assert_eq!(e.kind(), dbx_core::ErrorKind::InvalidConfig, "{bad}");
            assert!(e.message().contains(bad), "{e}");
        }
    }

    #[test]
    fn variants_and_errors() {
        let m = Migrations::embedded(&[
            ("0001_init.sql", "CREATE TABLE t (x int);"),
            ("0001_init.down.sql", "DROP TABLE t;"),
            (
                "0002_idx.postgres.sql",
                "-- dbx:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);",
            ),
            ("0002_idx.sqlite.sql", "CREATE INDEX i ON t (x);"),
            ("notes.txt", "ignored"),
        ])
        .unwrap();
        assert_eq!(m.len(), 2);
        let pg = m.for_dialect(Dialect::Postgres).unwrap();
        assert!(pg[1].up.contains("CONCURRENTLY") && !pg[1].transactional);
        assert_eq!(pg[0].down.as_deref(), Some("DROP TABLE t;"));
        let lite = m.for_dialect(Dialect::Sqlite).unwrap();
        assert!(!lite[1].up.contains("CONCURRENTLY") && lite[1].transactional);
        assert!(lite[1].down.is_none());

        let e = Migrations::embedded(&[("1_a.sql", ""), ("1_b.sql", "")]).unwrap_err();
        assert!(e.message().contains("two migrations have version 1"), "{e}");
        let e = Migrations::embedded(&[("1_a.down.sql", "")]).unwrap_err();
        assert!(e.message().contains("no up file"), "{e}");
        let only_pg = Migrations::embedded(&[("1_a.postgres.sql", "")]).unwrap();
        let e = only_pg.for_dialect(Dialect::Sqlite).unwrap_err();
        assert!(e.message().contains("no script for sqlite"), "{e}");
    }

    #[test]
    fn missing_directory_is_a_config_error() {
        let e = Migrations::from_dir("/nonexistent/dbx-migrations").unwrap_err();
        assert_eq!(e.kind(), dbx_core::ErrorKind::InvalidConfig);
        assert!(e.message().contains("/nonexistent/dbx-migrations"), "{e}");
    }
}
