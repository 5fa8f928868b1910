//! The Python binding of dbx: the `dbx._native` extension module behind the
//! `dbx` Python package (see `bindings/python/README.md`).
//!
//! Built only on the public API of the `dbx` facade. Every I/O method
//! returns an asyncio future fed by a Rust future on one Tokio runtime per
//! process (see the `runtime` module); cancelling the future drops the Rust one.

mod convert;
mod errors;
mod handles;
mod runtime;

use pyo3::prelude::*;

/// The extension module `dbx._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<handles::Dbx>()?;
    m.add_class::<handles::Sql>()?;
    m.add_class::<handles::Kv>()?;
    m.add_class::<handles::Docs>()?;
    m.add_class::<handles::Collection>()?;
    m.add_class::<handles::Vectors>()?;
    m.add_class::<handles::VectorCollection>()?;
    m.add_function(wrap_pyfunction!(runtime::_in_flight, m)?)?;
    Ok(())
}
