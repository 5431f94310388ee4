//! Host side of `phantomdb.storage/1`: a plugin's storage engines, seen through the SDK's safe
//! [`StorageEngine`] / [`StorageTransaction`] traits, so the core treats engines compiled into
//! the binary and engines in a plugin library the same way.
//!
//! Every call checks the plugin is initialized (and holds its state lock for the call, so a
//! shutdown waits for it). Results are validated: scanned batches with full Arrow validation and
//! against the requested schema; filter answers and counts are range-checked.

use std::ffi::{c_char, CStr};

use arrow_array::ffi::{to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, RecordBatchReader, StructArray, UInt64Array};
use arrow_schema::{ArrowError, SchemaRef};
use phantomdb_plugin_abi::{
    ScanRequest as CScanRequest, StorageEngineDescriptor, StorageInterface, StorageTxnHandle,
    TableRef, STORAGE_INTERFACE_V1, STORAGE_INTERFACE_V1_C,
};
use phantomdb_plugin_sdk::storage::{
    BatchStream, Capabilities, CommitError, Filter, FilterSupport, Options, ScanRequest,
    StorageEngine, StorageTransaction, TableInfo, TableStatistics,
};

use crate::ffi::{c_str, import_result};
use crate::stream::StreamReader;
use crate::LoadedPlugin;

const MAX_ENGINES: usize = 1_000;

/// An engine as declared by a plugin.
#[derive(Debug, Clone)]
pub(crate) struct EngineDecl {
    name: String,
    description: String,
    capabilities: Capabilities,
}

/// Reads the plugin's storage interface, if it has one.
pub(crate) fn read_interface(
    vtable: &'static phantomdb_plugin_abi::PluginVTable,
) -> Result<(Option<&'static StorageInterface>, Vec<EngineDecl>), String> {
    // SAFETY: valid NUL-terminated name; the plugin returns null or a pointer to a static table.
    let ptr = unsafe { (vtable.get_interface)(STORAGE_INTERFACE_V1_C.as_ptr()) };
    if ptr.is_null() {
        return Ok((None, Vec::new()));
    }
    // SAFETY: a `StorageInterface` by ABI contract; struct_size is checked before other fields.
    let iface: &'static StorageInterface = unsafe { &*(ptr as *const StorageInterface) };
    if iface.struct_size < std::mem::size_of::<StorageInterface>() {
        return Err(format!(
            "`{STORAGE_INTERFACE_V1}` table is {} bytes, expected at least {}",
            iface.struct_size,
            std::mem::size_of::<StorageInterface>()
        ));
    }
    if iface.num_engines > MAX_ENGINES || (iface.num_engines > 0 && iface.engines.is_null()) {
        return Err(format!(
            "`{STORAGE_INTERFACE_V1}` declares {} engines at an invalid address",
            iface.num_engines
        ));
    }
    let mut engines = Vec::with_capacity(iface.num_engines);
    let mut stride = std::mem::size_of::<StorageEngineDescriptor>();
    for i in 0..iface.num_engines {
        // SAFETY: `num_engines` descriptors with a common stride (their struct_size).
        let d = unsafe {
            &*((iface.engines as *const u8).add(i * stride) as *const StorageEngineDescriptor)
        };
        if i == 0 {
            if d.struct_size < std::mem::size_of::<StorageEngineDescriptor>() {
                return Err("storage engine descriptor is too small".to_string());
            }
            stride = d.struct_size;
        }
        // SAFETY: NUL-terminated strings that live forever.
        let name = unsafe { c_str(d.name, "engine name") }?;
        // SAFETY: as above.
        let description = unsafe { c_str(d.description, "engine description") }?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "storage engine name `{name}` must be non-empty ASCII letters, digits or _"
            ));
        }
        engines.push(EngineDecl {
            name: name.to_ascii_lowercase(),
            description,
            capabilities: Capabilities::from_bits(d.capabilities),
        });
    }
    Ok((Some(iface), engines))
}

/// A storage engine living in a native plugin.
#[derive(Clone)]
pub struct NativeStorageEngine {
    plugin: LoadedPlugin,
    index: usize,
}

impl std::fmt::Debug for NativeStorageEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeStorageEngine")
            .field("plugin", &self.plugin.name())
            .field("engine", &self.decl().name)
            .finish()
    }
}

/// A [`TableRef`] and the buffers it points into.
struct CTable {
    options: String,
    schema: FFI_ArrowSchema,
    name: String,
    id: u64,
}

impl CTable {
    fn new(table: &TableInfo) -> Result<Self, String> {
        let options = serde_json::to_string(&table.options).map_err(|e| e.to_string())?;
        let schema = FFI_ArrowSchema::try_from(table.schema.as_ref())
            .map_err(|e| format!("cannot export the table schema: {e}"))?;
        Ok(Self {
            options,
            schema,
            name: table.name.clone(),
            id: table.id,
        })
    }

    fn as_ref(&self) -> TableRef {
        TableRef {
            struct_size: std::mem::size_of::<TableRef>(),
            table_id: self.id,
            name: self.name.as_ptr(),
            name_len: self.name.len(),
            options_json: self.options.as_ptr(),
            options_len: self.options.len(),
            schema: &self.schema,
        }
    }
}

/// Exports a record batch as a struct array + schema.
fn export_batch(batch: &RecordBatch) -> Result<(FFI_ArrowArray, FFI_ArrowSchema), String> {
    let data = StructArray::from(batch.clone()).into_data();
    to_ffi(&data).map_err(|e| format!("cannot export batch: {e}"))
}

fn export_ids(ids: &UInt64Array) -> Result<(FFI_ArrowArray, FFI_ArrowSchema), String> {
    to_ffi(&ids.to_data()).map_err(|e| format!("cannot export row ids: {e}"))
}

impl NativeStorageEngine {
    pub(crate) fn new(plugin: LoadedPlugin, index: usize) -> Self {
        Self { plugin, index }
    }

    fn decl(&self) -> &EngineDecl {
        &self.plugin.inner.engines[self.index]
    }

    /// The plugin the engine lives in.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    fn iface(&self) -> Result<&'static StorageInterface, String> {
        self.plugin
            .inner
            .storage_iface
            .ok_or_else(|| "plugin has no storage interface".to_string())
    }

    /// Runs `call` with the plugin entered (initialized, not shutting down) and turns its
    /// status and error message into a `Result`.
    fn call(
        &self,
        what: &str,
        call: impl FnOnce(&'static StorageInterface, *mut *mut c_char) -> phantomdb_plugin_abi::Status,
    ) -> Result<(), String> {
        self.call_commit(what, call).map_err(|e| e.to_string())
    }

    /// Like [`Self::call`], keeping [`Status::CONFLICT`](phantomdb_plugin_abi::Status::CONFLICT)
    /// apart: the commit protocol's calls (`prepare`, `commit`) report lost races typed.
    fn call_commit(
        &self,
        what: &str,
        call: impl FnOnce(&'static StorageInterface, *mut *mut c_char) -> phantomdb_plugin_abi::Status,
    ) -> Result<(), CommitError> {
        let iface = self.iface()?;
        let _guard = self.plugin.enter().map_err(|e| e.to_string())?;
        let mut err: *mut c_char = std::ptr::null_mut();
        let status = call(iface, &mut err);
        let checked =
            self.plugin
                .check_status(status, err, &format!("{}.{what}", self.decl().name));
        checked.map_err(|e| {
            if status == phantomdb_plugin_abi::Status::CONFLICT {
                CommitError::Conflict(e.to_string())
            } else {
                CommitError::Failed(e.to_string())
            }
        })
    }

    /// Takes a plugin-allocated JSON string.
    fn take_string(&self, s: *mut c_char) -> Result<String, String> {
        if s.is_null() {
            return Err(format!("engine {} returned no result", self.decl().name));
        }
        // SAFETY: plugin-allocated NUL-terminated string, freed right after.
        let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
        // SAFETY: returned to the allocator that produced it.
        unsafe { (self.plugin.inner.vtable.free_string)(s) };
        Ok(text)
    }
}

impl StorageEngine for NativeStorageEngine {
    fn name(&self) -> &str {
        &self.decl().name
    }

    fn description(&self) -> &str {
        &self.decl().description
    }

    fn capabilities(&self) -> Capabilities {
        self.decl().capabilities
    }

    fn create_table(&self, table: &TableInfo) -> Result<Options, String> {
        let t = CTable::new(table)?;
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid pointers for the call.
        self.call("create_table", |i, err| unsafe {
            (i.create_table)(self.index, &t.as_ref(), &mut out, err)
        })?;
        let json = self.take_string(out)?;
        serde_json::from_str(&json)
            .map_err(|e| format!("engine {} returned bad options: {e}", self.name()))
    }

    fn drop_table(&self, table: &TableInfo) -> Result<(), String> {
        let t = CTable::new(table)?;
        // SAFETY: valid pointers for the call.
        self.call("drop_table", |i, err| unsafe {
            (i.drop_table)(self.index, &t.as_ref(), err)
        })
    }

    fn list_tables(&self, options: &Options) -> Result<Vec<(String, Options)>, String> {
        let json = serde_json::to_string(options).map_err(|e| e.to_string())?;
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid pointers for the call.
        self.call("list_tables", |i, err| unsafe {
            (i.list_tables)(self.index, json.as_ptr(), json.len(), &mut out, err)
        })?;
        #[derive(serde::Deserialize)]
        struct Entry {
            name: String,
            #[serde(default)]
            options: Options,
        }
        let list: Vec<Entry> = serde_json::from_str(&self.take_string(out)?)
            .map_err(|e| format!("engine {} returned a bad table list: {e}", self.name()))?;
        Ok(list.into_iter().map(|e| (e.name, e.options)).collect())
    }

    fn supports_filters(&self, table: &TableInfo, filters: &[Filter]) -> Vec<FilterSupport> {
        let unsupported = vec![FilterSupport::Unsupported; filters.len()];
        if filters.is_empty() {
            return unsupported;
        }
        let Ok(t) = CTable::new(table) else {
            return unsupported;
        };
        let json = Filter::list_to_json(filters);
        let mut out = vec![0u8; filters.len()];
        // SAFETY: valid pointers for the call; `out` has one byte per filter.
        let r = self.call("supports_filters", |i, err| unsafe {
            (i.supports_filters)(
                self.index,
                &t.as_ref(),
                json.as_ptr(),
                json.len(),
                out.as_mut_ptr(),
                filters.len(),
                err,
            )
        });
        match r {
            Ok(()) => out.into_iter().map(FilterSupport::from_u8).collect(),
            Err(e) => {
                tracing::warn!(target: "phantomdb::plugin", "{e}; filters are applied by the host");
                unsupported
            }
        }
    }

    fn begin(&self) -> Result<Box<dyn StorageTransaction>, String> {
        let mut handle: StorageTxnHandle = std::ptr::null_mut();
        // SAFETY: valid out slot.
        self.call("begin", |i, err| unsafe {
            (i.begin)(self.index, &mut handle, err)
        })?;
        if handle.is_null() {
            return Err(format!(
                "engine {} returned no transaction",
                self.decl().name
            ));
        }
        Ok(Box::new(NativeTransaction {
            engine: self.clone(),
            handle,
        }))
    }
}

/// A transaction inside a plugin engine. Rolled back if dropped unfinished.
struct NativeTransaction {
    engine: NativeStorageEngine,
    handle: StorageTxnHandle,
}

// SAFETY: the ABI requires transactions to be usable from any thread, one at a time; every
// method takes `&mut self` or `self`.
unsafe impl Send for NativeTransaction {}

impl NativeTransaction {
    fn end(&mut self, commit: bool) -> Result<(), CommitError> {
        let handle = std::mem::replace(&mut self.handle, std::ptr::null_mut());
        if handle.is_null() {
            return Err("transaction already ended".into());
        }
        // SAFETY: the handle came from `begin` and is ended exactly once here.
        self.engine.call_commit(
            if commit { "commit" } else { "rollback" },
            |i, err| unsafe {
                if commit {
                    (i.commit)(handle, err)
                } else {
                    (i.rollback)(handle, err)
                }
            },
        )
    }
}

impl Drop for NativeTransaction {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            if let Err(e) = self.end(false) {
                tracing::warn!(target: "phantomdb::plugin", "rolling back an abandoned transaction: {e}");
            }
        }
    }
}

impl StorageTransaction for NativeTransaction {
    fn scan(&mut self, table: &TableInfo, request: &ScanRequest) -> Result<BatchStream, String> {
        let t = CTable::new(table)?;
        let expected = request.output_schema(&table.schema)?;
        let projection = request.projection.clone().unwrap_or_default();
        let filters = Filter::list_to_json(&request.filters);
        let c_request = CScanRequest {
            struct_size: std::mem::size_of::<CScanRequest>(),
            projection: projection.as_ptr(),
            projection_len: projection.len(),
            has_projection: u8::from(request.projection.is_some()),
            with_row_ids: u8::from(request.with_row_ids),
            filters_json: filters.as_ptr(),
            filters_len: filters.len(),
            limit: request.limit.map_or(u64::MAX, |l| l as u64),
        };
        let mut stream = FFI_ArrowArrayStream::empty();
        let handle = self.handle;
        // SAFETY: valid pointers for the call.
        self.engine.call("scan", |i, err| unsafe {
            (i.scan)(handle, &t.as_ref(), &c_request, &mut stream, err)
        })?;
        let reader =
            StreamReader::new(stream).map_err(|e| format!("engine {} {e}", self.engine.name()))?;
        if reader.schema().fields() != expected.fields() {
            return Err(format!(
                "engine {} returned columns {:?}, expected {:?}",
                self.engine.name(),
                reader.schema().fields(),
                expected.fields()
            ));
        }
        Ok(Box::new(CheckedReader {
            engine: self.engine.clone(),
            reader,
            schema: expected,
        }))
    }

    fn insert(&mut self, table: &TableInfo, batch: RecordBatch) -> Result<(), String> {
        let t = CTable::new(table)?;
        let (mut array, schema) = export_batch(&batch)?;
        let handle = self.handle;
        // SAFETY: valid pointers; the plugin moves `array`.
        self.engine.call("insert", |i, err| unsafe {
            (i.insert)(handle, &t.as_ref(), &mut array, &schema, err)
        })
    }

    fn delete(&mut self, table: &TableInfo, row_ids: &UInt64Array) -> Result<u64, String> {
        let t = CTable::new(table)?;
        let (mut ids, ids_schema) = export_ids(row_ids)?;
        let mut count = 0u64;
        let handle = self.handle;
        // SAFETY: valid pointers; the plugin moves `ids`.
        self.engine.call("delete", |i, err| unsafe {
            (i.delete_rows)(handle, &t.as_ref(), &mut ids, &ids_schema, &mut count, err)
        })?;
        Ok(count.min(row_ids.len() as u64))
    }

    fn update(
        &mut self,
        table: &TableInfo,
        row_ids: &UInt64Array,
        rows: RecordBatch,
    ) -> Result<u64, String> {
        let t = CTable::new(table)?;
        let (mut ids, ids_schema) = export_ids(row_ids)?;
        let (mut array, schema) = export_batch(&rows)?;
        let mut count = 0u64;
        let handle = self.handle;
        // SAFETY: valid pointers; the plugin moves `ids` and `array`.
        self.engine.call("update", |i, err| unsafe {
            (i.update_rows)(
                handle,
                &t.as_ref(),
                &mut ids,
                &ids_schema,
                &mut array,
                &schema,
                &mut count,
                err,
            )
        })?;
        Ok(count.min(row_ids.len() as u64))
    }

    fn statistics(&mut self, table: &TableInfo) -> Result<Option<TableStatistics>, String> {
        let t = CTable::new(table)?;
        let mut count = -1i64;
        let mut array = FFI_ArrowArray::empty();
        let mut schema = FFI_ArrowSchema::empty();
        let handle = self.handle;
        // SAFETY: valid out slots.
        self.engine.call("statistics", |i, err| unsafe {
            (i.statistics)(
                handle,
                &t.as_ref(),
                &mut count,
                &mut array,
                &mut schema,
                err,
            )
        })?;
        let row_count = u64::try_from(count).ok();
        let min_max = if array.is_released() {
            None
        } else {
            // Bounds may be unknown (null) even for NOT NULL columns: compare the column
            // types, not their nullability.
            let column = import_result(array, &schema, None, Some(2))?;
            let s = column
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or("statistics are not a struct array")?;
            let same = s.fields().len() == table.schema.fields().len()
                && s.fields()
                    .iter()
                    .zip(table.schema.fields())
                    .all(|(a, b)| a.data_type() == b.data_type());
            if !same {
                return Err(format!(
                    "engine {} returned statistics of type {}, expected the table's columns",
                    self.engine.name(),
                    s.data_type()
                ));
            }
            Some(RecordBatch::from(s.clone()))
        };
        Ok(Some(TableStatistics { row_count, min_max }))
    }

    fn prepare(&mut self) -> Result<(), CommitError> {
        let handle = self.handle;
        // SAFETY: valid handle.
        self.engine
            .call_commit("prepare", |i, err| unsafe { (i.prepare)(handle, err) })
    }

    fn commit(mut self: Box<Self>) -> Result<(), CommitError> {
        self.end(true)
    }

    fn rollback(mut self: Box<Self>) -> Result<(), String> {
        self.end(false).map_err(|e| e.to_string())
    }
}

/// The scan stream of a plugin engine, validated batch by batch.
struct CheckedReader {
    engine: NativeStorageEngine,
    reader: StreamReader,
    schema: SchemaRef,
}

impl Iterator for CheckedReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Hold the plugin's state lock while its stream code runs (a shutdown waits).
        let guard = match self.engine.plugin.enter() {
            Ok(g) => g,
            Err(e) => return Some(Err(ArrowError::ExternalError(Box::new(e)))),
        };
        let r = self.reader.next_batch();
        drop(guard);
        match r {
            Ok(Some(b)) => Some(b.with_schema(self.schema.clone()).map_err(|e| {
                ArrowError::ExternalError(
                    format!("engine {} returned a bad batch: {e}", self.engine.name()).into(),
                )
            })),
            Ok(None) => None,
            Err(e) => Some(Err(ArrowError::ExternalError(
                format!("engine {}: {e}", self.engine.name()).into(),
            ))),
        }
    }
}

impl RecordBatchReader for CheckedReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
