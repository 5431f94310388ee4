//! The plugin-side runtime: one per plugin library (each `cdylib` links its own copy of this
//! crate, so the statics below are per plugin). Holds the plugin object, the function tables and
//! all `extern "C"` trampolines.

use std::any::Any;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use arrow_array::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{make_array, Array, ArrayRef, RecordBatchIterator};

use phantomdb_plugin_abi::{
    AccumulatorHandle, FunctionDescriptor, FunctionKind, FunctionsInterface, HostApi, OutError,
    PluginManifest, PluginVTable, Status, TypeCode, FUNCTIONS_INTERFACE_V1_C,
    PHANTOMDB_PLUGIN_ABI_MAJOR, PHANTOMDB_PLUGIN_ABI_MINOR,
};

use crate::{
    Accumulator, AggregateFunction, Literal, Plugin, ScalarFunction, Signature, TableFunction,
};

const STATE_LOADED: u8 = 0;
const STATE_INITIALIZED: u8 = 1;
const STATE_SHUT_DOWN: u8 = 2;

enum Func {
    Scalar(Box<dyn ScalarFunction>),
    Aggregate(Box<dyn AggregateFunction>),
    Table(Box<dyn TableFunction>),
}

struct FuncEntry {
    func: Func,
    signature: Signature,
    state_types: Vec<TypeCode>,
}

pub(crate) struct Runtime {
    plugin: Mutex<Box<dyn Plugin>>,
    state: AtomicU8,
    functions: Vec<FuncEntry>,
    // Owned storage that `descriptors` point into (never mutated after construction).
    _strings: Vec<CString>,
    _type_lists: Vec<Vec<u32>>,
    _descriptors: Vec<FunctionDescriptor>,
    interface: FunctionsInterface,
    /// The C tables of the other component kinds (storage, auth, query), each built by its
    /// kind's runtime module and found by interface name.
    interfaces: Vec<Box<dyn InterfaceTables>>,
    vtable: PluginVTable,
}

// SAFETY: the raw pointers inside `interface`, `vtable` and the descriptors point to immutable data
// owned by the runtime itself (or to `'static` data); everything mutable is behind a Mutex/atomic,
// and the function objects are `Send + Sync`.
unsafe impl Send for Runtime {}
// SAFETY: see above.
unsafe impl Sync for Runtime {}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

struct HostInfo {
    log: Option<unsafe extern "C" fn(u32, *const u8, usize)>,
}

static HOST: OnceLock<HostInfo> = OnceLock::new();

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

/// The C tables of one component kind (the `phantomdb.<kind>/1` interface), built by that
/// kind's runtime module from what the plugin registered.
pub(crate) trait InterfaceTables: Any {
    /// The interface name `get_interface` answers to.
    fn interface_name(&self) -> &'static CStr;
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

fn entry_at(rt: &Runtime, fn_index: usize) -> Result<&FuncEntry, Failure> {
    rt.functions.get(fn_index).ok_or_else(|| {
        Failure::invalid(format!(
            "function index {fn_index} out of range (plugin has {} functions)",
            rt.functions.len()
        ))
    })
}

/// Takes ownership of `nargs` argument arrays and checks them against `signature`.
unsafe fn import_arrays(
    args: *mut FFI_ArrowArray,
    schemas: *const FFI_ArrowSchema,
    nargs: usize,
    num_rows: Option<usize>,
) -> Result<Vec<ArrayRef>, Failure> {
    if nargs == 0 {
        return Ok(Vec::new());
    }
    if args.is_null() || schemas.is_null() {
        return Err(Failure::invalid("null argument array pointer"));
    }
    let mut out = Vec::with_capacity(nargs);
    for i in 0..nargs {
        // SAFETY: the host passes `nargs` valid arrays and schemas; we move each array out.
        let array = unsafe { FFI_ArrowArray::from_raw(args.add(i)) };
        // SAFETY: as above.
        let schema = unsafe { &*schemas.add(i) };
        // SAFETY: the host exported valid Arrow C data.
        let data = unsafe { from_ffi(array, schema) }
            .map_err(|e| Failure::invalid(format!("cannot import argument {i}: {e}")))?;
        if let Some(n) = num_rows {
            if data.len() != n {
                return Err(Failure::invalid(format!(
                    "argument {i} has {} rows, expected {n}",
                    data.len()
                )));
            }
        }
        out.push(make_array(data));
    }
    Ok(out)
}

fn check_types(signature: &Signature, args: &[ArrayRef], what: &str) -> Result<(), Failure> {
    if !signature.accepts_arity(args.len()) {
        return Err(Failure::invalid(format!(
            "{what}: wrong number of arguments: got {}, expected {}{}",
            args.len(),
            if signature.variadic { "at least " } else { "" },
            signature.args.len()
        )));
    }
    for (i, a) in args.iter().enumerate() {
        let expected = signature.arg_type(i).map(|t| t.to_data_type());
        if expected.as_ref() != Some(a.data_type()) {
            return Err(Failure::invalid(format!(
                "{what}: argument {i} has type {}, expected {}",
                a.data_type(),
                expected.map(|t| t.to_string()).unwrap_or_default()
            )));
        }
    }
    Ok(())
}

fn check_state_types(types: &[TypeCode], states: &[ArrayRef]) -> Result<(), Failure> {
    if types.len() != states.len() {
        return Err(Failure::invalid(format!(
            "got {} state arrays, expected {}",
            states.len(),
            types.len()
        )));
    }
    for (i, (t, a)) in types.iter().zip(states).enumerate() {
        if &t.to_data_type() != a.data_type() {
            return Err(Failure::invalid(format!(
                "state column {i} has type {}, expected {}",
                a.data_type(),
                t.to_data_type()
            )));
        }
    }
    Ok(())
}

unsafe fn export_array(
    array: &ArrayRef,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> Result<(), Failure> {
    if out_array.is_null() || out_schema.is_null() {
        return Err(Failure::invalid("null output pointer"));
    }
    let (a, s) = to_ffi(&array.to_data())
        .map_err(|e| Failure::error(format!("cannot export result: {e}")))?;
    // SAFETY: non-null, host-provided output slots; `write` does not drop the (empty) previous value.
    unsafe {
        std::ptr::write(out_array, a);
        std::ptr::write(out_schema, s);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Entry
// ---------------------------------------------------------------------------------------------

/// Implementation of `phantomdb_plugin_entry` (called by the macro-generated symbol).
///
/// # Safety
/// `host` must be null or point to a valid [`HostApi`] that lives forever.
pub unsafe fn entry(
    host: *const HostApi,
    manifest: &'static PluginManifest,
    make: impl FnOnce() -> Box<dyn Plugin>,
) -> *const PluginVTable {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if !host.is_null() {
            // SAFETY: the host passes a valid HostApi; the first fields are stable across versions.
            let h = unsafe { &*host };
            if h.abi_major != PHANTOMDB_PLUGIN_ABI_MAJOR {
                return std::ptr::null();
            }
            let log = if h.struct_size >= std::mem::size_of::<HostApi>() {
                h.log
            } else {
                None
            };
            if HOST.set(HostInfo { log }).is_ok() && log.is_some() {
                install_panic_hook();
            }
        }
        let rt = RUNTIME.get_or_init(|| build_runtime(manifest, make()));
        &rt.vtable as *const PluginVTable
    }));
    result.unwrap_or(std::ptr::null())
}

/// Routes panics raised in this plugin (its own copy of `std`, so host panics are unaffected)
/// to the host's log instead of stderr. The panic is still caught and reported as an error.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        host_log(
            phantomdb_plugin_abi::log_level::ERROR,
            &format!("plugin panicked{location}: {}", panic_text(info.payload())),
        );
    }));
}

pub(crate) fn host_log(level: u32, message: &str) {
    if let Some(HostInfo { log: Some(log) }) = HOST.get() {
        // SAFETY: the host's log callback accepts any UTF-8 bytes for the duration of the call.
        unsafe { log(level, message.as_ptr(), message.len()) };
    }
}

fn build_runtime(manifest: &'static PluginManifest, plugin: Box<dyn Plugin>) -> Runtime {
    let mut registered = crate::Registrar::default();
    plugin.register(&mut registered);
    let mut functions = Vec::new();
    for f in registered.scalar {
        let signature = f.signature();
        functions.push(FuncEntry {
            func: Func::Scalar(f),
            signature,
            state_types: Vec::new(),
        });
    }
    for f in registered.aggregate {
        let signature = f.signature();
        let state_types = f.state_types();
        functions.push(FuncEntry {
            func: Func::Aggregate(f),
            signature,
            state_types,
        });
    }
    for f in registered.table {
        let signature = f.signature();
        functions.push(FuncEntry {
            func: Func::Table(f),
            signature,
            state_types: Vec::new(),
        });
    }

    let mut strings = Vec::new();
    let mut type_lists: Vec<Vec<u32>> = Vec::new();
    let mut descriptors = Vec::with_capacity(functions.len());
    let c =
        |s: &str| CString::new(s.replace('\0', "")).unwrap_or_else(|_| CString::from(c"invalid"));
    for e in &functions {
        let (name, description, kind) = match &e.func {
            Func::Scalar(f) => (f.name(), f.description(), FunctionKind::Scalar),
            Func::Aggregate(f) => (f.name(), f.description(), FunctionKind::Aggregate),
            Func::Table(f) => (f.name(), f.description(), FunctionKind::Table),
        };
        let name = c(name);
        let description = c(description);
        let args: Vec<u32> = e.signature.args.iter().map(|t| *t as u32).collect();
        let states: Vec<u32> = e.state_types.iter().map(|t| *t as u32).collect();
        descriptors.push(FunctionDescriptor {
            struct_size: std::mem::size_of::<FunctionDescriptor>(),
            name: name.as_ptr(),
            description: description.as_ptr(),
            kind: kind as u32,
            volatility: e.signature.volatility as u32,
            arg_types: args.as_ptr(),
            num_args: args.len(),
            variadic: u8::from(e.signature.variadic),
            return_type: e.signature.return_type as u32,
            state_types: states.as_ptr(),
            num_state: states.len(),
        });
        // Moving a CString / Vec does not move its heap buffer, so the pointers stay valid.
        strings.push(name);
        strings.push(description);
        type_lists.push(args);
        type_lists.push(states);
    }

    let interface = FunctionsInterface {
        struct_size: std::mem::size_of::<FunctionsInterface>(),
        num_functions: descriptors.len(),
        functions: descriptors.as_ptr(),
        scalar_invoke,
        accumulator_create,
        accumulator_update,
        accumulator_merge,
        accumulator_state,
        accumulator_evaluate,
        accumulator_free,
        table_call,
    };
    let vtable = PluginVTable {
        struct_size: std::mem::size_of::<PluginVTable>(),
        abi_major: PHANTOMDB_PLUGIN_ABI_MAJOR,
        abi_minor: PHANTOMDB_PLUGIN_ABI_MINOR,
        manifest: manifest as *const PluginManifest,
        initialize,
        shutdown,
        get_interface,
        free_string,
    };
    let interfaces = crate::interface_tables(
        registered.engines,
        registered.auth_providers,
        registered.query_processors,
        registered.data_types,
    );
    Runtime {
        interfaces,
        plugin: Mutex::new(plugin),
        state: AtomicU8::new(STATE_LOADED),
        functions,
        _strings: strings,
        _type_lists: type_lists,
        _descriptors: descriptors,
        interface,
        vtable,
    }
}

// ---------------------------------------------------------------------------------------------
// Vtable trampolines
// ---------------------------------------------------------------------------------------------

unsafe extern "C" fn initialize(
    config: *const u8,
    config_len: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        let config = if config.is_null() || config_len == 0 {
            ""
        } else {
            // SAFETY: the host passes `config_len` readable bytes.
            let bytes = unsafe { std::slice::from_raw_parts(config, config_len) };
            std::str::from_utf8(bytes)
                .map_err(|e| Failure::invalid(format!("configuration is not UTF-8: {e}")))?
        };
        let mut plugin = rt
            .plugin
            .lock()
            .map_err(|_| Failure::state("plugin lock poisoned by an earlier panic"))?;
        match rt.state.load(Ordering::Acquire) {
            STATE_LOADED => {}
            STATE_INITIALIZED => return Err(Failure::state("plugin is already initialized")),
            _ => return Err(Failure::state("plugin has been shut down")),
        }
        plugin.initialize(config).map_err(Failure::error)?;
        rt.state.store(STATE_INITIALIZED, Ordering::Release);
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn shutdown(out_error: OutError) -> Status {
    let work = || {
        let rt = runtime()?;
        let mut plugin = rt
            .plugin
            .lock()
            .map_err(|_| Failure::state("plugin lock poisoned by an earlier panic"))?;
        if rt.state.swap(STATE_SHUT_DOWN, Ordering::AcqRel) == STATE_SHUT_DOWN {
            return Err(Failure::state("plugin has already been shut down"));
        }
        plugin.shutdown();
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn get_interface(name: *const c_char) -> *const c_void {
    let r = catch_unwind(|| {
        if name.is_null() {
            return std::ptr::null();
        }
        // SAFETY: the host passes a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(name) };
        match RUNTIME.get() {
            Some(rt) if name == FUNCTIONS_INTERFACE_V1_C && !rt.functions.is_empty() => {
                &rt.interface as *const FunctionsInterface as *const c_void
            }
            Some(rt) => rt
                .interfaces
                .iter()
                .find(|t| t.interface_name() == name)
                .map_or(std::ptr::null(), |t| t.interface_ptr()),
            None => std::ptr::null(),
        }
    });
    r.unwrap_or(std::ptr::null())
}

unsafe extern "C" fn free_string(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // SAFETY: `s` was produced by `CString::into_raw` in this library.
    let _ = catch_unwind(|| drop(unsafe { CString::from_raw(s) }));
}

// ---------------------------------------------------------------------------------------------
// Function trampolines
// ---------------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn scalar_invoke(
    fn_index: usize,
    args: *mut FFI_ArrowArray,
    arg_schemas: *const FFI_ArrowSchema,
    nargs: usize,
    num_rows: usize,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        require_initialized(rt)?;
        let e = entry_at(rt, fn_index)?;
        let Func::Scalar(f) = &e.func else {
            return Err(Failure::invalid(format!(
                "function {fn_index} is not scalar"
            )));
        };
        // SAFETY: the host passes `nargs` valid arrays/schemas.
        let args = unsafe { import_arrays(args, arg_schemas, nargs, Some(num_rows)) }?;
        check_types(&e.signature, &args, f.name())?;
        let result = f.invoke(&args, num_rows).map_err(Failure::error)?;
        // SAFETY: host-provided output slots.
        unsafe { export_array(&result, out_array, out_schema) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

struct AccState {
    acc: Box<dyn Accumulator>,
    fn_index: usize,
}

unsafe fn acc_from_handle<'a>(handle: AccumulatorHandle) -> Result<&'a mut AccState, Failure> {
    if handle.is_null() {
        return Err(Failure::invalid("null accumulator handle"));
    }
    // SAFETY: handles come from `accumulator_create`; the host uses each from one thread at a time.
    Ok(unsafe { &mut *(handle as *mut AccState) })
}

unsafe extern "C" fn accumulator_create(
    fn_index: usize,
    out_handle: *mut AccumulatorHandle,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        require_initialized(rt)?;
        let e = entry_at(rt, fn_index)?;
        let Func::Aggregate(f) = &e.func else {
            return Err(Failure::invalid(format!(
                "function {fn_index} is not an aggregate"
            )));
        };
        if out_handle.is_null() {
            return Err(Failure::invalid("null output handle pointer"));
        }
        let acc = f.create_accumulator().map_err(Failure::error)?;
        let state = Box::new(AccState { acc, fn_index });
        // SAFETY: non-null host-provided slot.
        unsafe { *out_handle = Box::into_raw(state) as AccumulatorHandle };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_update(
    handle: AccumulatorHandle,
    args: *mut FFI_ArrowArray,
    arg_schemas: *const FFI_ArrowSchema,
    nargs: usize,
    num_rows: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        require_initialized(rt)?;
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let e = entry_at(rt, st.fn_index)?;
        // SAFETY: the host passes `nargs` valid arrays/schemas.
        let args = unsafe { import_arrays(args, arg_schemas, nargs, Some(num_rows)) }?;
        check_types(&e.signature, &args, "accumulator update")?;
        st.acc.update(&args).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_merge(
    handle: AccumulatorHandle,
    states: *mut FFI_ArrowArray,
    state_schemas: *const FFI_ArrowSchema,
    nstates: usize,
    num_rows: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        require_initialized(rt)?;
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let e = entry_at(rt, st.fn_index)?;
        // SAFETY: the host passes `nstates` valid arrays/schemas.
        let states = unsafe { import_arrays(states, state_schemas, nstates, Some(num_rows)) }?;
        check_state_types(&e.state_types, &states)?;
        st.acc.merge(&states).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_state(
    handle: AccumulatorHandle,
    out_arrays: *mut FFI_ArrowArray,
    out_schemas: *mut FFI_ArrowSchema,
    nstates: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        require_initialized(rt)?;
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let e = entry_at(rt, st.fn_index)?;
        if nstates != e.state_types.len() {
            return Err(Failure::invalid(format!(
                "host asked for {nstates} state columns, function declares {}",
                e.state_types.len()
            )));
        }
        let state = st.acc.state().map_err(Failure::error)?;
        if state.len() != nstates {
            return Err(Failure::error(format!(
                "accumulator returned {} state columns, declared {nstates}",
                state.len()
            )));
        }
        for (i, a) in state.iter().enumerate() {
            if out_arrays.is_null() || out_schemas.is_null() {
                return Err(Failure::invalid("null output pointer"));
            }
            // SAFETY: the host provides `nstates` output slots.
            unsafe { export_array(a, out_arrays.add(i), out_schemas.add(i)) }?;
        }
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_evaluate(
    handle: AccumulatorHandle,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        require_initialized(rt)?;
        // SAFETY: handle from accumulator_create, used by one thread at a time.
        let st = unsafe { acc_from_handle(handle) }?;
        let value = st.acc.evaluate().map_err(Failure::error)?;
        // SAFETY: host-provided output slots.
        unsafe { export_array(&value, out_array, out_schema) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn accumulator_free(handle: AccumulatorHandle) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle came from `accumulator_create` and is freed once.
    let _ = catch_unwind(|| drop(unsafe { Box::from_raw(handle as *mut AccState) }));
}

unsafe extern "C" fn table_call(
    fn_index: usize,
    args: *mut FFI_ArrowArray,
    arg_schemas: *const FFI_ArrowSchema,
    nargs: usize,
    out_stream: *mut FFI_ArrowArrayStream,
    out_error: OutError,
) -> Status {
    let work = || {
        let rt = runtime()?;
        require_initialized(rt)?;
        let e = entry_at(rt, fn_index)?;
        let Func::Table(f) = &e.func else {
            return Err(Failure::invalid(format!(
                "function {fn_index} is not a table function"
            )));
        };
        if out_stream.is_null() {
            return Err(Failure::invalid("null output stream pointer"));
        }
        // SAFETY: the host passes `nargs` valid arrays/schemas.
        let args = unsafe { import_arrays(args, arg_schemas, nargs, None) }?;
        check_types(&e.signature, &args, f.name())?;
        let literals = args
            .iter()
            .map(|a| Literal::from_array(a.as_ref(), 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::invalid)?;
        let (schema, batches) = f.call(&literals).map_err(Failure::error)?;
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        // SAFETY: non-null host-provided slot; `write` does not drop the empty old value.
        unsafe { std::ptr::write(out_stream, FFI_ArrowArrayStream::new(Box::new(reader))) };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}
