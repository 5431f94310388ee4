//! The root tables exchanged at load time: the [`HostApi`] the host passes to the plugin's
//! entry point ([`PluginEntryFn`], exported as [`PLUGIN_ENTRY_SYMBOL`]), and the
//! [`PluginVTable`] the plugin returns, through which the host initialises and shuts the plugin
//! down and looks up its interfaces (functions, storage). Also the [`log_level`] values of
//! [`HostApi::log`].
//!
//! These tables are the same for every plugin whatever it provides, so they live apart from the
//! interfaces, which a plugin may or may not implement.

use std::ffi::{c_char, c_void};

use crate::{OutError, PluginManifest, Status};
// Only named in documentation links.
#[cfg(doc)]
use crate::{FUNCTIONS_INTERFACE_V1_C, PLUGIN_ENTRY_SYMBOL};

/// Log levels for [`HostApi::log`].
pub mod log_level {
    /// Error.
    pub const ERROR: u32 = 1;
    /// Warning.
    pub const WARN: u32 = 2;
    /// Informational.
    pub const INFO: u32 = 3;
    /// Debug.
    pub const DEBUG: u32 = 4;
    /// Trace.
    pub const TRACE: u32 = 5;
}

/// What the host hands the plugin at entry. Append-only; lives for the whole process.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` in the host's ABI version.
    pub struct_size: usize,
    /// Host's ABI major version.
    pub abi_major: u32,
    /// Host's ABI minor version.
    pub abi_minor: u32,
    /// Host (PhantomDB) version, NUL-terminated, e.g. `"0.1.0"`.
    pub host_version: *const c_char,
    /// Log sink: `level` from [`log_level`], UTF-8 message bytes (not NUL-terminated). The
    /// message is borrowed for the duration of the call. Thread-safe. May be `None`.
    pub log: Option<unsafe extern "C" fn(level: u32, msg: *const u8, len: usize)>,
}

/// Signature of the exported [`PLUGIN_ENTRY_SYMBOL`]. Returns the plugin's vtable (which lives
/// forever), or null on failure. Must not unwind. Called once per load.
pub type PluginEntryFn = unsafe extern "C" fn(host: *const HostApi) -> *const PluginVTable;

/// The plugin's root table, returned by the entry point. Append-only.
#[repr(C)]
#[derive(Debug)]
pub struct PluginVTable {
    /// `size_of::<PluginVTable>()` in the plugin's ABI version; fields beyond it are absent.
    pub struct_size: usize,
    /// ABI major version the plugin was built with.
    pub abi_major: u32,
    /// ABI minor version the plugin was built with.
    pub abi_minor: u32,
    /// The plugin's embedded manifest (same bytes as the manifest section).
    pub manifest: *const PluginManifest,
    /// Initialise the plugin with a configuration (UTF-8 JSON text, may be empty; not
    /// NUL-terminated). Called exactly once, before any function call.
    pub initialize:
        unsafe extern "C" fn(config: *const u8, config_len: usize, out_error: OutError) -> Status,
    /// Shut the plugin down. Called at most once, after all calls have finished.
    pub shutdown: unsafe extern "C" fn(out_error: OutError) -> Status,
    /// Look up an interface table by NUL-terminated name (e.g. [`FUNCTIONS_INTERFACE_V1_C`]).
    /// Returns null for unknown names. The table lives forever.
    pub get_interface: unsafe extern "C" fn(name: *const c_char) -> *const c_void,
    /// Release a string the plugin allocated (error messages). Null is ignored.
    pub free_string: unsafe extern "C" fn(s: *mut c_char),
}
