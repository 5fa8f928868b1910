//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same bodies the cargo-fuzz targets run (`fuzz/src/bodies.rs`, compiled
//! here on stable), so every input fuzzing ever kept stays a regression
//! test. Fuzzing itself needs nightly: `cd fuzz && cargo +nightly fuzz run
//! -O <target>`.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../../fuzz/src/bodies.rs"]
#[allow(dead_code, unreachable_pub)]
mod bodies;

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
        n += 1;
    }
    assert!(n > 0, "{target}: the corpus is empty");
    eprintln!("{target}: {n} inputs replayed");
}

#[test]
fn url_options() {
    replay("url_options", bodies::url_options);
}

#[test]
fn dbx_toml() {
    replay("dbx_toml", bodies::dbx_toml);
}

#[test]
fn vector_filter_json() {
    replay("vector_filter_json", bodies::vector_filter_json);
}

#[test]
fn document_checks() {
    replay("document_checks", bodies::document_checks);
}

#[test]
fn row_decode() {
    replay("row_decode", bodies::row_decode);
}

#[test]
fn sql_reads() {
    replay("sql_reads", bodies::sql_reads);
}
