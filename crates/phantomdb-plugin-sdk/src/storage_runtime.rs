//! Plugin-side trampolines of the `phantomdb.storage/1` interface: decode the C arguments,
//! call the plugin's [`StorageEngine`]s under `catch_unwind` (see [`crate::runtime::call`]) and
//! encode the results.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, RecordBatchReader, StructArray, UInt64Array};
use arrow_schema::{ArrowError, Schema, SchemaRef};

use phantomdb_plugin_abi::{
    OutError, ScanRequest as CScanRequest, Status, StorageEngineDescriptor, StorageInterface,
    StorageTxnHandle, TableRef,
};

use crate::runtime::{call, tables, text, Failure, InterfaceTables};
use crate::storage::{Filter, Options, ScanRequest, StorageEngine, StorageTransaction, TableInfo};

/// The plugin's engines and the C tables describing them.
pub(crate) struct StorageTables {
    engines: Vec<Arc<dyn StorageEngine>>,
    _strings: Vec<CString>,
    _descriptors: Vec<StorageEngineDescriptor>,
    interface: StorageInterface,
}

impl StorageTables {
    /// `None` when the plugin has no engines (then it does not offer the interface).
    pub(crate) fn new(engines: Vec<Arc<dyn StorageEngine>>) -> Option<Self> {
        if engines.is_empty() {
            return None;
        }
        let c = |s: &str| {
            CString::new(s.replace('\0', "")).unwrap_or_else(|_| CString::from(c"invalid"))
        };
        let mut strings = Vec::new();
        let mut descriptors = Vec::new();
        for e in &engines {
            let name = c(e.name());
            let description = c(e.description());
            descriptors.push(StorageEngineDescriptor {
                struct_size: std::mem::size_of::<StorageEngineDescriptor>(),
                name: name.as_ptr(),
                description: description.as_ptr(),
                capabilities: e.capabilities().to_bits(),
            });
            // Moving a CString does not move its heap buffer, so the pointers stay valid.
            strings.push(name);
            strings.push(description);
        }
        let interface = StorageInterface {
            struct_size: std::mem::size_of::<StorageInterface>(),
            num_engines: descriptors.len(),
            engines: descriptors.as_ptr(),
            create_table,
            drop_table,
            list_tables,
            supports_filters,
            begin,
            scan,
            insert,
            delete_rows,
            update_rows,
            statistics,
            prepare,
            commit,
            rollback,
        };
        Some(Self {
            engines,
            _strings: strings,
            _descriptors: descriptors,
            interface,
        })
    }
}

impl InterfaceTables for StorageTables {
    fn interface_name(&self) -> &'static std::ffi::CStr {
        phantomdb_plugin_abi::STORAGE_INTERFACE_V1_C
    }

    fn interface_ptr(&self) -> *const c_void {
        &self.interface as *const StorageInterface as *const c_void
    }
}

fn engine(index: usize) -> Result<&'static Arc<dyn StorageEngine>, Failure> {
    tables::<StorageTables>("storage engines")?
        .engines
        .get(index)
        .ok_or_else(|| Failure::invalid(format!("no storage engine #{index}")))
}

fn parse_options(json: &str) -> Result<Options, Failure> {
    if json.trim().is_empty() {
        return Ok(Options::new());
    }
    serde_json::from_str(json).map_err(|e| Failure::invalid(format!("bad options JSON: {e}")))
}

unsafe fn table_info(table: *const TableRef) -> Result<TableInfo, Failure> {
    if table.is_null() {
        return Err(Failure::invalid("null table"));
    }
    // SAFETY: the host passes a valid TableRef for the call.
    let t = unsafe { &*table };
    // SAFETY: pointers and lengths come from the same TableRef.
    let name = unsafe { text(t.name, t.name_len, "table name") }?.to_string();
    // SAFETY: as above.
    let options = parse_options(unsafe { text(t.options_json, t.options_len, "options") }?)?;
    if t.schema.is_null() {
        return Err(Failure::invalid("null table schema"));
    }
    // SAFETY: the host passes a valid schema, borrowed for the call.
    let schema = Schema::try_from(unsafe { &*t.schema })
        .map_err(|e| Failure::invalid(format!("bad table schema: {e}")))?;
    Ok(TableInfo {
        id: t.table_id,
        name,
        schema: Arc::new(schema),
        options,
    })
}

unsafe fn write_json(out: *mut *mut c_char, json: String) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::invalid("null output pointer"));
    }
    let c = CString::new(json).map_err(|_| Failure::error("JSON output contained NUL"))?;
    // SAFETY: non-null host slot.
    unsafe { *out = c.into_raw() };
    Ok(())
}

/// Imports a struct array + schema moved from the host as a record batch.
unsafe fn import_batch(
    array: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
) -> Result<RecordBatch, Failure> {
    if array.is_null() || schema.is_null() {
        return Err(Failure::invalid("null batch"));
    }
    // SAFETY: the host moves a valid array; `from_raw` leaves a released struct behind.
    let array = unsafe { FFI_ArrowArray::from_raw(array) };
    // SAFETY: the schema is borrowed for the call.
    let data = unsafe { from_ffi(array, &*schema) }
        .map_err(|e| Failure::invalid(format!("bad batch: {e}")))?;
    Ok(RecordBatch::from(StructArray::from(data)))
}

unsafe fn import_row_ids(
    array: *mut FFI_ArrowArray,
    schema: *const FFI_ArrowSchema,
) -> Result<UInt64Array, Failure> {
    if array.is_null() || schema.is_null() {
        return Err(Failure::invalid("null row ids"));
    }
    // SAFETY: as in import_batch.
    let array = unsafe { FFI_ArrowArray::from_raw(array) };
    // SAFETY: as in import_batch.
    let data = unsafe { from_ffi(array, &*schema) }
        .map_err(|e| Failure::invalid(format!("bad row ids: {e}")))?;
    let ids = arrow_array::make_array(data);
    ids.as_any()
        .downcast_ref::<UInt64Array>()
        .cloned()
        .ok_or_else(|| Failure::invalid("row ids must be UInt64"))
}

/// A transaction handle: the boxed plugin transaction.
struct TxnBox(Box<dyn StorageTransaction>);

unsafe fn txn<'a>(handle: StorageTxnHandle) -> Result<&'a mut TxnBox, Failure> {
    if handle.is_null() {
        return Err(Failure::invalid("null transaction handle"));
    }
    // SAFETY: the handle came from `begin` and is used by one thread at a time.
    Ok(unsafe { &mut *(handle as *mut TxnBox) })
}

unsafe fn set_count(out: *mut u64, n: u64) {
    if !out.is_null() {
        // SAFETY: non-null host slot.
        unsafe { *out = n };
    }
}

/// A reader that turns a panic in the plugin's stream into an error, so that no panic unwinds
/// through the Arrow C stream callbacks.
struct PanicSafeReader {
    inner: crate::storage::BatchStream,
    schema: SchemaRef,
}

impl Iterator for PanicSafeReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.next())) {
            Ok(item) => item,
            Err(payload) => {
                let message = crate::runtime::panic_text(payload.as_ref());
                Some(Err(ArrowError::ExternalError(
                    format!("storage engine panicked while scanning: {message}").into(),
                )))
            }
        }
    }
}

impl RecordBatchReader for PanicSafeReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

unsafe extern "C" fn create_table(
    engine_index: usize,
    table: *const TableRef,
    out_json: *mut *mut c_char,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = engine(engine_index)?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        let options = e.create_table(&info).map_err(Failure::error)?;
        let json = serde_json::to_string(&options).map_err(|e| Failure::error(e.to_string()))?;
        // SAFETY: host slot.
        unsafe { write_json(out_json, json) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn drop_table(
    engine_index: usize,
    table: *const TableRef,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = engine(engine_index)?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        e.drop_table(&info).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn list_tables(
    engine_index: usize,
    options_json: *const u8,
    options_len: usize,
    out_json: *mut *mut c_char,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = engine(engine_index)?;
        // SAFETY: host contract.
        let options = parse_options(unsafe { text(options_json, options_len, "options") }?)?;
        let tables = e.list_tables(&options).map_err(Failure::error)?;
        let list: Vec<serde_json::Value> = tables
            .into_iter()
            .map(|(name, options)| serde_json::json!({"name": name, "options": options}))
            .collect();
        let json = serde_json::to_string(&list).map_err(|e| Failure::error(e.to_string()))?;
        // SAFETY: host slot.
        unsafe { write_json(out_json, json) }
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn supports_filters(
    engine_index: usize,
    table: *const TableRef,
    filters_json: *const u8,
    filters_len: usize,
    out_support: *mut u8,
    num_filters: usize,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = engine(engine_index)?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        // SAFETY: host contract.
        let filters = Filter::parse_list(unsafe { text(filters_json, filters_len, "filters") }?)
            .map_err(Failure::invalid)?;
        if filters.len() != num_filters || (num_filters > 0 && out_support.is_null()) {
            return Err(Failure::invalid("filter count does not match the output"));
        }
        let answers = e.supports_filters(&info, &filters);
        for i in 0..num_filters {
            let v = answers
                .get(i)
                .copied()
                .unwrap_or(crate::FilterSupport::Unsupported);
            // SAFETY: the host provides `num_filters` bytes.
            unsafe { *out_support.add(i) = v.to_u8() };
        }
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn begin(
    engine_index: usize,
    out_txn: *mut StorageTxnHandle,
    out_error: OutError,
) -> Status {
    let work = || {
        let e = engine(engine_index)?;
        if out_txn.is_null() {
            return Err(Failure::invalid("null transaction output"));
        }
        let t = e.begin().map_err(Failure::error)?;
        // SAFETY: non-null host slot.
        unsafe { *out_txn = Box::into_raw(Box::new(TxnBox(t))) as StorageTxnHandle };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn scan(
    handle: StorageTxnHandle,
    table: *const TableRef,
    request: *const CScanRequest,
    out_stream: *mut FFI_ArrowArrayStream,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { txn(handle) }?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        if request.is_null() || out_stream.is_null() {
            return Err(Failure::invalid("null scan request or output"));
        }
        // SAFETY: valid for the call.
        let req = unsafe { &*request };
        let projection = if req.has_projection != 0 {
            if req.projection_len > 0 && req.projection.is_null() {
                return Err(Failure::invalid("null projection"));
            }
            // SAFETY: `projection_len` readable entries.
            Some(if req.projection_len == 0 {
                Vec::new()
            } else {
                unsafe { std::slice::from_raw_parts(req.projection, req.projection_len) }.to_vec()
            })
        } else {
            None
        };
        // SAFETY: pointer/length pair from the request.
        let filters =
            Filter::parse_list(unsafe { text(req.filters_json, req.filters_len, "filters") }?)
                .map_err(Failure::invalid)?;
        let request = ScanRequest {
            projection,
            filters,
            limit: (req.limit != u64::MAX).then_some(req.limit as usize),
            with_row_ids: req.with_row_ids != 0,
        };
        let schema = request
            .output_schema(&info.schema)
            .map_err(Failure::invalid)?;
        let inner = t.0.scan(&info, &request).map_err(Failure::error)?;
        let reader = PanicSafeReader { inner, schema };
        // SAFETY: non-null host slot; `write` does not drop the empty old value.
        unsafe { std::ptr::write(out_stream, FFI_ArrowArrayStream::new(Box::new(reader))) };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn insert(
    handle: StorageTxnHandle,
    table: *const TableRef,
    batch: *mut FFI_ArrowArray,
    batch_schema: *const FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { txn(handle) }?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        // SAFETY: host contract (moved batch).
        let batch = unsafe { import_batch(batch, batch_schema) }?;
        let batch = batch
            .with_schema(info.schema.clone())
            .map_err(|e| Failure::invalid(format!("batch does not match the table: {e}")))?;
        t.0.insert(&info, batch).map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn delete_rows(
    handle: StorageTxnHandle,
    table: *const TableRef,
    row_ids: *mut FFI_ArrowArray,
    row_ids_schema: *const FFI_ArrowSchema,
    out_count: *mut u64,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { txn(handle) }?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        // SAFETY: host contract (moved array).
        let ids = unsafe { import_row_ids(row_ids, row_ids_schema) }?;
        let n = t.0.delete(&info, &ids).map_err(Failure::error)?;
        // SAFETY: host slot.
        unsafe { set_count(out_count, n) };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn update_rows(
    handle: StorageTxnHandle,
    table: *const TableRef,
    row_ids: *mut FFI_ArrowArray,
    row_ids_schema: *const FFI_ArrowSchema,
    rows: *mut FFI_ArrowArray,
    rows_schema: *const FFI_ArrowSchema,
    out_count: *mut u64,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { txn(handle) }?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        // SAFETY: host contract (moved arrays).
        let ids = unsafe { import_row_ids(row_ids, row_ids_schema) }?;
        // SAFETY: as above.
        let rows = unsafe { import_batch(rows, rows_schema) }?;
        let rows = rows
            .with_schema(info.schema.clone())
            .map_err(|e| Failure::invalid(format!("rows do not match the table: {e}")))?;
        if rows.num_rows() != ids.len() {
            return Err(Failure::invalid("row ids and rows differ in length"));
        }
        let n = t.0.update(&info, &ids, rows).map_err(Failure::error)?;
        // SAFETY: host slot.
        unsafe { set_count(out_count, n) };
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn statistics(
    handle: StorageTxnHandle,
    table: *const TableRef,
    out_row_count: *mut i64,
    out_min_max: *mut FFI_ArrowArray,
    out_min_max_schema: *mut FFI_ArrowSchema,
    out_error: OutError,
) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { txn(handle) }?;
        // SAFETY: host contract.
        let info = unsafe { table_info(table) }?;
        let stats = t.0.statistics(&info).map_err(Failure::error)?;
        let count = stats
            .as_ref()
            .and_then(|s| s.row_count)
            .map_or(-1, |n| n as i64);
        if !out_row_count.is_null() {
            // SAFETY: non-null host slot.
            unsafe { *out_row_count = count };
        }
        if let Some(mm) = stats.and_then(|s| s.min_max) {
            if !out_min_max.is_null() && !out_min_max_schema.is_null() {
                let data = StructArray::from(mm).into_data();
                let (a, s) = to_ffi(&data).map_err(|e| Failure::error(e.to_string()))?;
                // SAFETY: non-null, empty host slots.
                unsafe {
                    std::ptr::write(out_min_max, a);
                    std::ptr::write(out_min_max_schema, s);
                }
            }
        }
        Ok(())
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn prepare(handle: StorageTxnHandle, out_error: OutError) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { txn(handle) }?;
        t.0.prepare().map_err(Failure::commit)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

/// Takes back ownership of a transaction handle (for commit/rollback).
unsafe fn take_txn(handle: StorageTxnHandle) -> Result<Box<TxnBox>, Failure> {
    if handle.is_null() {
        return Err(Failure::invalid("null transaction handle"));
    }
    // SAFETY: the handle came from `begin`; commit/rollback end it exactly once.
    Ok(unsafe { Box::from_raw(handle as *mut TxnBox) })
}

unsafe extern "C" fn commit(handle: StorageTxnHandle, out_error: OutError) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { take_txn(handle) }?;
        t.0.commit().map_err(Failure::commit)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}

unsafe extern "C" fn rollback(handle: StorageTxnHandle, out_error: OutError) -> Status {
    let work = || {
        // SAFETY: host contract.
        let t = unsafe { take_txn(handle) }?;
        t.0.rollback().map_err(Failure::error)
    };
    // SAFETY: out_error contract is the caller's.
    unsafe { call(out_error, work) }
}
