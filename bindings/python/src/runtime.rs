//! One Tokio runtime per process and the bridge from Rust futures to asyncio.
//!
//! The runtime is created on first use and remembered with the id of the
//! process that made it. After `fork()` the child sees another pid, so it
//! builds a runtime of its own; the parent's (whose worker threads do not
//! exist in the child) is leaked, never shut down, because shutting it down
//! would wait for those threads forever.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors;

/// The runtime and the process it belongs to. Held only for a load or a store.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// Rust futures spawned for Python and not yet finished or dropped.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The runtime of this process, created when missing (or after a fork).
pub(crate) fn runtime() -> PyResult<Arc<Runtime>> {
    let pid = std::process::id();
    if let Some((p, rt)) = &*lock()
        && *p == pid
    {
        return Ok(Arc::clone(rt));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dbx-python")
        .build()
        .map_err(|e| {
            errors::new_err(
                dbx::ErrorKind::Other,
                format!("cannot start the Tokio runtime: {e}"),
            )
        })?;
    let rt = Arc::new(rt);
    let mut slot = lock();
    match slot.take() {
        // Another thread of this process won the race: keep its runtime.
        Some((p, theirs)) if p == pid => {
            *slot = Some((p, Arc::clone(&theirs)));
            drop(slot);
            drop(rt);
            Ok(theirs)
        }
        old => {
            // A runtime of the parent process: its threads are gone here.
            if let Some((_, parents)) = old {
                std::mem::forget(parents);
            }
            *slot = Some((pid, Arc::clone(&rt)));
            Ok(rt)
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<(u32, Arc<Runtime>)>> {
    RUNTIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many Rust futures started from Python are still alive (finished and
/// cancelled ones are not counted): lets the tests see that cancelling an
/// asyncio task drops the Rust future.
#[pyfunction]
pub(crate) fn _in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

struct InFlight;

impl InFlight {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Set an asyncio future's result or exception unless it is already done
/// (cancelled): called on the event loop's thread by `call_soon_threadsafe`.
fn deliver(args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
    let fut = args.get_item(0)?;
    let ok: bool = args.get_item(1)?.extract()?;
    let value = args.get_item(2)?;
    if fut.call_method0("done")?.extract::<bool>()? {
        return Ok(());
    }
    if ok {
        fut.call_method1("set_result", (value,))?;
    } else {
        fut.call_method1("set_exception", (value,))?;
    }
    Ok(())
}

static DELIVER: PyOnceLock<Py<PyCFunction>> = PyOnceLock::new();

fn deliver_fn(py: Python<'_>) -> PyResult<&Bound<'_, PyCFunction>> {
    DELIVER
        .get_or_try_init(py, || {
            PyCFunction::new_closure(py, None, None, |args, _kwargs| deliver(args))
                .map(Bound::unbind)
        })
        .map(|f| f.bind(py))
}

/// Drops the Rust future when the asyncio future it feeds is cancelled.
#[pyclass(module = "dbx._native")]
pub(crate) struct Canceller {
    handle: Mutex<Option<AbortHandle>>,
}

#[pymethods]
impl Canceller {
    fn __call__(&self, fut: &Bound<'_, PyAny>) -> PyResult<()> {
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if fut.call_method0("cancelled")?.extract::<bool>()?
            && let Some(h) = handle
        {
            h.abort();
        }
        Ok(())
    }
}

/// Run `fut` on the runtime and return an asyncio future of its result,
/// converted by `convert` (with the GIL) on success. The calling thread
/// never blocks: the I/O runs on the runtime's threads, without the GIL.
pub(crate) fn spawn<'py, T, F, C>(
    py: Python<'py>,
    fut: F,
    convert: C,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
{
    let rt = runtime()?;
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let py_fut = event_loop.call_method0("create_future")?;
    let target = py_fut.clone().unbind();
    let loop_ref = event_loop.unbind();
    let guard = InFlight::new();
    let task = rt.spawn(async move {
        let _guard = guard;
        let out = fut.await;
        Python::attach(|py| {
            let (ok, value) = match out.and_then(|v| convert(py, v)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
            };
            if let Ok(f) = deliver_fn(py) {
                // Fails only when the loop is closed: nobody is waiting then.
                let _ = loop_ref
                    .bind(py)
                    .call_method1("call_soon_threadsafe", (f, target.bind(py), ok, value));
            }
        });
    });
    let canceller = Canceller {
        handle: Mutex::new(Some(task.abort_handle())),
    };
    py_fut.call_method1("add_done_callback", (Py::new(py, canceller)?,))?;
    Ok(py_fut)
}
