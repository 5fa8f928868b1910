//! The in-memory driver of the "writing a driver" guide
//! (`examples/memory_driver.rs`, compiled here from the same file) passes
//! the key-value conformance suite: a driver written against
//! `dbx::driver` alone gets the whole contract right.

#[path = "../../../examples/memory_driver.rs"]
#[allow(dead_code, unreachable_pub, clippy::print_stdout)]
mod driver;

async fn connect() -> dbx::Dbx {
    driver::connect().await.unwrap()
}

mod kv {
    dbx_tests::kv_conformance!(crate::memory::connect);
}
