//! Node-API link flags (macOS needs `-undefined dynamic_lookup`).

fn main() {
    napi_build::setup();
}
