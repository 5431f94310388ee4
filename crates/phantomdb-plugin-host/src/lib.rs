//! Host-side loader for PhantomDB native plugins (arrow-only; no DataFusion).
//!
//! * [`inspect`] reads a plugin's embedded manifest **without** loading it.
//! * [`load`] inspects, checks the host version, `dlopen`s the library, calls its entry point,
//!   checks the vtable and reads its interfaces (functions through `phantomdb.functions/2`, or
//!   `/1` from plugins built before ABI 1.7); [`load_unused`] hands
//!   out a library instance nobody initialized yet (mapping a fresh copy when needed).
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
//!
//! # Modules
//! * `manifest`: reading the manifest from the file ([`inspect`], [`PluginManifest`]);
//! * `load`: [`load`], the [`HostApi`](phantomdb_plugin_abi::HostApi) handed to plugins and the
//!   registry of loaded libraries;
//! * `plugin`: the [`LoadedPlugin`] handle and its lifecycle ([`PluginState`]);
//! * `functions`: the `phantomdb.functions/2` and `/1` interfaces: [`FunctionDecl`],
//!   [`FunctionStats`], scalar and table calls;
//! * `signature_schema`: reading the Arrow C schemas of `/2` signatures safely;
//! * `accumulator`: [`PluginAccumulator`], aggregate functions' state in the plugin;
//! * `storage`: the `phantomdb.storage/1` interface ([`NativeStorageEngine`]);
//! * `auth`: the `phantomdb.auth/1` interface ([`NativeAuthProvider`]);
//! * `query`: the `phantomdb.query/1` interface ([`NativeQueryProcessor`]);
//! * `data_types`: the `phantomdb.types/1` interface ([`NativeDataType`]);
//! * `stream`: reading Arrow C streams a plugin returns;
//! * `ffi`: exporting arguments to and importing results from a plugin;
//! * `validate`: full validation of Arrow data coming from a plugin;
//! * `error`: [`LoadError`] and [`CallError`].

mod accumulator;
mod auth;
mod data_types;
mod error;
mod ffi;
mod functions;
mod load;
mod manifest;
mod plugin;
mod query;
mod signature_schema;
mod storage;
mod stream;
mod validate;

pub use accumulator::PluginAccumulator;
pub use auth::NativeAuthProvider;
pub use data_types::NativeDataType;
pub use error::{CallError, LoadError, SDK_VERSION};
pub use functions::{FieldMetadata, FunctionDecl, FunctionStats};
pub use load::{load, load_unused};
pub use manifest::{inspect, PluginManifest};
pub use plugin::{LoadedPlugin, PluginState};
pub use query::NativeQueryProcessor;
pub use storage::NativeStorageEngine;

pub use phantomdb_plugin_abi::{
    FunctionKind, PluginType, TypeCode, Volatility, FUNCTIONS_INTERFACE_V1, FUNCTIONS_INTERFACE_V2,
    PHANTOMDB_PLUGIN_ABI_MAJOR, PHANTOMDB_PLUGIN_ABI_MINOR,
};
