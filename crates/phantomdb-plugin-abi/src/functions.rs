//! The function interfaces ([`FunctionsInterface`]): the scalar, aggregate and table functions
//! a plugin exports, each described by a [`FunctionDescriptor`] (with its [`FunctionKind`] and
//! [`Volatility`]), and the vectorised entry points the host calls them through.
//!
//! Two versions share the table and the entry points and differ in where a descriptor's types
//! are read from:
//! * `phantomdb.functions/1`: the [`TypeCode`]s (`arg_types`, `return_type`, `state_types`);
//! * `phantomdb.functions/2` (since ABI 1.7): Arrow C schemas (`arg_schemas`, `return_schema`,
//!   `state_schemas`), so every Arrow type travels (decimals, lists, structs, fixed-size
//!   binary...) with its field metadata: Arrow extension types (`ARROW:extension:name`) and
//!   PhantomDB's custom types (`phantomdb.type`, the type's SQL name, on a field of the type's
//!   storage format). The codes of a `/2` descriptor are not read.
//!
//! A plugin may answer both names with the same table (the codes filled where a type has one).
//!
//! One module per interface, so each interface's tables (append-only within the ABI major
//! version) can be read and reviewed on their own.

use std::ffi::{c_char, c_void};

use crate::{FFI_ArrowArray, FFI_ArrowArrayStream, FFI_ArrowSchema, OutError, Status};
// Only named in documentation links.
#[cfg(doc)]
use crate::TypeCode;

/// Name of the scalar/aggregate/table function interface ([`FunctionsInterface`]).
pub const FUNCTIONS_INTERFACE_V1: &str = "phantomdb.functions/1";
/// Same as [`FUNCTIONS_INTERFACE_V1`], NUL-terminated for `get_interface`.
pub const FUNCTIONS_INTERFACE_V1_C: &std::ffi::CStr = c"phantomdb.functions/1";
/// Name of the function interface whose descriptors carry Arrow C schemas (since ABI 1.7).
pub const FUNCTIONS_INTERFACE_V2: &str = "phantomdb.functions/2";
/// Same as [`FUNCTIONS_INTERFACE_V2`], NUL-terminated for `get_interface`.
pub const FUNCTIONS_INTERFACE_V2_C: &std::ffi::CStr = c"phantomdb.functions/2";

/// Field metadata key naming a PhantomDB custom type (its SQL name) in a `/2` signature: the
/// field's format is the type's storage format.
pub const CUSTOM_TYPE_METADATA_KEY: &str = "phantomdb.type";

/// Kind of a function, stored as `u32`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// Row-wise function, invoked once per batch.
    Scalar = 1,
    /// Aggregate function with an accumulator.
    Aggregate = 2,
    /// Table function: literal arguments in, a stream of record batches out.
    Table = 3,
}

impl FunctionKind {
    /// Decodes an ABI value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Scalar),
            2 => Some(Self::Aggregate),
            3 => Some(Self::Table),
            _ => None,
        }
    }
}

/// Volatility of a function, stored as `u32` (same meaning as in DataFusion).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Volatility {
    /// Same inputs always give the same output; may be constant-folded.
    Immutable = 0,
    /// Same output within one query.
    Stable = 1,
    /// May change on every call (e.g. random).
    Volatile = 2,
}

impl Volatility {
    /// Decodes an ABI value.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::Immutable),
            1 => Some(Self::Stable),
            2 => Some(Self::Volatile),
            _ => None,
        }
    }
}

/// Describes one function exported through [`FunctionsInterface`]. Append-only.
#[repr(C)]
#[derive(Debug)]
pub struct FunctionDescriptor {
    /// `size_of::<FunctionDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// NUL-terminated UTF-8 SQL name (lower case), e.g. `"gcd"`.
    pub name: *const c_char,
    /// NUL-terminated UTF-8 one-line description (may be empty, never null).
    pub description: *const c_char,
    /// [`FunctionKind`] as `u32`.
    pub kind: u32,
    /// [`Volatility`] as `u32`.
    pub volatility: u32,
    /// Argument [`TypeCode`]s (`num_args` of them; may be null when `num_args == 0`).
    pub arg_types: *const u32,
    /// Number of declared arguments.
    pub num_args: usize,
    /// Non-zero when the last declared argument type may repeat (then at least `num_args`
    /// arguments are passed, all extra ones of the last type).
    pub variadic: u8,
    /// Return [`TypeCode`] of scalar and aggregate functions. Unused (0) for table functions,
    /// whose schema comes with the returned stream.
    pub return_type: u32,
    /// Aggregate only: [`TypeCode`]s of the accumulator state columns (`num_state` of them).
    pub state_types: *const u32,
    /// Aggregate only: number of state columns.
    pub num_state: usize,

    // ---- ABI 1.7 (read through `phantomdb.functions/2` only) ----
    /// Argument types as Arrow C schemas (`num_args` of them, an array; may be null when
    /// `num_args == 0`). Owned by the plugin and never released by the host (they live as long
    /// as the plugin).
    pub arg_schemas: *const FFI_ArrowSchema,
    /// Return type of scalar and aggregate functions as an Arrow C schema; null for table
    /// functions.
    pub return_schema: *const FFI_ArrowSchema,
    /// Aggregate only: accumulator state column types as Arrow C schemas (`num_state`).
    pub state_schemas: *const FFI_ArrowSchema,
}

/// `size_of::<FunctionDescriptor>()` at ABI 1.6 and before (without the schemas), the smallest
/// descriptor a `phantomdb.functions/1` reader accepts.
pub const FUNCTION_DESCRIPTOR_SIZE_1_6: usize =
    std::mem::offset_of!(FunctionDescriptor, arg_schemas);

/// Opaque accumulator handle, owned by the plugin; freed with
/// [`FunctionsInterface::accumulator_free`].
pub type AccumulatorHandle = *mut c_void;

/// The `phantomdb.functions/1` and `/2` interface: function descriptors plus vectorised entry
/// points. Append-only. Every call takes the function's index into `functions`.
///
/// In every call, `args`/`arg_schemas` point to `nargs` arrays (all of length `num_rows`) whose
/// types match the descriptor; the plugin moves the arrays it uses (see crate docs).
#[repr(C)]
#[derive(Debug)]
pub struct FunctionsInterface {
    /// `size_of::<FunctionsInterface>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Number of entries in `functions`.
    pub num_functions: usize,
    /// Function descriptors (`num_functions` of them). The array's stride is the descriptors'
    /// `struct_size` (all equal), so later minor versions can append descriptor fields.
    pub functions: *const FunctionDescriptor,

    /// Scalar: evaluate function `fn_index` on one batch. On success writes an array of
    /// `num_rows` rows of the declared return type into `out_array`/`out_schema`.
    pub scalar_invoke: unsafe extern "C" fn(
        fn_index: usize,
        args: *mut FFI_ArrowArray,
        arg_schemas: *const FFI_ArrowSchema,
        nargs: usize,
        num_rows: usize,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,

    /// Aggregate: create an accumulator for function `fn_index`, stored in `out_handle`.
    pub accumulator_create: unsafe extern "C" fn(
        fn_index: usize,
        out_handle: *mut AccumulatorHandle,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: feed one batch of argument rows.
    pub accumulator_update: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        args: *mut FFI_ArrowArray,
        arg_schemas: *const FFI_ArrowSchema,
        nargs: usize,
        num_rows: usize,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: merge `num_rows` partial states (one array per state column).
    pub accumulator_merge: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        states: *mut FFI_ArrowArray,
        state_schemas: *const FFI_ArrowSchema,
        nstates: usize,
        num_rows: usize,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: write the current state: `nstates` (== descriptor `num_state`) one-row arrays
    /// into the host-provided `out_arrays`/`out_schemas`.
    pub accumulator_state: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        out_arrays: *mut FFI_ArrowArray,
        out_schemas: *mut FFI_ArrowSchema,
        nstates: usize,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: write the final value as a one-row array of the return type.
    pub accumulator_evaluate: unsafe extern "C" fn(
        handle: AccumulatorHandle,
        out_array: *mut FFI_ArrowArray,
        out_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
    /// Aggregate: free an accumulator. Null is ignored.
    pub accumulator_free: unsafe extern "C" fn(handle: AccumulatorHandle),

    /// Table: call function `fn_index` with literal arguments (`nargs` one-row arrays); on
    /// success writes a record-batch stream into `out_stream`.
    pub table_call: unsafe extern "C" fn(
        fn_index: usize,
        args: *mut FFI_ArrowArray,
        arg_schemas: *const FFI_ArrowSchema,
        nargs: usize,
        out_stream: *mut FFI_ArrowArrayStream,
        out_error: OutError,
    ) -> Status,
}
