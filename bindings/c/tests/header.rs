//! include/dbx.h is what cbindgen makes of the source: regenerated here and
//! compared, so a stale committed header fails CI.
//! `DBX_BLESS=1 cargo test -p dbx-c --test header` rewrites it instead.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = dir.join("include/dbx.h");
    if std::env::var_os("DBX_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/dbx.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "bindings/c/include/dbx.h is stale: run `DBX_BLESS=1 cargo test -p dbx-c --test header` and commit it"
    );
}
