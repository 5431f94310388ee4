//! The `phantomdb.storage/1` interface ([`StorageInterface`]), since ABI 1.1: the storage
//! engines a plugin provides ([`StorageEngineDescriptor`], capability bits in [`storage_caps`]),
//! the tables ([`TableRef`]), scans ([`ScanRequest`], [`filter_support`]) and transactions
//! ([`StorageTxnHandle`]) the host drives them with.
//!
//! One module per interface, so each interface's tables (append-only within the ABI major
//! version) can be read and reviewed on their own.

use std::ffi::{c_char, c_void};

use crate::{FFI_ArrowArray, FFI_ArrowArrayStream, FFI_ArrowSchema, OutError, Status};
// Only named in documentation links.
#[cfg(doc)]
use crate::PluginVTable;

/// Name of the storage engine interface ([`StorageInterface`]), since ABI 1.1.
pub const STORAGE_INTERFACE_V1: &str = "phantomdb.storage/1";
/// Same as [`STORAGE_INTERFACE_V1`], NUL-terminated for `get_interface`.
pub const STORAGE_INTERFACE_V1_C: &std::ffi::CStr = c"phantomdb.storage/1";

/// Capability bits of a storage engine ([`StorageEngineDescriptor::capabilities`]). The host
/// refuses, with a clear error, what an engine does not declare.
pub mod storage_caps {
    /// Takes part in `BEGIN ... COMMIT/ROLLBACK`: writes stay invisible to other transactions
    /// until `commit`, and `rollback` discards them. Without it, each write is applied at once and
    /// the host refuses writes to the engine inside an explicit transaction.
    pub const TRANSACTIONS: u64 = 1;
    /// Supports `delete` and `update` by row id (and hands out row ids in scans).
    pub const UPDATE_DELETE: u64 = 1 << 1;
    /// Enforces primary keys and serves key lookups itself. Without it the host enforces
    /// primary keys by scanning the key columns.
    pub const INDEXES: u64 = 1 << 2;
    /// Answers `statistics` (row count, per-column min/max).
    pub const STATISTICS: u64 = 1 << 3;
}

/// Per-filter answer of [`StorageInterface::supports_filters`], stored as `u8`.
pub mod filter_support {
    /// The engine ignores the filter; the host applies it.
    pub const UNSUPPORTED: u8 = 0;
    /// The engine uses the filter to skip data but may return rows that fail it (e.g. pruning by
    /// min/max statistics); the host applies it again.
    pub const INEXACT: u8 = 1;
    /// The engine returns only rows that pass the filter; the host does not re-apply it.
    pub const EXACT: u8 = 2;
}

/// Name of the row-id column an engine appends to a scan when asked to
/// ([`ScanRequest::with_row_ids`]): `UInt64`, not null, unique within the table for the life of
/// the transaction.
pub const ROW_ID_COLUMN: &str = "__phantomdb_rowid";

/// One storage engine of a plugin. Strings live as long as the plugin (forever).
#[repr(C)]
#[derive(Debug)]
pub struct StorageEngineDescriptor {
    /// `size_of::<StorageEngineDescriptor>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Engine name as used in `CREATE TABLE ... USING name` (lower case), NUL-terminated.
    pub name: *const c_char,
    /// One-line description, NUL-terminated.
    pub description: *const c_char,
    /// Bit set of [`storage_caps`].
    pub capabilities: u64,
}

/// Identifies a table in every storage call. All pointers are borrowed for the call.
///
/// `options_json` is a JSON object of string keys to string values: the `WITH (...)` options of
/// `CREATE TABLE`, as completed by [`StorageInterface::create_table`].
#[repr(C)]
#[derive(Debug)]
pub struct TableRef {
    /// `size_of::<TableRef>()` in the host's ABI version.
    pub struct_size: usize,
    /// The host's id of the table: unique in the database and stable across renames.
    pub table_id: u64,
    /// Table name, UTF-8 (not NUL-terminated).
    pub name: *const u8,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// Engine options, UTF-8 JSON object (not NUL-terminated).
    pub options_json: *const u8,
    /// Length of `options_json` in bytes.
    pub options_len: usize,
    /// The table's current schema (a struct schema whose children are the columns).
    pub schema: *const FFI_ArrowSchema,
}

/// What a scan should return.
///
/// `filters_json` is a JSON array of filter expressions that all must hold (a conjunction); see
/// the SDK's `Filter` type for the full format:
///
/// ```json
/// [{"compare": {"op": ">", "left": {"column": "id"}, "right": {"literal": {"int": 5}}}},
///  {"is_not_null": {"column": "v"}},
///  {"in_list": {"expr": {"column": "v"}, "list": [{"literal": {"str": "a"}}], "negated": false}}]
/// ```
///
/// Operands are `{"column": name}` or `{"literal": value}`, with values `"null"`, `{"bool": b}`,
/// `{"int": i64}`, `{"uint": u64}`, `{"float": f64}`, `{"str": s}`, `{"date32": days}`,
/// `{"timestamp_us": micros}`; operators `compare` (`=`, `!=`, `<`, `<=`, `>`, `>=`), `and`,
/// `or`, `not`, `is_null`, `is_not_null` and `in_list`.
///
/// An engine may apply any subset of them; it must apply exactly those for which
/// `supports_filters` answered [`filter_support::EXACT`].
#[repr(C)]
#[derive(Debug)]
pub struct ScanRequest {
    /// `size_of::<ScanRequest>()` in the host's ABI version.
    pub struct_size: usize,
    /// Column indexes to return, in order; ignored when `has_projection` is 0 (all columns).
    pub projection: *const usize,
    /// Number of entries in `projection`.
    pub projection_len: usize,
    /// 1 when `projection` applies.
    pub has_projection: u8,
    /// 1 to append a [`ROW_ID_COLUMN`] column.
    pub with_row_ids: u8,
    /// Filters, UTF-8 JSON array (not NUL-terminated); may be empty (length 0).
    pub filters_json: *const u8,
    /// Length of `filters_json`.
    pub filters_len: usize,
    /// Maximum rows the host needs, or `u64::MAX` for no limit. Only sent when every filter is
    /// applied exactly, so the engine may stop early.
    pub limit: u64,
}

/// Opaque transaction handle, owned by the plugin; ended by exactly one of
/// [`StorageInterface::commit`] or [`StorageInterface::rollback`], which free it.
pub type StorageTxnHandle = *mut c_void;

/// The `phantomdb.storage/1` interface. Append-only. `engine` arguments index `engines`.
///
/// Table lifecycle calls (`create_table`, `drop_table`) are not transactional: the host creates
/// eagerly (dropping again if its transaction rolls back) and drops only after its transaction
/// committed. Data calls run inside a transaction from `begin`; an engine without
/// [`storage_caps::TRANSACTIONS`] may apply them immediately.
///
/// String results (`out_json`) are allocated by the plugin and released by the host with
/// [`PluginVTable::free_string`].
#[repr(C)]
#[derive(Debug)]
pub struct StorageInterface {
    /// `size_of::<StorageInterface>()` in the plugin's ABI version.
    pub struct_size: usize,
    /// Number of entries in `engines`.
    pub num_engines: usize,
    /// Engine descriptors; stride is their `struct_size`.
    pub engines: *const StorageEngineDescriptor,

    /// Creates the table's storage. Writes the completed options (defaults filled in, e.g. a
    /// generated location) as a JSON object into `out_json`; the host stores them in its catalog
    /// and passes them in every later call.
    pub create_table: unsafe extern "C" fn(
        engine: usize,
        table: *const TableRef,
        out_json: *mut *mut c_char,
        out_error: OutError,
    ) -> Status,
    /// Deletes the table's storage.
    pub drop_table:
        unsafe extern "C" fn(engine: usize, table: *const TableRef, out_error: OutError) -> Status,
    /// Lists the tables the engine holds under the given options (a JSON object, e.g. a `path`)
    /// as a JSON array of `{"name": ..., "options": {...}}` objects written into `out_json`.
    pub list_tables: unsafe extern "C" fn(
        engine: usize,
        options_json: *const u8,
        options_len: usize,
        out_json: *mut *mut c_char,
        out_error: OutError,
    ) -> Status,
    /// For each of the filters in the JSON array, writes one [`filter_support`] value into
    /// `out_support` (which has room for `num_filters` bytes).
    pub supports_filters: unsafe extern "C" fn(
        engine: usize,
        table: *const TableRef,
        filters_json: *const u8,
        filters_len: usize,
        out_support: *mut u8,
        num_filters: usize,
        out_error: OutError,
    ) -> Status,
    /// Starts a transaction.
    pub begin: unsafe extern "C" fn(
        engine: usize,
        out_txn: *mut StorageTxnHandle,
        out_error: OutError,
    ) -> Status,
    /// Scans a table as the transaction sees it, writing a record-batch stream into
    /// `out_stream`. The stream's schema is the projected columns (plus the row-id column when
    /// asked). The stream stays valid after the transaction ends.
    pub scan: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        request: *const ScanRequest,
        out_stream: *mut FFI_ArrowArrayStream,
        out_error: OutError,
    ) -> Status,
    /// Inserts one batch in the table's schema. The plugin moves `batch` (a struct array).
    pub insert: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        batch: *mut FFI_ArrowArray,
        batch_schema: *const FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
    /// Deletes rows by id (a `UInt64` array the plugin moves); writes how many were deleted.
    pub delete_rows: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        row_ids: *mut FFI_ArrowArray,
        row_ids_schema: *const FFI_ArrowSchema,
        out_count: *mut u64,
        out_error: OutError,
    ) -> Status,
    /// Replaces rows by id: row `i` of `rows` (a struct array in the table's schema) is the new
    /// content of row `row_ids[i]`. Writes how many were updated.
    #[allow(clippy::type_complexity)]
    pub update_rows: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        row_ids: *mut FFI_ArrowArray,
        row_ids_schema: *const FFI_ArrowSchema,
        rows: *mut FFI_ArrowArray,
        rows_schema: *const FFI_ArrowSchema,
        out_count: *mut u64,
        out_error: OutError,
    ) -> Status,
    /// Table statistics: the row count (or -1 when unknown) and, when `out_min_max` is written
    /// (non-released), a 2-row struct array in the table's schema: row 0 the per-column minimum,
    /// row 1 the maximum (null where unknown).
    pub statistics: unsafe extern "C" fn(
        txn: StorageTxnHandle,
        table: *const TableRef,
        out_row_count: *mut i64,
        out_min_max: *mut FFI_ArrowArray,
        out_min_max_schema: *mut FFI_ArrowSchema,
        out_error: OutError,
    ) -> Status,
    /// First commit phase: does everything that can fail (writes data files, checks
    /// conflicts) without making the changes visible. Optional to call; `commit` prepares
    /// when it was not called.
    pub prepare: unsafe extern "C" fn(txn: StorageTxnHandle, out_error: OutError) -> Status,
    /// Makes the transaction's changes visible atomically and frees the handle (also on error).
    pub commit: unsafe extern "C" fn(txn: StorageTxnHandle, out_error: OutError) -> Status,
    /// Discards the transaction's changes and frees the handle.
    pub rollback: unsafe extern "C" fn(txn: StorageTxnHandle, out_error: OutError) -> Status,
}
