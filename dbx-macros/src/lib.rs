//! Procedural macros of dbx. Use them through the facade: `dbx::migrations!`.

use proc_macro::TokenStream;
use std::path::PathBuf;
use std::str::FromStr;

/// Embed a directory of SQL migrations in the binary at compile time.
///
/// `dbx::migrations!("migrations")` reads every `*.sql` file of
/// `<crate>/migrations` (the path is relative to the crate's `Cargo.toml`)
/// while compiling, checks their names, and expands to an expression of
/// type `dbx::Result<dbx::migrate::Migrations>`. Each file goes in with
/// `include_str!`, so editing one rebuilds; adding a file rebuilds only
/// with a build script saying `cargo:rerun-if-changed=migrations`.
#[proc_macro]
pub fn migrations(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(ts) => ts,
        Err(msg) => error(&msg),
    }
}

fn error(msg: &str) -> TokenStream {
    let escaped = format!("{msg:?}");
    TokenStream::from_str(&format!("::core::compile_error!({escaped})"))
        .unwrap_or_else(|_| TokenStream::new())
}

fn expand(input: TokenStream) -> Result<TokenStream, String> {
    let text = input.to_string();
    let literal = text.trim();
    let dir = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|s| !s.contains('\\') && !s.contains('"'))
        .ok_or_else(|| {
            format!("migrations! takes one plain string literal, the directory: got `{literal}`")
        })?;
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .map_err(|_| "migrations!: CARGO_MANIFEST_DIR is not set".to_owned())?;
    let path = root.join(dir);
    let entries = std::fs::read_dir(&path)
        .map_err(|e| format!("migrations!: cannot read {}: {e}", path.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("migrations!: reading {}: {e}", path.display()))?;
        let p = entry.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !p.is_file() || !name.ends_with(".sql") {
            continue;
        }
        check_name(&name)?;
        let abs = p
            .canonicalize()
            .map_err(|e| format!("migrations!: {}: {e}", p.display()))?;
        let abs = abs
            .to_str()
            .ok_or_else(|| format!("migrations!: {} is not UTF-8", abs.display()))?
            .to_owned();
        files.push((name, abs));
    }
    files.sort();
    let mut code = String::from("::dbx::migrate::Migrations::embedded(&[");
    for (name, abs) in files {
        code.push_str(&format!("({name:?}, ::core::include_str!({abs:?})),"));
    }
    code.push_str("])");
    TokenStream::from_str(&code).map_err(|e| format!("migrations!: {e}"))
}

/// The file-name rule of `dbx_migrate` (checked again at run time):
/// `<version>_<name>[.sqlite|.postgres][.down].sql`.
fn check_name(file: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "migrations!: {file:?} is not a migration file name: \
             <version>_<name>[.sqlite|.postgres][.down].sql, e.g. 0001_create_users.sql"
        )
    };
    let stem = file.strip_suffix(".sql").ok_or_else(bad)?;
    let stem = stem.strip_suffix(".down").unwrap_or(stem);
    let stem = stem
        .strip_suffix(".sqlite")
        .or_else(|| stem.strip_suffix(".postgres"))
        .unwrap_or(stem);
    let (digits, name) = stem.split_once('_').ok_or_else(bad)?;
    let version_ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.parse::<u64>().is_ok_and(|v| v > 0);
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if version_ok && name_ok {
        Ok(())
    } else {
        Err(bad())
    }
}
