//! The stored form of rows: segments (Arrow IPC streams), deletion bitmaps, and re-labelling
//! stored rows with a table's current schema.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use datafusion::common::ScalarValue;

use super::checksum::{self, Kind};
use crate::catalog::TableDef;
use crate::error::{Error, Result};

/// Rows inserted by the open transaction that do not fill a segment yet, in insertion order.
///
/// One-row statements would leave one batch per row; runs of small batches are merged as
/// they arrive ([`MERGE_SMALL`] at a time), so reading a row back or writing the segment
/// out never walks one batch per row.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) segment: u64,
    batches: Vec<RecordBatch>,
    pub(super) rows: usize,
    /// How many batches at the end of `batches` are small (fewer than [`MERGE_SMALL`] rows).
    small_tail: usize,
    /// Rows appended one at a time ([`Pending::push_row`]) after `batches`: one vector of
    /// values per column, turned into arrays [`MERGE_SMALL`] rows at a time.
    buffered: Vec<Vec<ScalarValue>>,
    buffered_rows: usize,
}

/// Small batches merged into one once this many follow each other.
const MERGE_SMALL: usize = 64;

impl Pending {
    pub(super) fn new(segment: u64) -> Self {
        Self {
            segment,
            batches: Vec::new(),
            rows: 0,
            small_tail: 0,
            buffered: Vec::new(),
            buffered_rows: 0,
        }
    }

    /// Appends rows (in the table's schema).
    pub(super) fn push(&mut self, batch: RecordBatch) -> Result<()> {
        self.seal(&batch.schema())?;
        self.rows += batch.num_rows();
        if batch.num_rows() >= MERGE_SMALL {
            self.small_tail = 0;
            self.batches.push(batch);
            return Ok(());
        }
        self.batches.push(batch);
        self.small_tail += 1;
        if self.small_tail >= MERGE_SMALL {
            let start = self.batches.len() - self.small_tail;
            let merged = concat_batches(&self.batches[start].schema(), &self.batches[start..])?;
            self.batches.truncate(start);
            self.batches.push(merged);
            self.small_tail = 0;
        }
        Ok(())
    }

    /// Appends one row: a value of each column's type (typed NULLs), in `schema`, the
    /// table's schema.
    pub(super) fn push_row(&mut self, schema: &SchemaRef, row: Vec<ScalarValue>) -> Result<()> {
        if self.buffered.len() != row.len() {
            self.seal(schema)?;
            self.buffered = (0..row.len())
                .map(|_| Vec::with_capacity(MERGE_SMALL))
                .collect();
        }
        for (column, value) in self.buffered.iter_mut().zip(row) {
            column.push(value);
        }
        self.buffered_rows += 1;
        self.rows += 1;
        if self.buffered_rows >= MERGE_SMALL {
            self.seal(schema)?;
        }
        Ok(())
    }

    /// Moves the rows appended one at a time into `batches`.
    fn seal(&mut self, schema: &SchemaRef) -> Result<()> {
        if self.buffered_rows == 0 {
            return Ok(());
        }
        let batch = buffered_batch(schema, &mut self.buffered, self.buffered_rows)?;
        self.buffered_rows = 0;
        self.small_tail = 0;
        self.batches.push(batch);
        Ok(())
    }

    pub(super) fn batch(&self, schema: &SchemaRef) -> Result<RecordBatch> {
        if self.buffered_rows > 0 {
            let mut buffered = self.buffered.clone();
            let tail = buffered_batch(schema, &mut buffered, self.buffered_rows)?;
            let mut all = self.batches.clone();
            all.push(tail);
            return Ok(concat_batches(schema, &all)?);
        }
        if let [only] = self.batches.as_slice() {
            return Ok(only.clone());
        }
        Ok(concat_batches(schema, &self.batches)?)
    }

    /// The rows at positions `rows` (each below [`Pending::rows`]), in that order.
    pub(super) fn take(&self, schema: &SchemaRef, rows: &[u32]) -> Result<RecordBatch> {
        let mut parts = Vec::with_capacity(rows.len());
        for &row in rows {
            let mut at = row as usize;
            let part = self.batches.iter().find_map(|b| {
                if at < b.num_rows() {
                    Some(b.slice(at, 1))
                } else {
                    at -= b.num_rows();
                    None
                }
            });
            let part = match part {
                Some(p) => p,
                None if at < self.buffered_rows => {
                    let mut one: Vec<Vec<ScalarValue>> =
                        self.buffered.iter().map(|c| vec![c[at].clone()]).collect();
                    buffered_batch(schema, &mut one, 1)?
                }
                None => {
                    return Err(Error::Storage(format!(
                        "pending row {row} is past the buffered rows"
                    )))
                }
            };
            parts.push(part);
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        Ok(concat_batches(schema, &parts)?)
    }
}

/// The rows held as values per column, as a batch (emptying the columns).
fn buffered_batch(
    schema: &SchemaRef,
    columns: &mut [Vec<ScalarValue>],
    rows: usize,
) -> Result<RecordBatch> {
    let arrays = columns
        .iter_mut()
        .map(|c| Ok(ScalarValue::iter_to_array(std::mem::take(c))?))
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// A segment a scan will read: its id and deletions, or (for rows a write transaction has
/// not stored yet) the rows themselves.
#[derive(Debug, Clone)]
pub struct SegmentRef {
    /// Segment id.
    pub id: u64,
    /// Rows stored in the segment, deleted ones included (from the IPC message headers,
    /// without decoding); `None` if the stored bytes could not be read that way.
    pub rows: Option<usize>,
    /// Deleted rows, if any.
    pub deleted: Option<Bitmap>,
    /// Rows buffered by the open write transaction (in the table's schema).
    pub(super) pending: Option<RecordBatch>,
    /// Column statistics recorded when the segment was written, if any.
    pub(crate) stats: Option<Arc<crate::table::stats::UnitStats>>,
}

impl SegmentRef {
    /// Rows a scan of this segment returns (stored minus deleted), if known.
    pub fn live_rows(&self) -> Option<usize> {
        let deleted = self.deleted.as_ref().map_or(0, Bitmap::count);
        self.rows.map(|r| r.saturating_sub(deleted))
    }
}

/// A copy of `array` in buffers of its own (not slices of a larger buffer).
pub(super) fn own_buffers(array: &ArrayRef) -> ArrayRef {
    let data = array.to_data();
    let mut copy = arrow::array::MutableArrayData::new(vec![&data], false, data.len());
    match copy.try_extend(0, 0, data.len()) {
        Ok(()) => arrow::array::make_array(copy.freeze()),
        Err(_) => array.clone(),
    }
}

/// Copies the live bytes of string and binary *view* columns into buffers of their own.
///
/// A view array sliced out of a larger batch (a CSV chunk, a query result) still references
/// that batch's whole data buffers, and Arrow IPC writes referenced buffers whole: without
/// this, every segment would carry the data of its neighbours (a 1 GB CSV became 29 GB).
pub(super) fn compact_views(batch: RecordBatch) -> Result<RecordBatch> {
    use arrow::array::AsArray;
    use arrow::datatypes::DataType;
    if !batch
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(c.as_binary_view().gc()) as ArrayRef,
            _ => c.clone(),
        })
        .collect();
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// A batch as stored: an Arrow IPC stream in its checksummed envelope ([`checksum`]).
pub(super) fn encode_segment(batch: &RecordBatch) -> Result<Vec<u8>> {
    Ok(checksum::seal(Kind::Segment, &encode_ipc(batch)?))
}

fn encode_ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    {
        let mut w = StreamWriter::try_new(&mut out, batch.schema_ref())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

/// The Arrow IPC stream of a stored segment, once its checksum is verified.
pub(super) fn open_segment<'a>(
    table: &TableDef,
    segment: u64,
    stored: &'a [u8],
) -> Result<&'a [u8]> {
    checksum::unseal(Kind::Segment, stored, || {
        checksum::segment_name(&table.name, segment)
    })
}

/// Decodes a segment's Arrow IPC stream (from [`open_segment`]).
pub(super) fn decode_segment(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| Error::Corrupt(format!("undecodable segment: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Corrupt(format!("undecodable segment: {e}")))?;
    Ok(concat_batches(&schema, &batches)?)
}

/// A deletion bitmap: bit `i` set = row `i` of the segment is deleted.
#[derive(Debug, Clone, Default)]
pub struct Bitmap(Vec<u64>);

impl Bitmap {
    /// Reads a stored bitmap of `segment`, verifying its checksum.
    pub(super) fn read(table: &TableDef, segment: u64, stored: &[u8]) -> Result<Self> {
        let bytes = checksum::unseal(Kind::Deletes, stored, || {
            format!(
                "deletion bitmap of {}",
                checksum::segment_name(&table.name, segment)
            )
        })?;
        Ok(Self::decode(bytes))
    }
    /// The bitmap as stored (in its checksummed envelope).
    pub(super) fn store(&self) -> Vec<u8> {
        checksum::seal(Kind::Deletes, &self.encode())
    }
    pub(super) fn decode(bytes: &[u8]) -> Self {
        Bitmap(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        )
    }
    pub(super) fn encode(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
    pub(super) fn set(&mut self, i: usize) {
        let w = i / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }
    /// Whether row `i` is deleted.
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// Number of deleted rows.
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// A filter mask keeping the rows that are not deleted.
    pub fn keep_mask(&self, rows: usize) -> BooleanArray {
        (0..rows).map(|i| Some(!self.get(i))).collect()
    }
}

/// One segment of a table as a scan sees it: all stored rows, and which are deleted.
#[derive(Debug, Clone)]
pub struct SegmentSnapshot {
    /// Segment id.
    pub id: u64,
    /// Rows, already in the table's current schema.
    pub batch: RecordBatch,
    /// Deleted rows, if any.
    pub deleted: Option<Bitmap>,
}

impl SegmentSnapshot {
    /// The live rows.
    pub fn live(&self) -> Result<RecordBatch> {
        match &self.deleted {
            None => Ok(self.batch.clone()),
            Some(bm) => Ok(filter_record_batch(
                &self.batch,
                &bm.keep_mask(self.batch.num_rows()),
            )?),
        }
    }
}

/// Re-labels a stored batch with the table's current schema: renamed columns take their new
/// names, and columns added after the segment was written read as their backfill value.
pub(super) fn conform(table: &TableDef, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = table.schema_ref();
    let rows = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        if i < batch.num_columns() {
            columns.push(batch.column(i).clone());
        } else {
            columns.push(backfill(table, i, field.data_type(), rows)?);
        }
    }
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Column `column` of `table` for `rows` rows written before it existed: its backfill value
/// (the DEFAULT it was added with), or NULL.
pub(super) fn backfill(
    table: &TableDef,
    column: usize,
    data_type: &arrow::datatypes::DataType,
    rows: usize,
) -> Result<ArrayRef> {
    let value = match table.backfill.get(&column) {
        Some(text) => ScalarValue::try_from_string(text.clone(), data_type)?,
        None => ScalarValue::try_from(data_type)?,
    };
    Ok(value.to_array_of_size(rows)?)
}

/// Rows in an Arrow IPC stream (the sum over its record batch messages), read from the
/// message headers without decoding any data; `None` if the bytes are not a readable stream.
pub(super) fn ipc_stream_rows(bytes: &[u8]) -> Option<usize> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let (mut at, mut rows) = (0usize, 0usize);
    while at < bytes.len() {
        // Each message: [0xFFFFFFFF] <metadata length> <flatbuffer Message> <body>.
        let mut len = word(at)?;
        at += 4;
        if len == u32::MAX {
            len = word(at)?;
            at += 4;
        }
        if len == 0 {
            break; // end-of-stream marker
        }
        let end = at.checked_add(len as usize)?;
        let message = arrow::ipc::root_as_message(bytes.get(at..end)?).ok()?;
        if let Some(batch) = message.header_as_record_batch() {
            rows = rows.checked_add(usize::try_from(batch.length()).ok()?)?;
        }
        at = end.checked_add(usize::try_from(message.bodyLength()).ok()?)?;
        if at > bytes.len() {
            return None; // truncated body
        }
    }
    Some(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    pub(super) fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("v{i}")),
                )),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn segment_rows_come_from_ipc_headers() {
        let one = encode_ipc(&batch(1000)).expect("encode");
        assert_eq!(ipc_stream_rows(&one), Some(1000));
        assert_eq!(
            ipc_stream_rows(&encode_ipc(&batch(0)).expect("encode")),
            Some(0)
        );

        let mut two = Vec::new();
        {
            let b = batch(300);
            let mut w = StreamWriter::try_new(&mut two, b.schema_ref()).expect("writer");
            w.write(&b).expect("write");
            w.write(&batch(700)).expect("write");
            w.finish().expect("finish");
        }
        assert_eq!(ipc_stream_rows(&two), Some(1000));

        // Not readable that way: no count rather than a wrong one (or a panic).
        assert_eq!(ipc_stream_rows(&one[..one.len() - 40]), None);
        assert_eq!(
            ipc_stream_rows(&[0xff, 0xff, 0xff, 0xff, 9, 0, 0, 0, 1, 2]),
            None
        );
        assert_eq!(ipc_stream_rows(b"definitely not arrow"), None);
    }
}
