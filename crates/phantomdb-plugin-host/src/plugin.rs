//! [`LoadedPlugin`], the handle to a loaded plugin, and its lifecycle ([`PluginState`]):
//! initialise once, shut down once, and every call in between holds the state lock, so a
//! shutdown waits for calls in flight. The handle's function and storage calls live in the
//! modules of their interfaces (`functions`, `accumulator`, `storage`).

use std::ffi::{c_char, CStr, CString};
use std::sync::{Arc, RwLock};

use phantomdb_plugin_abi::{FunctionsInterface, PluginVTable, Status, StorageInterface};

use crate::functions::StatCounters;
use crate::{storage, CallError, FunctionDecl, NativeStorageEngine, PluginManifest};

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

/// The shared state behind a [`LoadedPlugin`].
pub(crate) struct Inner {
    pub(crate) manifest: PluginManifest,
    pub(crate) vtable: &'static PluginVTable,
    pub(crate) functions_iface: Option<&'static FunctionsInterface>,
    /// The name of the function interface read (`phantomdb.functions/2` or `/1`).
    pub(crate) functions_interface: Option<&'static str>,
    pub(crate) functions: Vec<FunctionDecl>,
    pub(crate) storage_iface: Option<&'static StorageInterface>,
    pub(crate) engines: Vec<storage::EngineDecl>,
    pub(crate) auth_iface: Option<&'static phantomdb_plugin_abi::AuthInterface>,
    pub(crate) auth_providers: Vec<crate::auth::ProviderDecl>,
    pub(crate) query_iface: Option<&'static phantomdb_plugin_abi::QueryInterface>,
    pub(crate) query_processors: Vec<crate::query::ProcessorDecl>,
    pub(crate) types_iface: Option<&'static phantomdb_plugin_abi::TypesInterface>,
    pub(crate) data_types: Vec<crate::data_types::TypeDecl>,
    pub(crate) stats: Vec<StatCounters>,
    pub(crate) state: RwLock<PluginState>,
}

// SAFETY: the vtable and interface tables are immutable and live forever (the library is never
// unloaded); plugin functions are required by the ABI to be callable from any thread.
unsafe impl Send for Inner {}
// SAFETY: see above.
unsafe impl Sync for Inner {}

/// A loaded plugin. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub(crate) inner: Arc<Inner>,
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

    /// Names of the known interfaces the plugin provides (of the function interfaces, the one
    /// the host reads).
    pub fn interface_names(&self) -> Vec<&'static str> {
        let others = [
            phantomdb_plugin_abi::STORAGE_INTERFACE_V1,
            phantomdb_plugin_abi::AUTH_INTERFACE_V1,
            phantomdb_plugin_abi::TYPES_INTERFACE_V1,
        ]
        .into_iter()
        .filter(|n| self.has_interface(n));
        self.inner
            .functions_interface
            .into_iter()
            .chain(others)
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

    /// The plugin's storage engines (empty when it has none). Call them only after
    /// [`LoadedPlugin::initialize`].
    pub fn storage_engines(&self) -> Vec<NativeStorageEngine> {
        (0..self.inner.engines.len())
            .map(|i| NativeStorageEngine::new(self.clone(), i))
            .collect()
    }

    /// The plugin's authentication providers (empty when it has none). Call them only after
    /// [`LoadedPlugin::initialize`].
    pub fn auth_providers(&self) -> Vec<crate::NativeAuthProvider> {
        (0..self.inner.auth_providers.len())
            .map(|i| crate::NativeAuthProvider::new(self.clone(), i))
            .collect()
    }

    /// The plugin's query processors (empty when it has none). Call them only after
    /// [`LoadedPlugin::initialize`].
    pub fn query_processors(&self) -> Vec<crate::NativeQueryProcessor> {
        (0..self.inner.query_processors.len())
            .map(|i| crate::NativeQueryProcessor::new(self.clone(), i))
            .collect()
    }

    /// The plugin's custom data types (empty when it has none). Call them only after
    /// [`LoadedPlugin::initialize`].
    pub fn data_types(&self) -> Vec<crate::NativeDataType> {
        (0..self.inner.data_types.len())
            .map(|i| crate::NativeDataType::new(self.clone(), i))
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
}
