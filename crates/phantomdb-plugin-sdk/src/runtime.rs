//! The plugin-side runtime's base: one per plugin library (each `cdylib` links its own copy of
//! this crate, so the statics below are per plugin). Holds the plugin object, its lifecycle
//! state and the C tables of every component kind, and the one way into plugin code from a
//! trampoline ([`call`]: `catch_unwind`, status and message). Each kind's `*_runtime` module
//! builds its tables on this; `entry` creates the runtime.

use std::any::Any;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use phantomdb_plugin_abi::{OutError, PluginVTable, Status};

use crate::Plugin;

pub(crate) const STATE_LOADED: u8 = 0;
pub(crate) const STATE_INITIALIZED: u8 = 1;
pub(crate) const STATE_SHUT_DOWN: u8 = 2;

pub(crate) struct Runtime {
    pub(crate) plugin: Mutex<Box<dyn Plugin>>,
    pub(crate) state: AtomicU8,
    /// The C tables of every component kind (functions, storage, auth, query, types), each
    /// built by its kind's runtime module and found by interface name.
    pub(crate) interfaces: Vec<Box<dyn InterfaceTables>>,
    pub(crate) vtable: PluginVTable,
}

// SAFETY: the raw pointers inside `vtable` and the interface tables point to immutable data owned
// by the runtime itself (or to `'static` data); everything mutable is behind a Mutex/atomic, and
// the component objects are `Send + Sync`.
unsafe impl Send for Runtime {}
// SAFETY: see above.
unsafe impl Sync for Runtime {}

pub(crate) static RUNTIME: OnceLock<Runtime> = OnceLock::new();

pub(crate) struct HostInfo {
    pub(crate) log: Option<unsafe extern "C" fn(u32, *const u8, usize)>,
}

pub(crate) static HOST: OnceLock<HostInfo> = OnceLock::new();

/// Error inside a trampoline: a status plus message.
pub(crate) struct Failure {
    pub(crate) status: Status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn error(message: impl Into<String>) -> Self {
        Self {
            status: Status::ERROR,
            message: message.into(),
        }
    }
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: Status::INVALID_ARGUMENT,
            message: message.into(),
        }
    }
    /// A failed `prepare` or `commit`: a conflict keeps its own status.
    pub(crate) fn commit(e: crate::storage::CommitError) -> Self {
        match e {
            crate::storage::CommitError::Conflict(message) => Self {
                status: Status::CONFLICT,
                message,
            },
            crate::storage::CommitError::Failed(message) => Self::error(message),
        }
    }
    pub(crate) fn state(message: impl Into<String>) -> Self {
        Self {
            status: Status::INVALID_STATE,
            message: message.into(),
        }
    }
}

pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Stores `message` as a plugin-allocated C string in `out_error` (if non-null).
pub(crate) unsafe fn write_error(out_error: OutError, message: &str) {
    if out_error.is_null() {
        return;
    }
    let c = CString::new(message.replace('\0', "\\0"))
        .unwrap_or_else(|_| CString::from(c"error message contained NUL"));
    // SAFETY: out_error is non-null and points to writable storage per the ABI contract.
    unsafe { *out_error = c.into_raw() };
}

/// Runs `f` with panics caught; a panic becomes a [`Status::PANIC`] failure.
pub(crate) fn run(f: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let message = format!("plugin panicked: {}", panic_text(payload.as_ref()));
            // Dropping the payload could itself panic; never let that unwind.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Err(Failure {
                status: Status::PANIC,
                message,
            })
        }
    }
}

/// The one way into plugin code from a trampoline: runs `work` under `catch_unwind` ([`run`])
/// and reports a failure as its status, with the message in `out_error`.
///
/// # Safety
/// `out_error` is null or a writable slot, as the ABI promises for every call.
pub(crate) unsafe fn call(
    out_error: OutError,
    work: impl FnOnce() -> Result<(), Failure>,
) -> Status {
    // SAFETY: forwarded contract.
    unsafe { report(out_error, run(work)) }
}

/// The C tables of one component kind (the `phantomdb.<kind>/N` interface), built by that
/// kind's runtime module from what the plugin registered.
pub(crate) trait InterfaceTables: Any {
    /// The interface name `get_interface` answers to (the newest, when it answers several).
    fn interface_name(&self) -> &'static CStr;
    /// Whether `get_interface(name)` gives these tables.
    fn answers(&self, name: &CStr) -> bool {
        name == self.interface_name()
    }
    /// The interface table.
    fn interface_ptr(&self) -> *const c_void;
}

/// The initialized plugin's tables of kind `T`, for a trampoline of that kind.
pub(crate) fn tables<T: InterfaceTables>(what: &str) -> Result<&'static T, Failure> {
    let rt = runtime()?;
    require_initialized(rt)?;
    rt.interfaces
        .iter()
        .find_map(|t| (t.as_ref() as &dyn Any).downcast_ref::<T>())
        .ok_or_else(|| Failure::invalid(format!("plugin has no {what}")))
}

/// Borrowed bytes from the host as UTF-8 (`len` 0: empty, whatever the pointer).
///
/// # Safety
/// `p` points to `len` readable bytes for the call.
pub(crate) unsafe fn text<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a str, Failure> {
    if len == 0 {
        return Ok("");
    }
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is null")));
    }
    // SAFETY: the host passes `len` readable bytes for the duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    std::str::from_utf8(bytes).map_err(|e| Failure::invalid(format!("{what} is not UTF-8: {e}")))
}

/// Writes `s` as a plugin-allocated C string (freed by the host with `free_string`) into a
/// host slot, when there is one.
///
/// # Safety
/// `out` is null or a writable slot.
pub(crate) unsafe fn write_string(out: *mut *mut c_char, s: &str) {
    if out.is_null() {
        return;
    }
    let c = CString::new(s.replace('\0', "")).unwrap_or_else(|_| CString::from(c"invalid"));
    // SAFETY: non-null host slot.
    unsafe { *out = c.into_raw() };
}

/// Converts the outcome of [`run`] into a status, storing the message in `out_error`.
unsafe fn report(out_error: OutError, result: Result<(), Failure>) -> Status {
    match result {
        Ok(()) => Status::OK,
        Err(failure) => {
            // SAFETY: forwarded contract.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                write_error(out_error, &failure.message)
            }));
            failure.status
        }
    }
}

pub(crate) fn runtime() -> Result<&'static Runtime, Failure> {
    RUNTIME
        .get()
        .ok_or_else(|| Failure::state("plugin runtime not created (entry point not called)"))
}

pub(crate) fn require_initialized(rt: &Runtime) -> Result<(), Failure> {
    match rt.state.load(Ordering::Acquire) {
        STATE_INITIALIZED => Ok(()),
        STATE_LOADED => Err(Failure::state("plugin is not initialized")),
        _ => Err(Failure::state("plugin has been shut down")),
    }
}

pub(crate) fn host_log(level: u32, message: &str) {
    if let Some(HostInfo { log: Some(log) }) = HOST.get() {
        // SAFETY: the host's log callback accepts any UTF-8 bytes for the duration of the call.
        unsafe { log(level, message.as_ptr(), message.len()) };
    }
}
