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
//!
//! Since ABI 1.6 a type may also declare casts to and from other types
//! ([`TypeDescriptor::casts`], run by [`TypesInterface::cast`]), each explicit (`CAST(x AS
//! t)` only) or assignment (also when a value is stored into a column of the target type).
//! The host reads these fields only when the plugin's `struct_size` covers them, so types
//! built for ABI 1.5 keep loading, with their text casts only.

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

/// Values of [`CastDescriptor::direction`].
pub mod cast_direction {
    /// From the other type into this type.
    pub const INTO_TYPE: u32 = 1;
    /// From this type into the other type.
    pub const FROM_TYPE: u32 = 2;
}

/// Values of [`CastDescriptor::context`] (PostgreSQL's `pg_cast.castcontext`).
pub mod cast_context {
    /// Only where the SQL says `CAST(x AS t)` or `x::t`.
    pub const EXPLICIT: u32 = 1;
    /// Also when a value is assigned to a column of the target type (`INSERT`, `UPDATE`).
    pub const ASSIGNMENT: u32 = 2;
}

/// A cast a type provides (since ABI 1.6). The host runs it with [`TypesInterface::cast`];
/// text casts need no declaration (they are `parse` and `format`).
#[repr(C)]
#[derive(Debug)]
pub struct CastDescriptor {
    /// `size_of::<CastDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// A [`cast_direction`] value.
    pub direction: u32,
    /// A [`cast_context`] value.
    pub context: u32,
    /// The other type, as an Arrow C Data Interface format string, NUL-terminated (a type
    /// without children, not the storage type of a custom type).
    pub other_format: *const c_char,
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
    /// Since ABI 1.6: the casts the type provides (`num_casts` descriptors with a common
    /// stride, their `struct_size`; may be null when there are none).
    pub casts: *const CastDescriptor,
    /// Since ABI 1.6: number of casts.
    pub num_casts: usize,
}

/// The size of a [`TypeDescriptor`] of ABI 1.5, before `casts`.
pub const TYPE_DESCRIPTOR_SIZE_1_5: usize = std::mem::offset_of!(TypeDescriptor, casts);

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
    /// Since ABI 1.6: runs cast `cast_index` of type `type_index` over an array (moved) of its
    /// source type, giving an array of its target type with as many rows. A value the cast
    /// cannot convert fails the call like `parse` does (`out_bad_row` names it; SQLSTATE
    /// 22P02 for a value into the type, 22000 out of it). Null when no type declares casts.
    pub cast: Option<
        unsafe extern "C" fn(
            type_index: usize,
            cast_index: usize,
            input: *mut FFI_ArrowArray,
            input_schema: *const FFI_ArrowSchema,
            out_array: *mut FFI_ArrowArray,
            out_schema: *mut FFI_ArrowSchema,
            out_bad_row: *mut i64,
            out_error: OutError,
        ) -> Status,
    >,
}

/// The size of a [`TypesInterface`] of ABI 1.5, before `cast`.
pub const TYPES_INTERFACE_SIZE_1_5: usize = std::mem::offset_of!(TypesInterface, cast);
