//! Data file contents: batches conformed to a table's schema, encoded as Parquet.

use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use phantomdb_plugin_sdk::arrow_array::{RecordBatch, RecordBatchOptions};
use phantomdb_plugin_sdk::arrow_schema::SchemaRef;

/// Encodes batches (in `schema`) as one Parquet file; returns the bytes and the footer.
pub(crate) fn encode_parquet(
    batches: &[RecordBatch],
    schema: SchemaRef,
    row_group_size: usize,
) -> Result<(Bytes, ParquetMetaData), String> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_size.max(1)))
        .build();
    let mut buf: Vec<u8> = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props))
        .map_err(|e| format!("s3_storage: cannot write Parquet: {e}"))?;
    for b in batches {
        writer
            .write(b)
            .map_err(|e| format!("s3_storage: cannot write Parquet: {e}"))?;
    }
    let meta = writer
        .close()
        .map_err(|e| format!("s3_storage: cannot write Parquet: {e}"))?;
    Ok((Bytes::from(buf), meta))
}

/// A batch in exactly `schema` (columns by position, cast when the types differ).
pub(crate) fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.num_columns() != schema.fields().len() {
        return Err(format!(
            "s3_storage: expected {} columns, got {}",
            schema.fields().len(),
            batch.num_columns()
        ));
    }
    if batch.schema() == *schema {
        return Ok(batch);
    }
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow_cast::cast(c, f.data_type()).map_err(|e| {
                    format!(
                        "s3_storage: cannot store {} values in column {} ({}): {e}",
                        c.data_type(),
                        f.name(),
                        f.data_type()
                    )
                })
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| format!("s3_storage: {e}"))
}

/// A batch read from an older file in `schema`, matching columns by name (missing ones null).
pub(crate) fn conform_by_name(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, String> {
    let n = batch.num_rows();
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow_cast::cast(c, f.data_type()).map_err(|e| e.to_string()),
            None => Ok(phantomdb_plugin_sdk::arrow_array::new_null_array(
                f.data_type(),
                n,
            )),
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| format!("s3_storage: {e}"))
}
