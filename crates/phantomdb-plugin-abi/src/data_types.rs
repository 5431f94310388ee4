//! The `phantomdb.types/1` interface ([`TypesInterface`]), since ABI 1.5: custom data types.
//!
//! A plugin declares column types ([`TypeDescriptor`]): a SQL name and aliases, the Arrow type
//! values are stored as (an Arrow C Data Interface format string, e.g. `"z"` for Binary or
//! `"w:16"` for FixedSizeBinary(16)), and how values are ordered: either the storage order is
//! the type's order ([`type_ordering::STORAGE`]) or the plugin computes order-preserving sort
//! keys ([`type_ordering::SORT_KEY`]). Equality and hashing follow from storage.
//!
//! Every call works on one batch: text in ([`TypesInterface::parse`]: Utf8 → storage),
//! text out ([`TypesInterface::format`]: storage → Utf8) and sort keys
//! ([`TypesInterface::sort_key`]: storage → Binary whose byte order is the type's order).
//! Input arrays are moved as in every interface (see the crate docs); outputs are written
//! into host-provided, released structs and then belong to the host. Nulls stay nulls.

use std::ffi::{c_char, CStr};

use crate::{FFI_ArrowArray, FFI_ArrowSchema, OutError, Status};
// Only named in documentation links.
#[cfg(doc)]
use crate::PluginVTable;

/// Name of the custom data type interface ([`TypesInterface`]), since ABI 1.5.
pub const TYPES_INTERFACE_V1: &str = "phantomdb.types/1";
/// Same as [`TYPES_INTERFACE_V1`], NUL-terminated for `get_interface`.
pub const TYPES_INTERFACE_V1_C: &CStr = c"phantomdb.types/1";

/// Values of [`TypeDescriptor::ordering`].
pub mod type_ordering {
    /// The storage type's own order (bytes, numbers) is the type's order.
    pub const STORAGE: u32 = 1;
    /// The type's order is the byte order of the keys [`super::TypesInterface::sort_key`]
    /// returns.
    pub const SORT_KEY: u32 = 2;
}

/// One custom type of a plugin. Strings live as long as the plugin (forever).
#[repr(C)]
#[derive(Debug)]
pub struct TypeDescriptor {
    /// `size_of::<TypeDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// SQL name (lower case), NUL-terminated, e.g. `"semver"`.
    pub name: *const c_char,
    /// One-line description, NUL-terminated (may be empty, never null).
    pub description: *const c_char,
    /// Further SQL names of the type (`num_aliases` NUL-terminated strings; may be null when
    /// there are none).
    pub aliases: *const *const c_char,
    /// Number of aliases.
    pub num_aliases: usize,
    /// The storage type as an Arrow C Data Interface format string, NUL-terminated (a type
    /// without children: `"z"` Binary, `"u"` Utf8, `"w:16"` FixedSizeBinary(16), `"l"` Int64...).
    pub storage_format: *const c_char,
    /// A [`type_ordering`] value.
    pub ordering: u32,
}

/// The `phantomdb.types/1` interface. Append-only. `type_index` arguments index `types`.
#[repr(C)]
#[derive(Debug)]
pub struct TypesInterface {
    /// `size_of::<TypesInterface>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Number of entries in `types`.
    pub num_types: usize,
    /// Type descriptors; stride is their `struct_size`.
    pub types: *const TypeDescriptor,
    /// Parses a Utf8 array (moved) into an array of the storage type with as many rows. A
    /// value that is not valid input fails the call with [`Status::ERROR`]: the plugin writes
    /// the row into `out_bad_row` and why into `out_error` (the host words the user's message,
    /// SQLSTATE 22P02); other failures leave `out_bad_row` at -1.
    pub parse: unsafe extern "C" fn(
        type_index: usize,
        input: *mut FFI_ArrowArray,
        input_schema: *const FFI_ArrowSchema,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        out_bad_row: *mut i64,
        out_error: OutError,
    ) -> Status,
    /// Formats an array of the storage type (moved) as a Utf8 array with as many rows.
    pub format: unsafe extern "C" fn(
        type_index: usize,
        input: *mut FFI_ArrowArray,
        input_schema: *const FFI_ArrowSchema,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
    /// Sort keys of an array of the storage type (moved): a Binary array with as many rows
    /// whose byte order is the type's order. Only for [`type_ordering::SORT_KEY`] types
    /// (others answer [`Status::INVALID_ARGUMENT`]).
    pub sort_key: unsafe extern "C" fn(
        type_index: usize,
        input: *mut FFI_ArrowArray,
        input_schema: *const FFI_ArrowSchema,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
}
