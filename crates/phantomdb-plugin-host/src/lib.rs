//! Host-side loader for PhantomDB native plugins (arrow-only; no DataFusion).
//!
//! * [`inspect`] reads a plugin's embedded manifest **without** loading it.
//! * [`load`] inspects, checks the host version, `dlopen`s the library, calls its entry point,
//!   checks the vtable and reads the `phantomdb.functions/1` interface.
//! * [`LoadedPlugin`] is a cheap, `Send + Sync`, cloneable handle with safe, validated calls:
//!   [`LoadedPlugin::call_scalar`], [`LoadedPlugin::create_accumulator`],
//!   [`LoadedPlugin::call_table`].
//!
//! Libraries are never unloaded (`dlclose` is unsafe once Rust code registered thread-local
//! destructors). Loading the same file (same canonical path) twice returns the same plugin.
//!
//! Every result coming back from a plugin is validated (full Arrow validation, row count and
//! declared type), so a buggy plugin yields a clear [`CallError`] instead of corrupting the host.
//! (A plugin can still crash the process with invalid pointers: native plugins are trusted code.)

mod manifest;
mod storage;
mod validate;

pub use storage::NativeStorageEngine;

use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{make_array, Array, ArrayRef, RecordBatch, StructArray};
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};

pub use manifest::{inspect, PluginManifest};
pub use phantomdb_plugin_abi::{
    FunctionKind, PluginType, TypeCode, Volatility, FUNCTIONS_INTERFACE_V1,
    PHANTOMDB_PLUGIN_ABI_MAJOR, PHANTOMDB_PLUGIN_ABI_MINOR,
};

use phantomdb_plugin_abi::{
    log_level, AccumulatorHandle, FunctionDescriptor, FunctionsInterface, HostApi, PluginEntryFn,
    PluginVTable, Status, FUNCTIONS_INTERFACE_V1_C, PLUGIN_ENTRY_SYMBOL,
};

/// Version of the SDK matching this host's ABI (for "rebuild with" hints).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Errors while inspecting or loading a plugin. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin file {}: {source}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a shared library.
    #[error("{} is not a shared library (not a PhantomDB plugin): {reason}", path.display())]
    NotALibrary {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A shared library without a PhantomDB manifest section.
    #[error(
        "{} is not a PhantomDB plugin: it has no `.phantomdb_plugin` manifest section \
         (build it with phantomdb-plugin-sdk's `phantomdb_plugin!` macro)",
        path.display()
    )]
    NoManifest {
        /// File.
        path: PathBuf,
    },
    /// The manifest section does not start with the PhantomDB magic bytes.
    #[error(
        "{}: the plugin manifest has wrong magic bytes (corrupt file or not a PhantomDB plugin)",
        path.display()
    )]
    BadMagic {
        /// File.
        path: PathBuf,
    },
    /// The plugin was built for another ABI major version.
    #[error(
        "{}: plugin was built for PhantomDB plugin ABI {found}.{found_minor}, but this host \
         expects ABI {expected}.x; rebuild the plugin with phantomdb-plugin-sdk {sdk} \
         (ABI {expected})",
        path.display(), sdk = SDK_VERSION
    )]
    AbiMismatch {
        /// File.
        path: PathBuf,
        /// Host's ABI major.
        expected: u32,
        /// Plugin's ABI major.
        found: u32,
        /// Plugin's ABI minor.
        found_minor: u32,
    },
    /// The plugin was compiled for another platform.
    #[error(
        "{}: plugin `{name}` was built for platform {found}, but this host is {expected}; \
         use a build of the plugin for {expected}",
        path.display()
    )]
    WrongPlatform {
        /// File.
        path: PathBuf,
        /// Plugin name.
        name: String,
        /// Host platform.
        expected: String,
        /// Plugin platform.
        found: String,
    },
    /// The plugin's host version requirement excludes this host.
    #[error(
        "{}: plugin `{name}` {version} requires PhantomDB {required}, but this is PhantomDB \
         {host}; install a version of the plugin built for this PhantomDB",
        path.display()
    )]
    HostVersionRejected {
        /// File.
        path: PathBuf,
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// The plugin's requirement.
        required: String,
        /// Host version.
        host: String,
    },
    /// The host version passed to `load` is not semver.
    #[error("{}: host version `{version}` is not a semver version: {reason}", path.display())]
    InvalidHostVersion {
        /// File.
        path: PathBuf,
        /// Given version.
        version: String,
        /// Why.
        reason: String,
    },
    /// The manifest is malformed.
    #[error("{}: invalid plugin manifest: {reason}", path.display())]
    InvalidManifest {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `dlopen` failed.
    #[error("{}: cannot load the shared library: {source}", path.display())]
    Open {
        /// File.
        path: PathBuf,
        /// Cause.
        source: libloading::Error,
    },
    /// The entry point symbol is missing.
    #[error("{}: plugin has no `phantomdb_plugin_entry` symbol: {source}", path.display())]
    MissingEntry {
        /// File.
        path: PathBuf,
        /// Cause.
        source: libloading::Error,
    },
    /// The entry point returned null.
    #[error("{}: plugin `{name}` entry point failed: {reason}", path.display())]
    EntryFailed {
        /// File.
        path: PathBuf,
        /// Plugin name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The plugin's tables are malformed or incompatible.
    #[error("{}: plugin `{name}` has an incompatible or malformed interface: {reason}", path.display())]
    BadInterface {
        /// File.
        path: PathBuf,
        /// Plugin name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Errors from calling into a loaded plugin.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error status (including a caught panic).
    #[error("plugin `{plugin}` function `{function}` failed: {message}")]
    Plugin {
        /// Plugin name.
        plugin: String,
        /// Function name (or `initialize`/`shutdown`).
        function: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin returned data that does not match its declaration or is not valid Arrow.
    #[error("plugin `{plugin}` function `{function}` returned an invalid result: {reason}")]
    InvalidResult {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// Why.
        reason: String,
    },
    /// The host passed arguments that do not match the declaration.
    #[error("plugin `{plugin}` function `{function}`: invalid arguments: {reason}")]
    InvalidArguments {
        /// Plugin name.
        plugin: String,
        /// Function name.
        function: String,
        /// Why.
        reason: String,
    },
    /// No function with that index, or not of the requested kind.
    #[error("plugin `{plugin}`: {reason}")]
    NoSuchFunction {
        /// Plugin name.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The plugin is not in a state that allows the call.
    #[error("plugin `{plugin}` {state}")]
    InvalidState {
        /// Plugin name.
        plugin: String,
        /// E.g. "is not initialized", "has been shut down", "is already initialized".
        state: &'static str,
    },
}

/// Declaration of one plugin function, decoded from the ABI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDecl {
    /// Index to pass to the call methods.
    pub index: usize,
    /// SQL name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Scalar, aggregate or table.
    pub kind: FunctionKind,
    /// Declared argument types.
    pub arg_types: Vec<DataType>,
    /// Whether the last argument type may repeat.
    pub variadic: bool,
    /// Return type (`None` for table functions: their schema is dynamic).
    pub return_type: Option<DataType>,
    /// Volatility.
    pub volatility: Volatility,
    /// Aggregate state column types (empty otherwise).
    pub state_types: Vec<DataType>,
}

impl FunctionDecl {
    /// Whether `n` arguments match the arity.
    pub fn accepts_arity(&self, n: usize) -> bool {
        if self.variadic {
            n >= self.arg_types.len()
        } else {
            n == self.arg_types.len()
        }
    }

    /// Declared type of argument `i` (the last one repeats for variadic functions).
    pub fn arg_type(&self, i: usize) -> Option<&DataType> {
        match self.arg_types.get(i) {
            Some(t) => Some(t),
            None if self.variadic => self.arg_types.last(),
            None => None,
        }
    }
}

/// Lifecycle state of a loaded plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginState {
    /// Loaded, `initialize` not yet called.
    Loaded,
    /// Initialised: functions may be called.
    Initialized,
    /// Shut down (the code stays mapped, but no more calls are routed to it).
    ShutDown,
}

/// Per-function call counters (cheap atomics, updated on every call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Number of calls into the plugin.
    pub calls: u64,
    /// Number of failed calls (plugin error, panic or invalid result).
    pub errors: u64,
    /// Input rows passed.
    pub rows: u64,
    /// Total time spent in the plugin, in nanoseconds.
    pub nanos: u64,
}

#[derive(Default)]
struct StatCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    rows: AtomicU64,
    nanos: AtomicU64,
}

struct Inner {
    manifest: PluginManifest,
    vtable: &'static PluginVTable,
    functions_iface: Option<&'static FunctionsInterface>,
    functions: Vec<FunctionDecl>,
    storage_iface: Option<&'static phantomdb_plugin_abi::StorageInterface>,
    engines: Vec<storage::EngineDecl>,
    stats: Vec<StatCounters>,
    state: RwLock<PluginState>,
}

// SAFETY: the vtable and interface tables are immutable and live forever (the library is never
// unloaded); plugin functions are required by the ABI to be callable from any thread.
unsafe impl Send for Inner {}
// SAFETY: see above.
unsafe impl Sync for Inner {}

/// A loaded plugin. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct LoadedPlugin {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.inner.manifest.name)
            .field("version", &self.inner.manifest.version)
            .field("path", &self.inner.manifest.path)
            .field("functions", &self.inner.functions.len())
            .finish()
    }
}

/// Plugins loaded in this process, by canonical path (libraries are never unloaded).
fn registry() -> &'static Mutex<HashMap<PathBuf, LoadedPlugin>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, LoadedPlugin>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

unsafe extern "C" fn host_log_callback(level: u32, msg: *const u8, len: usize) {
    let _ = std::panic::catch_unwind(|| {
        if msg.is_null() {
            return;
        }
        // SAFETY: the plugin passes `len` readable bytes for the duration of the call.
        let bytes = unsafe { std::slice::from_raw_parts(msg, len) };
        let text = String::from_utf8_lossy(bytes);
        match level {
            log_level::ERROR => tracing::error!(target: "phantomdb::plugin", "{text}"),
            log_level::WARN => tracing::warn!(target: "phantomdb::plugin", "{text}"),
            log_level::INFO => tracing::info!(target: "phantomdb::plugin", "{text}"),
            log_level::DEBUG => tracing::debug!(target: "phantomdb::plugin", "{text}"),
            _ => tracing::trace!(target: "phantomdb::plugin", "{text}"),
        }
    });
}

/// The `HostApi` handed to plugins; one per host version string, leaked (lives forever).
fn host_api(host_version: &str) -> &'static HostApi {
    struct HostApiPtr(&'static HostApi);
    // SAFETY: HostApi is immutable; its pointers reference leaked, immutable data.
    unsafe impl Send for HostApiPtr {}
    static APIS: OnceLock<Mutex<HashMap<String, HostApiPtr>>> = OnceLock::new();
    let mut apis = APIS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    apis.entry(host_version.to_string())
        .or_insert_with(|| {
            let version = CString::new(host_version.replace('\0', ""))
                .unwrap_or_else(|_| CString::from(c"unknown"));
            let api = HostApi {
                struct_size: std::mem::size_of::<HostApi>(),
                abi_major: PHANTOMDB_PLUGIN_ABI_MAJOR,
                abi_minor: PHANTOMDB_PLUGIN_ABI_MINOR,
                host_version: Box::leak(version.into_boxed_c_str()).as_ptr(),
                log: Some(host_log_callback),
            };
            HostApiPtr(Box::leak(Box::new(api)))
        })
        .0
}

/// Inspects, checks and loads the plugin at `path` for a host of version `host_version`
/// (semver, e.g. `env!("CARGO_PKG_VERSION")`).
///
/// The plugin is *not* initialised: call [`LoadedPlugin::initialize`] next. Loading a file that
/// is already loaded (same canonical path) returns the existing plugin, in whatever state it is.
/// To load a new build of a plugin, copy it to a new unique path first.
pub fn load(path: impl AsRef<Path>, host_version: &str) -> Result<LoadedPlugin, LoadError> {
    let path = path.as_ref();
    let manifest = inspect(path)?;
    manifest.check_host_version(host_version)?;
    let canonical = std::fs::canonicalize(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;

    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = reg.get(&canonical) {
        return Ok(existing.clone());
    }

    // SAFETY: loading a library runs its initialisers; the file was checked to be a PhantomDB
    // plugin of our ABI and platform. Native plugins are trusted code.
    let library =
        unsafe { libloading::Library::new(&canonical) }.map_err(|source| LoadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    // Never unload: leak the library handle.
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol has the `PluginEntryFn` signature by ABI contract.
    let entry: PluginEntryFn = unsafe {
        *library
            .get::<PluginEntryFn>(PLUGIN_ENTRY_SYMBOL.as_bytes())
            .map_err(|source| LoadError::MissingEntry {
                path: path.to_path_buf(),
                source,
            })?
    };
    let bad = |reason: String| LoadError::BadInterface {
        path: path.to_path_buf(),
        name: manifest.name.clone(),
        reason,
    };
    // SAFETY: the HostApi lives forever; the entry point does not unwind (SDK contract).
    let vtable_ptr = unsafe { entry(host_api(host_version)) };
    if vtable_ptr.is_null() {
        return Err(LoadError::EntryFailed {
            path: path.to_path_buf(),
            name: manifest.name.clone(),
            reason: "entry point returned null (ABI mismatch with the host or the plugin \
                     failed/panicked while constructing itself)"
                .to_string(),
        });
    }
    // SAFETY: non-null, returned by the entry point, lives forever. Only the first fields are read
    // before struct_size and the ABI version are checked.
    let vtable: &'static PluginVTable = unsafe { &*vtable_ptr };
    if vtable.abi_major != PHANTOMDB_PLUGIN_ABI_MAJOR {
        return Err(LoadError::AbiMismatch {
            path: path.to_path_buf(),
            expected: PHANTOMDB_PLUGIN_ABI_MAJOR,
            found: vtable.abi_major,
            found_minor: vtable.abi_minor,
        });
    }
    if vtable.struct_size < std::mem::size_of::<PluginVTable>() {
        return Err(bad(format!(
            "plugin vtable is {} bytes, expected at least {}",
            vtable.struct_size,
            std::mem::size_of::<PluginVTable>()
        )));
    }
    if !vtable.manifest.is_null() {
        // SAFETY: points to the plugin's manifest static.
        let m = unsafe { &*vtable.manifest };
        let end = m.name.iter().position(|b| *b == 0).unwrap_or(m.name.len());
        if m.name[..end] != *manifest.name.as_bytes() {
            return Err(bad(format!(
                "loaded manifest names plugin `{}`, file manifest `{}`",
                String::from_utf8_lossy(&m.name[..end]),
                manifest.name
            )));
        }
    }

    // SAFETY: valid NUL-terminated name; the plugin returns null or a pointer to a static table.
    let iface_ptr = unsafe { (vtable.get_interface)(FUNCTIONS_INTERFACE_V1_C.as_ptr()) };
    let (functions_iface, functions) = if iface_ptr.is_null() {
        (None, Vec::new())
    } else {
        // SAFETY: a `FunctionsInterface` by ABI contract; struct_size checked before use.
        let iface: &'static FunctionsInterface =
            unsafe { &*(iface_ptr as *const FunctionsInterface) };
        if iface.struct_size < std::mem::size_of::<FunctionsInterface>() {
            return Err(bad(format!(
                "`{FUNCTIONS_INTERFACE_V1}` table is {} bytes, expected at least {}",
                iface.struct_size,
                std::mem::size_of::<FunctionsInterface>()
            )));
        }
        let decls = read_functions(iface).map_err(bad)?;
        (Some(iface), decls)
    };

    let (storage_iface, engines) = storage::read_interface(vtable).map_err(bad)?;

    let plugin = LoadedPlugin {
        inner: Arc::new(Inner {
            stats: functions.iter().map(|_| StatCounters::default()).collect(),
            manifest,
            vtable,
            functions_iface,
            functions,
            storage_iface,
            engines,
            state: RwLock::new(PluginState::Loaded),
        }),
    };
    reg.insert(canonical, plugin.clone());
    tracing::debug!(
        target: "phantomdb::plugin",
        "loaded plugin {} {} from {}",
        plugin.inner.manifest.name,
        plugin.inner.manifest.version,
        path.display()
    );
    Ok(plugin)
}

const MAX_FUNCTIONS: usize = 100_000;
const MAX_ARGS: usize = 1_000;

unsafe fn c_str(p: *const c_char, what: &str) -> Result<String, String> {
    if p.is_null() {
        return Err(format!("{what} is null"));
    }
    // SAFETY: caller guarantees a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(str::to_string)
        .map_err(|_| format!("{what} is not UTF-8"))
}

unsafe fn type_list(p: *const u32, n: usize, what: &str) -> Result<Vec<DataType>, String> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_ARGS {
        return Err(format!("{what}: {n} entries is too many"));
    }
    if p.is_null() {
        return Err(format!("{what} is null"));
    }
    // SAFETY: caller guarantees `n` readable u32s.
    let raw = unsafe { std::slice::from_raw_parts(p, n) };
    raw.iter()
        .map(|v| {
            TypeCode::from_u32(*v)
                .map(TypeCode::to_data_type)
                .ok_or_else(|| format!("{what}: unknown type code {v}"))
        })
        .collect()
}

fn read_functions(iface: &FunctionsInterface) -> Result<Vec<FunctionDecl>, String> {
    let n = iface.num_functions;
    if n == 0 {
        return Ok(Vec::new());
    }
    if n > MAX_FUNCTIONS || iface.functions.is_null() {
        return Err(format!("invalid function table ({n} functions)"));
    }
    // Descriptors form an array whose stride is the descriptors' `struct_size` (so later ABI
    // minor versions can append fields); read the first one's size field (offset 0) to get it.
    // SAFETY: non-null pointer to at least one descriptor.
    let stride = unsafe { (*iface.functions).struct_size };
    if stride < std::mem::size_of::<FunctionDescriptor>()
        || stride % std::mem::align_of::<FunctionDescriptor>() != 0
    {
        return Err(format!(
            "function descriptors are {stride} bytes, expected at least {}",
            std::mem::size_of::<FunctionDescriptor>()
        ));
    }
    let base = iface.functions as *const u8;
    let mut out: Vec<FunctionDecl> = Vec::with_capacity(n);
    for index in 0..n {
        // SAFETY: `functions` points to `num_functions` descriptors laid out with a stride of
        // `stride` bytes (checked above to be at least our size and suitably aligned).
        let d: &FunctionDescriptor =
            unsafe { &*(base.add(index * stride) as *const FunctionDescriptor) };
        if d.struct_size != stride {
            return Err(format!(
                "function #{index}: descriptor is {} bytes, but the first one is {stride}",
                d.struct_size
            ));
        }
        // SAFETY: descriptor strings are NUL-terminated and live forever.
        let name = unsafe { c_str(d.name, "function name") }
            .map_err(|e| format!("function #{index}: {e}"))?;
        // SAFETY: as above.
        let description = unsafe { c_str(d.description, "description") }.unwrap_or_default();
        let ctx = |e: String| format!("function #{index} `{name}`: {e}");
        let kind = FunctionKind::from_u32(d.kind)
            .ok_or_else(|| ctx(format!("unknown function kind {}", d.kind)))?;
        let volatility = Volatility::from_u32(d.volatility)
            .ok_or_else(|| ctx(format!("unknown volatility {}", d.volatility)))?;
        // SAFETY: `num_args` codes at `arg_types`.
        let arg_types =
            unsafe { type_list(d.arg_types, d.num_args, "argument types") }.map_err(ctx)?;
        // SAFETY: `num_state` codes at `state_types`.
        let state_types =
            unsafe { type_list(d.state_types, d.num_state, "state types") }.map_err(ctx)?;
        let return_type = match kind {
            FunctionKind::Table => None,
            _ => Some(
                TypeCode::from_u32(d.return_type)
                    .map(TypeCode::to_data_type)
                    .ok_or_else(|| ctx(format!("unknown return type code {}", d.return_type)))?,
            ),
        };
        if d.variadic != 0 && arg_types.is_empty() {
            return Err(ctx(
                "variadic function declares no argument type".to_string()
            ));
        }
        if kind == FunctionKind::Aggregate && state_types.is_empty() {
            return Err(ctx("aggregate declares no state columns".to_string()));
        }
        if name.is_empty() {
            return Err(format!("function #{index} has an empty name"));
        }
        if out.iter().any(|f| f.name == name) {
            return Err(format!("function name `{name}` is declared twice"));
        }
        out.push(FunctionDecl {
            index,
            name,
            description,
            kind,
            arg_types,
            variadic: d.variadic != 0,
            return_type,
            volatility,
            state_types,
        });
    }
    Ok(out)
}

/// Exported arguments for one call; releases whatever the plugin did not take on drop.
struct ExportedArgs {
    arrays: Vec<FFI_ArrowArray>,
    schemas: Vec<FFI_ArrowSchema>,
}

impl ExportedArgs {
    /// Exports `args`; an untyped `Null` array is replaced by an all-null array of the type in
    /// `types` (the declared argument or state type at that position).
    fn new(
        args: &[ArrayRef],
        types: &dyn Fn(usize) -> Option<DataType>,
    ) -> Result<Self, ArrowError> {
        let mut arrays = Vec::with_capacity(args.len());
        let mut schemas = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            let data = match types(i) {
                Some(t) if a.data_type() == &DataType::Null && t != DataType::Null => {
                    arrow_array::new_null_array(&t, a.len()).to_data()
                }
                _ => a.to_data(),
            };
            schemas.push(FFI_ArrowSchema::try_from(data.data_type())?);
            arrays.push(FFI_ArrowArray::new(&data));
        }
        Ok(Self { arrays, schemas })
    }
}

/// Validates and imports an array the plugin wrote into `array`/`schema`.
fn import_result(
    array: FFI_ArrowArray,
    schema: &FFI_ArrowSchema,
    expected_type: Option<&DataType>,
    expected_len: Option<usize>,
) -> Result<ArrayRef, String> {
    if array.is_released() {
        return Err("no array was returned".to_string());
    }
    // SAFETY: the plugin wrote an Arrow C Data Interface array and schema (trusted code);
    // the result is fully validated below before use.
    let data: ArrayData =
        unsafe { from_ffi(array, schema) }.map_err(|e| format!("cannot import array: {e}"))?;
    if let Some(t) = expected_type {
        if data.data_type() != t {
            return Err(format!(
                "returned an array of type {}, but the function declares {t}",
                data.data_type()
            ));
        }
    }
    if let Some(n) = expected_len {
        if data.len() != n {
            return Err(format!(
                "returned {} rows, expected {n} (one per input row)",
                data.len()
            ));
        }
    }
    validate::validate_full(&data).map_err(|e| format!("returned invalid Arrow data: {e}"))?;
    Ok(make_array(data))
}

impl LoadedPlugin {
    /// The manifest read from the file.
    pub fn manifest(&self) -> &PluginManifest {
        &self.inner.manifest
    }

    /// Plugin name.
    pub fn name(&self) -> &str {
        &self.inner.manifest.name
    }

    /// Current lifecycle state.
    pub fn state(&self) -> PluginState {
        *self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Initialises the plugin with a configuration (JSON text; may be empty). Allowed exactly
    /// once, in state [`PluginState::Loaded`]. On error the plugin stays `Loaded`.
    pub fn initialize(&self, config: &str) -> Result<(), CallError> {
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        match *state {
            PluginState::Loaded => {}
            PluginState::Initialized => return Err(self.state_error("is already initialized")),
            PluginState::ShutDown => return Err(self.state_error("has been shut down")),
        }
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid pointer/length; err is a valid out slot.
        let status =
            unsafe { (self.inner.vtable.initialize)(config.as_ptr(), config.len(), &mut err) };
        self.check_status(status, err, "initialize")?;
        *state = PluginState::Initialized;
        Ok(())
    }

    /// Shuts the plugin down, after waiting for in-flight calls. Allowed once, after
    /// `initialize` (shutting down a never-initialised plugin just marks it shut down). The
    /// library stays mapped; further calls fail with [`CallError::InvalidState`].
    pub fn shutdown(&self) -> Result<(), CallError> {
        let mut state = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        match *state {
            PluginState::ShutDown => return Err(self.state_error("has already been shut down")),
            PluginState::Loaded => {
                *state = PluginState::ShutDown;
                return Ok(());
            }
            PluginState::Initialized => {}
        }
        *state = PluginState::ShutDown;
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: err is a valid out slot.
        let status = unsafe { (self.inner.vtable.shutdown)(&mut err) };
        self.check_status(status, err, "shutdown")
    }

    /// Names of the known interfaces the plugin provides.
    pub fn interface_names(&self) -> Vec<&'static str> {
        [
            FUNCTIONS_INTERFACE_V1,
            phantomdb_plugin_abi::STORAGE_INTERFACE_V1,
        ]
        .into_iter()
        .filter(|n| self.has_interface(n))
        .collect()
    }

    /// Whether the plugin provides the named interface (e.g. `"phantomdb.functions/1"`).
    pub fn has_interface(&self, name: &str) -> bool {
        let Ok(c) = CString::new(name) else {
            return false;
        };
        // SAFETY: valid NUL-terminated name.
        !unsafe { (self.inner.vtable.get_interface)(c.as_ptr()) }.is_null()
    }

    /// All declared functions.
    pub fn functions(&self) -> &[FunctionDecl] {
        &self.inner.functions
    }

    /// Finds a function by name.
    pub fn function(&self, name: &str) -> Option<&FunctionDecl> {
        self.inner.functions.iter().find(|f| f.name == name)
    }

    /// Call statistics of function `index`.
    pub fn stats(&self, index: usize) -> Option<FunctionStats> {
        let s = self.inner.stats.get(index)?;
        Some(FunctionStats {
            calls: s.calls.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            rows: s.rows.load(Ordering::Relaxed),
            nanos: s.nanos.load(Ordering::Relaxed),
        })
    }

    /// The plugin's storage engines (empty when it has none). Call them only after
    /// [`LoadedPlugin::initialize`].
    pub fn storage_engines(&self) -> Vec<NativeStorageEngine> {
        (0..self.inner.engines.len())
            .map(|i| NativeStorageEngine::new(self.clone(), i))
            .collect()
    }

    fn state_error(&self, state: &'static str) -> CallError {
        CallError::InvalidState {
            plugin: self.name().to_string(),
            state,
        }
    }

    /// Turns a status + plugin-allocated message into a result, freeing the message.
    pub(crate) fn check_status(
        &self,
        status: Status,
        err: *mut c_char,
        function: &str,
    ) -> Result<(), CallError> {
        let message = if err.is_null() {
            None
        } else {
            // SAFETY: plugin-allocated NUL-terminated string; freed by the plugin right after.
            let m = unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: returned to the allocator that produced it.
            unsafe { (self.inner.vtable.free_string)(err) };
            Some(m)
        };
        if status.is_ok() {
            return Ok(());
        }
        let message =
            message.unwrap_or_else(|| format!("plugin returned status {}", status.name()));
        Err(CallError::Plugin {
            plugin: self.name().to_string(),
            function: function.to_string(),
            message,
        })
    }

    /// Checks the state is `Initialized` and returns the read guard held for the call.
    pub(crate) fn enter(&self) -> Result<std::sync::RwLockReadGuard<'_, PluginState>, CallError> {
        let guard = self.inner.state.read().unwrap_or_else(|e| e.into_inner());
        match *guard {
            PluginState::Initialized => Ok(guard),
            PluginState::Loaded => Err(self.state_error("is not initialized")),
            PluginState::ShutDown => Err(self.state_error("has been shut down")),
        }
    }

    fn decl(
        &self,
        index: usize,
        kind: FunctionKind,
    ) -> Result<(&FunctionDecl, &'static FunctionsInterface), CallError> {
        let no = |reason: String| CallError::NoSuchFunction {
            plugin: self.name().to_string(),
            reason,
        };
        let decl = self
            .inner
            .functions
            .get(index)
            .ok_or_else(|| no(format!("no function #{index}")))?;
        if decl.kind != kind {
            return Err(no(format!(
                "function `{}` is {:?}, not {kind:?}",
                decl.name, decl.kind
            )));
        }
        let iface = self
            .inner
            .functions_iface
            .ok_or_else(|| no("plugin has no functions interface".to_string()))?;
        Ok((decl, iface))
    }

    fn check_args(
        &self,
        decl: &FunctionDecl,
        args: &[ArrayRef],
        num_rows: Option<usize>,
    ) -> Result<(), CallError> {
        let bad = |reason: String| CallError::InvalidArguments {
            plugin: self.name().to_string(),
            function: decl.name.clone(),
            reason,
        };
        if !decl.accepts_arity(args.len()) {
            return Err(bad(format!(
                "got {} arguments, expected {}{}",
                args.len(),
                if decl.variadic { "at least " } else { "" },
                decl.arg_types.len()
            )));
        }
        for (i, a) in args.iter().enumerate() {
            let expected = decl.arg_type(i);
            if expected != Some(a.data_type()) && a.data_type() != &DataType::Null {
                return Err(bad(format!(
                    "argument {} has type {}, expected {} (cast it first)",
                    i + 1,
                    a.data_type(),
                    expected.map(|t| t.to_string()).unwrap_or_default()
                )));
            }
            if let Some(n) = num_rows {
                if a.len() != n {
                    return Err(bad(format!(
                        "argument {} has {} rows, expected {n}",
                        i + 1,
                        a.len()
                    )));
                }
            }
        }
        Ok(())
    }

    fn record<T>(&self, index: usize, rows: usize, start: Instant, r: &Result<T, CallError>) {
        if let Some(s) = self.inner.stats.get(index) {
            s.calls.fetch_add(1, Ordering::Relaxed);
            s.rows.fetch_add(rows as u64, Ordering::Relaxed);
            s.nanos
                .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if r.is_err() {
                s.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn invalid_result(&self, decl: &FunctionDecl, reason: String) -> CallError {
        CallError::InvalidResult {
            plugin: self.name().to_string(),
            function: decl.name.clone(),
            reason,
        }
    }

    fn export(
        &self,
        decl: &FunctionDecl,
        args: &[ArrayRef],
        merge: bool,
    ) -> Result<ExportedArgs, CallError> {
        let types = |i: usize| {
            if merge {
                decl.state_types.get(i).cloned()
            } else {
                decl.arg_type(i).cloned()
            }
        };
        ExportedArgs::new(args, &types).map_err(|e| CallError::InvalidArguments {
            plugin: self.name().to_string(),
            function: decl.name.clone(),
            reason: format!("cannot export arguments: {e}"),
        })
    }

    /// Calls scalar function `index` on one batch. `args` must match the declared types (cast
    /// `Utf8View`/`LargeUtf8` to `Utf8` etc. first) and each have `num_rows` rows. The result is
    /// validated: `num_rows` rows of the declared return type, valid Arrow data.
    pub fn call_scalar(
        &self,
        index: usize,
        args: &[ArrayRef],
        num_rows: usize,
    ) -> Result<ArrayRef, CallError> {
        let start = Instant::now();
        let r = self.call_scalar_inner(index, args, num_rows);
        self.record(index, num_rows, start, &r);
        r
    }

    fn call_scalar_inner(
        &self,
        index: usize,
        args: &[ArrayRef],
        num_rows: usize,
    ) -> Result<ArrayRef, CallError> {
        let (decl, iface) = self.decl(index, FunctionKind::Scalar)?;
        self.check_args(decl, args, Some(num_rows))?;
        let _guard = self.enter()?;
        let mut exported = self.export(decl, args, false)?;
        let mut out_array = FFI_ArrowArray::empty();
        let mut out_schema = FFI_ArrowSchema::empty();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; argument arrays may be moved out by the
        // plugin (leaving released structs that drop as no-ops).
        let status = unsafe {
            (iface.scalar_invoke)(
                index,
                exported.arrays.as_mut_ptr(),
                exported.schemas.as_ptr(),
                args.len(),
                num_rows,
                &mut out_array,
                &mut out_schema,
                &mut err,
            )
        };
        drop(exported);
        self.check_status(status, err, &decl.name)?;
        import_result(
            out_array,
            &out_schema,
            decl.return_type.as_ref(),
            Some(num_rows),
        )
        .map_err(|reason| self.invalid_result(decl, reason))
    }

    /// Creates an accumulator for aggregate function `index`.
    pub fn create_accumulator(&self, index: usize) -> Result<PluginAccumulator, CallError> {
        let (decl, iface) = self.decl(index, FunctionKind::Aggregate)?;
        let _guard = self.enter()?;
        let mut handle: AccumulatorHandle = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out slots.
        let status = unsafe { (iface.accumulator_create)(index, &mut handle, &mut err) };
        self.check_status(status, err, &decl.name)?;
        if handle.is_null() {
            return Err(self.invalid_result(decl, "accumulator handle is null".to_string()));
        }
        Ok(PluginAccumulator {
            plugin: self.clone(),
            index,
            handle,
            iface,
        })
    }

    /// Calls table function `index` with literal arguments (each a one-row array of the
    /// declared type). Returns the schema and all batches, each validated.
    pub fn call_table(
        &self,
        index: usize,
        args: &[ArrayRef],
    ) -> Result<(SchemaRef, Vec<RecordBatch>), CallError> {
        let start = Instant::now();
        let r = self.call_table_inner(index, args);
        let rows = r
            .as_ref()
            .map(|(_, b)| b.iter().map(|b| b.num_rows()).sum())
            .unwrap_or(0);
        self.record(index, rows, start, &r);
        r
    }

    fn call_table_inner(
        &self,
        index: usize,
        args: &[ArrayRef],
    ) -> Result<(SchemaRef, Vec<RecordBatch>), CallError> {
        let (decl, iface) = self.decl(index, FunctionKind::Table)?;
        self.check_args(decl, args, Some(1))?;
        let _guard = self.enter()?;
        let mut exported = self.export(decl, args, false)?;
        let mut stream = FFI_ArrowArrayStream::empty();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid pointers for the call.
        let status = unsafe {
            (iface.table_call)(
                index,
                exported.arrays.as_mut_ptr(),
                exported.schemas.as_ptr(),
                args.len(),
                &mut stream,
                &mut err,
            )
        };
        drop(exported);
        self.check_status(status, err, &decl.name)?;
        read_stream(stream).map_err(|reason| self.invalid_result(decl, reason))
    }
}

/// Reads a whole Arrow C stream defensively (null callbacks and bad data become errors).
fn read_stream(stream: FFI_ArrowArrayStream) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let mut reader = StreamReader::new(stream)?;
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch()? {
        batches.push(b);
    }
    Ok((reader.schema, batches))
}

/// Reads an Arrow C stream from a plugin one batch at a time, validating every batch
/// (full Arrow validation, top-level nulls, schema).
pub(crate) struct StreamReader {
    stream: FFI_ArrowArrayStream,
    schema: SchemaRef,
    struct_type: DataType,
    /// `struct_type` in C form, built once: every batch is imported with it.
    batch_schema: FFI_ArrowSchema,
    done: bool,
}

// SAFETY: an Arrow C stream may be used from any thread, one at a time (`&mut self`).
unsafe impl Send for StreamReader {}

impl StreamReader {
    pub(crate) fn new(mut stream: FFI_ArrowArrayStream) -> Result<Self, String> {
        let Some(get_schema) = stream.get_schema else {
            return Err("returned a released or incomplete stream".to_string());
        };
        if stream.get_next.is_none() {
            return Err("returned a released or incomplete stream".to_string());
        }
        let mut ffi_schema = FFI_ArrowSchema::empty();
        // SAFETY: valid stream and out slot.
        let rc = unsafe { get_schema(&mut stream, &mut ffi_schema) };
        if rc != 0 {
            return Err(format!(
                "stream get_schema failed: {}",
                stream_error(&mut stream)
            ));
        }
        let schema = Arc::new(
            Schema::try_from(&ffi_schema).map_err(|e| format!("invalid stream schema: {e}"))?,
        );
        let struct_type = DataType::Struct(schema.fields().clone());
        let batch_schema = FFI_ArrowSchema::try_from(&struct_type)
            .map_err(|e| format!("cannot describe stream schema: {e}"))?;
        Ok(Self {
            stream,
            schema,
            struct_type,
            batch_schema,
            done: false,
        })
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch, `None` at the end.
    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(get_next) = self.stream.get_next else {
            return Err("stream has no get_next".to_string());
        };
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: valid stream and out slot.
        let rc = unsafe { get_next(&mut self.stream, &mut array) };
        if rc != 0 {
            self.done = true;
            return Err(format!(
                "stream get_next failed: {}",
                stream_error(&mut self.stream)
            ));
        }
        if array.is_released() {
            self.done = true;
            return Ok(None);
        }
        let column = import_result(array, &self.batch_schema, Some(&self.struct_type), None)?;
        let Some(s) = column.as_any().downcast_ref::<StructArray>() else {
            return Err("stream batch is not a struct array".to_string());
        };
        if s.null_count() != 0 {
            return Err("stream batch has top-level nulls".to_string());
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            s.columns().to_vec(),
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(s.len())),
        )
        .map(Some)
        .map_err(|e| format!("invalid batch: {e}"))
    }
}

fn stream_error(stream: &mut FFI_ArrowArrayStream) -> String {
    match stream.get_last_error {
        // SAFETY: stream callback; returns null or a NUL-terminated string owned by the stream.
        Some(f) => {
            let p = unsafe { f(stream) };
            if p.is_null() {
                "unknown stream error".to_string()
            } else {
                // SAFETY: as above.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        }
        None => "unknown stream error".to_string(),
    }
}

/// An accumulator living in a plugin. Freed in the plugin on drop. `Send + Sync` (mutating
/// methods take `&mut self`, so the plugin sees one thread at a time).
pub struct PluginAccumulator {
    plugin: LoadedPlugin,
    index: usize,
    handle: AccumulatorHandle,
    iface: &'static FunctionsInterface,
}

// SAFETY: the handle is only used through `&mut self` (one thread at a time); the SDK requires
// accumulators to be `Send`.
unsafe impl Send for PluginAccumulator {}
// SAFETY: no `&self` method touches the handle.
unsafe impl Sync for PluginAccumulator {}

impl std::fmt::Debug for PluginAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginAccumulator")
            .field("plugin", &self.plugin.name())
            .field("function", &self.decl().name)
            .finish()
    }
}

impl PluginAccumulator {
    fn decl(&self) -> &FunctionDecl {
        // The index was validated at creation.
        &self.plugin.inner.functions[self.index]
    }

    /// The aggregate's declaration.
    pub fn function(&self) -> &FunctionDecl {
        self.decl()
    }

    fn call_with_arrays(&mut self, arrays: &[ArrayRef], is_merge: bool) -> Result<(), CallError> {
        let plugin = self.plugin.clone();
        let decl = self.decl().clone();
        let num_rows = arrays.first().map(|a| a.len()).unwrap_or(0);
        if is_merge {
            let bad = |reason: String| CallError::InvalidArguments {
                plugin: plugin.name().to_string(),
                function: decl.name.clone(),
                reason,
            };
            if arrays.len() != decl.state_types.len() {
                return Err(bad(format!(
                    "got {} state arrays, expected {}",
                    arrays.len(),
                    decl.state_types.len()
                )));
            }
            for (i, (a, t)) in arrays.iter().zip(&decl.state_types).enumerate() {
                if a.data_type() != t || a.len() != num_rows {
                    return Err(bad(format!(
                        "state column {i} is {} with {} rows, expected {t} with {num_rows} rows",
                        a.data_type(),
                        a.len()
                    )));
                }
            }
        } else {
            plugin.check_args(&decl, arrays, Some(num_rows))?;
        }
        let _guard = plugin.enter()?;
        let mut exported = plugin.export(&decl, arrays, is_merge)?;
        let mut err: *mut c_char = std::ptr::null_mut();
        let f = if is_merge {
            self.iface.accumulator_merge
        } else {
            self.iface.accumulator_update
        };
        // SAFETY: valid handle and pointers for the call.
        let status = unsafe {
            f(
                self.handle,
                exported.arrays.as_mut_ptr(),
                exported.schemas.as_ptr(),
                arrays.len(),
                num_rows,
                &mut err,
            )
        };
        drop(exported);
        plugin.check_status(status, err, &decl.name)
    }

    /// Feeds a batch of argument rows.
    pub fn update(&mut self, args: &[ArrayRef]) -> Result<(), CallError> {
        let start = Instant::now();
        let rows = args.first().map(|a| a.len()).unwrap_or(0);
        let r = self.call_with_arrays(args, false);
        self.plugin.record(self.index, rows, start, &r);
        r
    }

    /// Merges partial states (one array per state column, one row per partial state).
    pub fn merge(&mut self, states: &[ArrayRef]) -> Result<(), CallError> {
        self.call_with_arrays(states, true)
    }

    /// The current state: one one-row array per declared state column.
    pub fn state(&mut self) -> Result<Vec<ArrayRef>, CallError> {
        let plugin = self.plugin.clone();
        let decl = self.decl().clone();
        let _guard = plugin.enter()?;
        let n = decl.state_types.len();
        let mut arrays: Vec<FFI_ArrowArray> = (0..n).map(|_| FFI_ArrowArray::empty()).collect();
        let mut schemas: Vec<FFI_ArrowSchema> = (0..n).map(|_| FFI_ArrowSchema::empty()).collect();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: `n` output slots.
        let status = unsafe {
            (self.iface.accumulator_state)(
                self.handle,
                arrays.as_mut_ptr(),
                schemas.as_mut_ptr(),
                n,
                &mut err,
            )
        };
        plugin.check_status(status, err, &decl.name)?;
        let mut out = Vec::with_capacity(n);
        for (i, (a, s)) in arrays.into_iter().zip(schemas.iter()).enumerate() {
            let arr = import_result(a, s, decl.state_types.get(i), Some(1))
                .map_err(|r| plugin.invalid_result(&decl, format!("state column {i}: {r}")))?;
            out.push(arr);
        }
        Ok(out)
    }

    /// The final value: a one-row array of the declared return type.
    pub fn evaluate(&mut self) -> Result<ArrayRef, CallError> {
        let plugin = self.plugin.clone();
        let decl = self.decl().clone();
        let _guard = plugin.enter()?;
        let mut out_array = FFI_ArrowArray::empty();
        let mut out_schema = FFI_ArrowSchema::empty();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid out slots.
        let status = unsafe {
            (self.iface.accumulator_evaluate)(
                self.handle,
                &mut out_array,
                &mut out_schema,
                &mut err,
            )
        };
        plugin.check_status(status, err, &decl.name)?;
        import_result(out_array, &out_schema, decl.return_type.as_ref(), Some(1))
            .map_err(|r| plugin.invalid_result(&decl, r))
    }
}

impl Drop for PluginAccumulator {
    fn drop(&mut self) {
        // SAFETY: the handle came from accumulator_create and is freed exactly once.
        unsafe { (self.iface.accumulator_free)(self.handle) };
    }
}
