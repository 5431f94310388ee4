//! The stable C ABI between PhantomDB and its native (`cdylib`) plugins.
//!
//! Everything that crosses the library boundary is defined here and is one of:
//! * a `#[repr(C)]` struct of integers, pointers and `extern "C"` function pointers,
//! * an Arrow C Data Interface struct ([`FFI_ArrowArray`], [`FFI_ArrowSchema`],
//!   [`FFI_ArrowArrayStream`]).
//!
//! No Rust trait objects, generics, `String`s or `Vec`s cross the boundary, and nothing here depends
//! on DataFusion, so a plugin keeps working across host releases as long as the ABI major version
//! ([`PHANTOMDB_PLUGIN_ABI_MAJOR`]) is unchanged.
//!
//! # Rules
//! * **Append-only structs.** Every table starts with `struct_size`; new fields are only ever
//!   appended. A reader must check `struct_size` before touching a field past the ones it knows.
//! * **Whoever allocates frees.** Error strings returned by a plugin are allocated by the plugin and
//!   released by the host through [`PluginVTable::free_string`]. Arrow arrays, schemas and streams
//!   carry their own `release` callback (Arrow C Data Interface).
//! * **Argument arrays are moved.** When the host passes `*mut FFI_ArrowArray` arguments the plugin
//!   *moves* them out (`FFI_ArrowArray::from_raw`, which leaves a released struct behind). Whatever
//!   the plugin did not move, the host releases after the call. Argument schemas are borrowed.
//! * **Outputs are written by the plugin** into host-provided, empty (released) structs; the host
//!   then owns them.
//! * **No unwinding.** No function in these tables may unwind; a panic must be caught and turned
//!   into [`Status::PANIC`] plus an error message.
//! * **Nothing is unloaded.** The host never `dlclose`s a plugin, so static data (names, the
//!   manifest) may be handed out as pointers that live forever.
//!
//! # Data types
//! `phantomdb.functions/2` signatures (ABI 1.7) are Arrow C schemas: any Arrow type, with field
//! metadata naming Arrow extension types and PhantomDB custom types
//! ([`CUSTOM_TYPE_METADATA_KEY`]). `phantomdb.functions/1` signatures use the stable
//! [`TypeCode`] enumeration (Boolean, Int8..Int64, UInt8..UInt64, Float32, Float64, Utf8, Binary,
//! Date32, TimestampMicrosecond). Storage tables and scans always carried Arrow C schemas. Text
//! arguments are always passed as `Utf8` (i32 offsets); the host casts `Utf8View`/`LargeUtf8` to
//! `Utf8` before a call. The data inside arrays travels as Arrow C Data Interface structs.
//!
//! # Modules
//! The items live in one module per interface or concern and are all re-exported here, so every
//! item keeps its path `phantomdb_plugin_abi::Item`:
//! * `manifest`: the [`PluginManifest`] embedded in the library, its layout and platform helpers;
//! * `vtable`: the [`HostApi`] handed to the plugin and the [`PluginVTable`] it returns;
//! * `types`: the [`TypeCode`] data type codes;
//! * `functions`: the `phantomdb.functions/1` and `/2` interface ([`FunctionsInterface`]);
//! * `storage`: the `phantomdb.storage/1` interface ([`StorageInterface`]);
//! * `auth`: the `phantomdb.auth/1` interface ([`AuthInterface`]), authentication providers;
//! * `query`: the `phantomdb.query/1` interface ([`QueryInterface`]), query processors;
//! * `data_types`: the `phantomdb.types/1` interface ([`TypesInterface`]), custom data types.

use std::ffi::c_char;

pub use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
pub use arrow_array::ffi_stream::FFI_ArrowArrayStream;

mod auth;
mod data_types;
mod functions;
mod manifest;
mod query;
mod storage;
mod types;
mod vtable;

pub use auth::*;
pub use data_types::*;
pub use functions::*;
pub use manifest::*;
pub use query::*;
pub use storage::*;
pub use types::*;
pub use vtable::*;

/// Major version of this ABI. A host only loads plugins built against the same major version.
pub const PHANTOMDB_PLUGIN_ABI_MAJOR: u32 = 1;
/// Minor version of this ABI. Minor versions only append fields, interfaces and status codes
/// (1.2: [`Status::CONFLICT`]; 1.3: the `phantomdb.auth/1` interface, [`AuthInterface`], and
/// [`PluginType::Authentication`]; 1.4: the `phantomdb.query/1` interface,
/// [`QueryInterface`], and [`PluginType::QueryProcessor`]; 1.5: the `phantomdb.types/1`
/// interface, [`TypesInterface`], and [`PluginType::DataType`]; 1.6: casts of custom types,
/// [`TypeDescriptor::casts`] and [`TypesInterface::cast`]; 1.7: the `phantomdb.functions/2`
/// interface, types in signatures as Arrow C schemas, [`FunctionDescriptor::arg_schemas`]); a host accepts plugins of any
/// minor version of its major version (checking `struct_size` for new fields).
pub const PHANTOMDB_PLUGIN_ABI_MINOR: u32 = 7;

/// Magic bytes at offset 0 of the embedded [`PluginManifest`].
pub const PHANTOMDB_PLUGIN_MAGIC: [u8; 16] = *b"PHANTOMDB-PLUGIN";

/// Name of the exported entry point symbol: [`PluginEntryFn`].
pub const PLUGIN_ENTRY_SYMBOL: &str = "phantomdb_plugin_entry";

// ---------------------------------------------------------------------------------------------
// Status and common types
// ---------------------------------------------------------------------------------------------

/// Result code of every fallible call. A transparent `i32` (not a Rust enum) so an unknown value
/// coming from a newer/buggy peer is never undefined behaviour.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub i32);

impl Status {
    /// Success.
    pub const OK: Status = Status(0);
    /// The plugin reported an error; `out_error` holds the message.
    pub const ERROR: Status = Status(1);
    /// Plugin code panicked; the panic was caught and `out_error` holds the message.
    pub const PANIC: Status = Status(2);
    /// The caller passed invalid arguments (bad index, null pointer, wrong argument count...).
    pub const INVALID_ARGUMENT: Status = Status(3);
    /// The call is not allowed in the plugin's current state (e.g. before `initialize`).
    pub const INVALID_STATE: Status = Status(4);
    /// A storage transaction's `prepare` or `commit` lost to a concurrent transaction that
    /// committed conflicting changes first (SQLSTATE 40001); the caller may retry the whole
    /// transaction. `out_error` holds the message. Since ABI 1.2; a 1.1 host reports it as an
    /// error.
    pub const CONFLICT: Status = Status(5);

    /// `true` for [`Status::OK`].
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Stable name for messages.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "error",
            2 => "panic",
            3 => "invalid argument",
            4 => "invalid state",
            5 => "conflict",
            _ => "unknown status",
        }
    }
}

/// Out-parameter for error messages: on failure the plugin stores a NUL-terminated UTF-8 string it
/// allocated (or leaves null); the host releases it with [`PluginVTable::free_string`].
pub type OutError = *mut *mut c_char;
