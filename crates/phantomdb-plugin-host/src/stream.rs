//! Reading the Arrow C streams a plugin returns (table function results, storage scans):
//! defensively, one batch at a time, with every batch fully validated against the stream's
//! schema, so a buggy stream yields an error instead of bad data in the host.

use std::ffi::CStr;
use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::{DataType, Schema, SchemaRef};

use crate::ffi::import_result;

/// Reads a whole Arrow C stream defensively (null callbacks and bad data become errors).
pub(crate) fn read_stream(
    stream: FFI_ArrowArrayStream,
) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
    let mut reader = StreamReader::new(stream)?;
    let mut batches = Vec::new();
    while let Some(b) = reader.next_batch()? {
        batches.push(b);
    }
    Ok((reader.schema, batches))
}

/// Reads an Arrow C stream from a plugin one batch at a time, validating every batch
/// (full Arrow validation, top-level nulls, schema).
pub(crate) struct StreamReader {
    stream: FFI_ArrowArrayStream,
    schema: SchemaRef,
    struct_type: DataType,
    /// `struct_type` in C form, built once: every batch is imported with it.
    batch_schema: FFI_ArrowSchema,
    done: bool,
}

// SAFETY: an Arrow C stream may be used from any thread, one at a time (`&mut self`).
unsafe impl Send for StreamReader {}

impl StreamReader {
    pub(crate) fn new(mut stream: FFI_ArrowArrayStream) -> Result<Self, String> {
        let Some(get_schema) = stream.get_schema else {
            return Err("returned a released or incomplete stream".to_string());
        };
        if stream.get_next.is_none() {
            return Err("returned a released or incomplete stream".to_string());
        }
        let mut ffi_schema = FFI_ArrowSchema::empty();
        // SAFETY: valid stream and out slot.
        let rc = unsafe { get_schema(&mut stream, &mut ffi_schema) };
        if rc != 0 {
            return Err(format!(
                "stream get_schema failed: {}",
                stream_error(&mut stream)
            ));
        }
        let schema = Arc::new(
            Schema::try_from(&ffi_schema).map_err(|e| format!("invalid stream schema: {e}"))?,
        );
        let struct_type = DataType::Struct(schema.fields().clone());
        let batch_schema = FFI_ArrowSchema::try_from(&struct_type)
            .map_err(|e| format!("cannot describe stream schema: {e}"))?;
        Ok(Self {
            stream,
            schema,
            struct_type,
            batch_schema,
            done: false,
        })
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next batch, `None` at the end.
    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(get_next) = self.stream.get_next else {
            return Err("stream has no get_next".to_string());
        };
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: valid stream and out slot.
        let rc = unsafe { get_next(&mut self.stream, &mut array) };
        if rc != 0 {
            self.done = true;
            return Err(format!(
                "stream get_next failed: {}",
                stream_error(&mut self.stream)
            ));
        }
        if array.is_released() {
            self.done = true;
            return Ok(None);
        }
        let column = import_result(array, &self.batch_schema, Some(&self.struct_type), None)?;
        let Some(s) = column.as_any().downcast_ref::<StructArray>() else {
            return Err("stream batch is not a struct array".to_string());
        };
        if s.null_count() != 0 {
            return Err("stream batch has top-level nulls".to_string());
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            s.columns().to_vec(),
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(s.len())),
        )
        .map(Some)
        .map_err(|e| format!("invalid batch: {e}"))
    }
}

fn stream_error(stream: &mut FFI_ArrowArrayStream) -> String {
    match stream.get_last_error {
        // SAFETY: stream callback; returns null or a NUL-terminated string owned by the stream.
        Some(f) => {
            let p = unsafe { f(stream) };
            if p.is_null() {
                "unknown stream error".to_string()
            } else {
                // SAFETY: as above.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        }
        None => "unknown stream error".to_string(),
    }
}
