//! The errors of this crate, as typed enums: [`LoadError`] for inspecting and loading a plugin
//! (every variant names the file), [`CallError`] for calls into a loaded plugin. Their messages
//! are what users see, so each says what went wrong and, where there is one, what to do.

use std::path::PathBuf;

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
