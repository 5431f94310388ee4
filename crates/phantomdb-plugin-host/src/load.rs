//! Loading a plugin: [`load`] inspects the file, `dlopen`s it, calls its entry point with the
//! [`HostApi`] (one per host version, leaked so it lives forever) and checks the vtable and
//! interface tables it returns. Loaded libraries are kept in a registry by canonical path: they
//! are never unloaded, and loading the same file twice returns the same plugin.
//!
//! The host owns *library instances* (process-wide: one per mapped file); whoever initializes
//! one owns the *plugin* (a database's plugin manager). [`load_unused`] hands out an instance
//! nobody has claimed, mapping a fresh copy of the file when the file's own instance is taken.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use phantomdb_plugin_abi::{
    log_level, FunctionsInterface, HostApi, PluginEntryFn, PluginVTable, FUNCTIONS_INTERFACE_V1_C,
    FUNCTIONS_INTERFACE_V2_C, PLUGIN_ENTRY_SYMBOL,
};

use crate::functions::{read_functions, StatCounters};
use crate::plugin::Inner;
use crate::{
    inspect, storage, LoadError, LoadedPlugin, PluginState, FUNCTIONS_INTERFACE_V1,
    FUNCTIONS_INTERFACE_V2, PHANTOMDB_PLUGIN_ABI_MAJOR, PHANTOMDB_PLUGIN_ABI_MINOR,
};

/// Plugins loaded in this process, by canonical path (libraries are never unloaded), and
/// whether [`load_unused`] handed the instance out.
fn registry() -> &'static Mutex<HashMap<PathBuf, (LoadedPlugin, bool)>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, (LoadedPlugin, bool)>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Loads the plugin at `path` as a library instance no caller has claimed before, and claims
/// it: the file's own instance the first time, afterwards a fresh copy of the file mapped from
/// a unique temporary path (an instance's `initialize` and `shutdown` run once, so a second
/// database, or a reload after an unload, needs its own). The copy is deleted once mapped.
pub fn load_unused(path: impl AsRef<Path>, host_version: &str) -> Result<LoadedPlugin, LoadError> {
    let path = path.as_ref();
    let plugin = load(path, host_version)?;
    if claim(path)? {
        return Ok(plugin);
    }
    let copy = fresh_copy(path)?;
    // Claimed while its file still exists (the registry is keyed by canonical path).
    let loaded = load(&copy, host_version).and_then(|plugin| claim(&copy).map(|_| plugin));
    // A mapped library stays mapped after its file is removed: leave no copies behind.
    if let Err(e) = std::fs::remove_file(&copy) {
        tracing::warn!(target: "phantomdb::plugin", "cannot remove plugin copy {}: {e}", copy.display());
    }
    loaded
}

/// Marks the instance loaded from `path` as handed out; false if it already was.
fn claim(path: &Path) -> Result<bool, LoadError> {
    let canonical = std::fs::canonicalize(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    Ok(match reg.get_mut(&canonical) {
        Some((_, claimed)) => !std::mem::replace(claimed, true),
        None => false,
    })
}

/// Copies the plugin file to a unique path in the temporary directory (no shared directory:
/// concurrent loads must not remove each other's).
fn fresh_copy(path: &Path) -> Result<PathBuf, LoadError> {
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let copy = std::env::temp_dir().join(format!(
        "phantomdb-plugin-{}-{n}-{stem}.{}",
        std::process::id(),
        std::env::consts::DLL_EXTENSION
    ));
    std::fs::copy(path, &copy).map_err(io)?;
    Ok(copy)
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
    if let Some((existing, _)) = reg.get(&canonical) {
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

    let (functions_iface, functions) = read_function_interface(vtable).map_err(bad)?;

    let (storage_iface, engines) = storage::read_interface(vtable).map_err(bad)?;
    let (auth_iface, auth_providers) = crate::auth::read_interface(vtable).map_err(bad)?;
    let (query_iface, query_processors) = crate::query::read_interface(vtable).map_err(bad)?;
    let (types_iface, data_types) = crate::data_types::read_interface(vtable).map_err(bad)?;

    let plugin = LoadedPlugin {
        inner: Arc::new(Inner {
            stats: functions.iter().map(|_| StatCounters::default()).collect(),
            manifest,
            vtable,
            functions_iface: functions_iface.map(|(iface, _)| iface),
            functions_interface: functions_iface.map(|(_, name)| name),
            functions,
            storage_iface,
            engines,
            auth_iface,
            auth_providers,
            query_iface,
            query_processors,
            types_iface,
            data_types,
            state: RwLock::new(PluginState::Loaded),
        }),
    };
    reg.insert(canonical, (plugin.clone(), false));
    tracing::debug!(
        target: "phantomdb::plugin",
        "loaded plugin {} {} from {}",
        plugin.inner.manifest.name,
        plugin.inner.manifest.version,
        path.display()
    );
    Ok(plugin)
}

/// The plugin's function interface (`phantomdb.functions/2`, else `/1`), with its name and its
/// functions.
#[allow(clippy::type_complexity)]
fn read_function_interface(
    vtable: &PluginVTable,
) -> Result<
    (
        Option<(&'static FunctionsInterface, &'static str)>,
        Vec<crate::FunctionDecl>,
    ),
    String,
> {
    for (name, c_name, schemas) in [
        (FUNCTIONS_INTERFACE_V2, FUNCTIONS_INTERFACE_V2_C, true),
        (FUNCTIONS_INTERFACE_V1, FUNCTIONS_INTERFACE_V1_C, false),
    ] {
        // SAFETY: valid NUL-terminated name; the plugin returns null or a pointer to a static
        // table.
        let iface_ptr = unsafe { (vtable.get_interface)(c_name.as_ptr()) };
        if iface_ptr.is_null() {
            continue;
        }
        // SAFETY: a `FunctionsInterface` by ABI contract; struct_size checked before use.
        let iface: &'static FunctionsInterface =
            unsafe { &*(iface_ptr as *const FunctionsInterface) };
        if iface.struct_size < std::mem::size_of::<FunctionsInterface>() {
            return Err(format!(
                "`{name}` table is {} bytes, expected at least {}",
                iface.struct_size,
                std::mem::size_of::<FunctionsInterface>()
            ));
        }
        let decls = read_functions(iface, schemas).map_err(|e| format!("`{name}`: {e}"))?;
        return Ok((Some((iface, name)), decls));
    }
    Ok((None, Vec::new()))
}
