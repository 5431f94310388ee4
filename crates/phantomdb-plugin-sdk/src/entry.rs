//! The plugin's entry point ([`entry`], behind the `phantomdb_plugin_entry` symbol): creates the
//! runtime from what the plugin registers, with every component kind's C tables, and the
//! vtable's lifecycle trampolines (`initialize`, `shutdown`, `get_interface`, `free_string`).

use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use phantomdb_plugin_abi::{
    HostApi, OutError, PluginManifest, PluginVTable, Status, PHANTOMDB_PLUGIN_ABI_MAJOR,
    PHANTOMDB_PLUGIN_ABI_MINOR,
};

use crate::auth_runtime::AuthTables;
use crate::data_type_runtime::TypeTables;
use crate::function_runtime::FunctionTables;
use crate::query_runtime::QueryTables;
use crate::runtime::{
    call, host_log, panic_text, runtime, Failure, HostInfo, InterfaceTables, Runtime, HOST,
    RUNTIME, STATE_INITIALIZED, STATE_LOADED, STATE_SHUT_DOWN,
};
use crate::storage_runtime::StorageTables;
use crate::{Plugin, Registrar};

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

fn build_runtime(manifest: &'static PluginManifest, plugin: Box<dyn Plugin>) -> Runtime {
    let mut registered = crate::Registrar::default();
    plugin.register(&mut registered);
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
    Runtime {
        interfaces: interface_tables(registered),
        plugin: Mutex::new(plugin),
        state: AtomicU8::new(STATE_LOADED),
        vtable,
    }
}

/// The C tables of every component kind the plugin registered, for `get_interface` to offer by
/// name.
fn interface_tables(mut registered: Registrar) -> Vec<Box<dyn InterfaceTables>> {
    let mut out: Vec<Box<dyn InterfaceTables>> = Vec::new();
    if let Some(t) = FunctionTables::new(&mut registered) {
        out.push(Box::new(t));
    }
    if let Some(t) = StorageTables::new(registered.engines) {
        out.push(Box::new(t));
    }
    if let Some(t) = AuthTables::new(registered.auth_providers) {
        out.push(Box::new(t));
    }
    if let Some(t) = QueryTables::new(registered.query_processors) {
        out.push(Box::new(t));
    }
    if let Some(t) = TypeTables::new(registered.data_types) {
        out.push(Box::new(t));
    }
    out
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
            Some(rt) => rt
                .interfaces
                .iter()
                .find(|t| t.answers(name))
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
