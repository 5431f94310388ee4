//! Streaming scans: one batch per row group (or per 64K-row chunk), read lazily file by file.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use phantomdb_plugin_sdk::arrow_array::{
    new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions,
    RecordBatchReader, UInt64Array,
};
use phantomdb_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use phantomdb_plugin_sdk::{Filter, ScanRequest};

use crate::cache::CachedFile;
use crate::config::Located;
use crate::manifest::DataFile;
use crate::prune::{may_match, StatsTable};
use crate::runtime::Pending;
use crate::state::Inner;

/// Rows per output batch at most.
pub(crate) const BATCH_ROWS: usize = 64 * 1024;

/// Row indexes deleted by the running transaction, per file.
pub(crate) type DeletedRows = Arc<HashSet<u32>>;

/// Something to read.
pub(crate) enum Source {
    /// A committed data file.
    File {
        file: DataFile,
        deleted: Option<DeletedRows>,
    },
    /// Rows inserted by the running transaction (id from the reserved range).
    Memory {
        id: u64,
        batch: RecordBatch,
        deleted: Option<DeletedRows>,
    },
}

/// Rows read from a source: the needed columns, the file (or pending batch) id, the row index
/// of the first row in it, and the rows deleted by the transaction.
struct Chunk {
    work: RecordBatch,
    id: u64,
    first: u64,
    deleted: Option<DeletedRows>,
}

enum Cursor {
    File {
        id: u64,
        file: Arc<CachedFile>,
        deleted: Option<DeletedRows>,
        /// Row groups still to read: (index, first row, rows).
        row_groups: VecDeque<(usize, u64, u64)>,
        /// Reader of the current row group and the file row index of its next row.
        reader: Option<(ParquetRecordBatchReader, u64)>,
        /// Rows left in a current row group read without columns (row counts only).
        countdown: Option<(u64, u64)>,
        /// (index in the work schema, file root column index) of the needed columns present.
        read_cols: Vec<(usize, usize)>,
    },
    Memory {
        id: u64,
        batch: RecordBatch,
        deleted: Option<DeletedRows>,
        offset: usize,
    },
}

/// The stream returned by a scan.
pub(crate) struct ScanStream {
    inner: Arc<Inner>,
    loc: Located,
    output_schema: SchemaRef,
    /// Needed table columns (projection plus filter columns), all nullable.
    work_schema: SchemaRef,
    /// For each output column (before row ids): its index in the work schema.
    output_cols: Vec<usize>,
    filters: Vec<Filter>,
    stats_columns: Vec<(String, DataType)>,
    with_row_ids: bool,
    limit: Option<usize>,
    sources: VecDeque<Source>,
    current: Option<Cursor>,
    prefetch: Option<(String, Pending<Arc<CachedFile>>)>,
    done: bool,
}

impl ScanStream {
    pub(crate) fn new(
        inner: Arc<Inner>,
        loc: Located,
        table_schema: &SchemaRef,
        request: &ScanRequest,
        sources: Vec<Source>,
    ) -> Result<Self, String> {
        let output_schema = request.output_schema(table_schema)?;
        let projection: Vec<usize> = match &request.projection {
            Some(p) => p.clone(),
            None => (0..table_schema.fields().len()).collect(),
        };
        let mut needed: Vec<usize> = projection.clone();
        for f in &request.filters {
            for c in f.columns() {
                let i = table_schema
                    .index_of(c)
                    .map_err(|_| format!("s3_storage: filter column '{c}' is not in the table"))?;
                needed.push(i);
            }
        }
        needed.sort_unstable();
        needed.dedup();
        let work_schema = Arc::new(Schema::new(
            needed
                .iter()
                .map(|&i| {
                    let f = table_schema.field(i);
                    Field::new(f.name(), f.data_type().clone(), true)
                })
                .collect::<Vec<_>>(),
        ));
        let output_cols = projection
            .iter()
            .map(|i| needed.iter().position(|n| n == i).unwrap_or_default())
            .collect();
        let stats_columns = crate::prune::filter_columns(&request.filters, table_schema);
        Ok(Self {
            inner,
            loc,
            output_schema,
            work_schema,
            output_cols,
            filters: request.filters.clone(),
            stats_columns,
            with_row_ids: request.with_row_ids,
            limit: request.limit,
            sources: sources.into(),
            current: None,
            prefetch: None,
            done: false,
        })
    }

    /// Starts fetching the next data file in the background (one file ahead).
    fn start_prefetch(&mut self) {
        if self.prefetch.is_some() {
            return;
        }
        let next = self.sources.iter().find_map(|s| match s {
            Source::File { file, .. } => Some(file.clone()),
            Source::Memory { .. } => None,
        });
        if let Some(file) = next {
            let key = self.inner.file_key(&self.loc, &file.path);
            if let Ok(p) = self.inner.spawn_fetch(&self.loc, &file.path) {
                self.prefetch = Some((key, p));
            }
        }
    }

    fn open(&mut self, source: Source) -> Result<Cursor, String> {
        match source {
            Source::Memory { id, batch, deleted } => Ok(Cursor::Memory {
                id,
                batch,
                deleted,
                offset: 0,
            }),
            Source::File { file, deleted } => {
                let key = self.inner.file_key(&self.loc, &file.path);
                let cached = match self.prefetch.take() {
                    Some((k, p)) if k == key => p.wait()?,
                    other => {
                        self.prefetch = other;
                        self.inner.spawn_fetch(&self.loc, &file.path)?.wait()?
                    }
                };
                self.start_prefetch();
                let metrics = &self.inner.metrics;
                metrics.add(&metrics.files_scanned, 1);
                let meta = cached.meta.metadata().clone();
                let file_schema = cached.meta.schema().clone();
                let keep = if self.filters.is_empty() {
                    vec![true; meta.num_row_groups()]
                } else {
                    let stats =
                        StatsTable::from_row_groups(&meta, &file_schema, &self.stats_columns);
                    may_match(&self.filters, &stats)
                };
                let mut row_groups = VecDeque::new();
                let mut first = 0u64;
                for (i, rg) in meta.row_groups().iter().enumerate() {
                    let rows = rg.num_rows().max(0) as u64;
                    if keep.get(i).copied().unwrap_or(true) {
                        row_groups.push_back((i, first, rows));
                    } else {
                        metrics.add(&metrics.row_groups_pruned, 1);
                    }
                    first += rows;
                }
                let read_cols = self
                    .work_schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter_map(|(w, f)| file_schema.index_of(f.name()).ok().map(|r| (w, r)))
                    .collect();
                Ok(Cursor::File {
                    id: file.id,
                    file: cached,
                    deleted,
                    row_groups,
                    reader: None,
                    countdown: None,
                    read_cols,
                })
            }
        }
    }

    /// The next raw chunk of the current cursor.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, String> {
        let work_schema = self.work_schema.clone();
        let metrics = self.inner.metrics.clone();
        let Some(cursor) = self.current.as_mut() else {
            return Ok(None);
        };
        match cursor {
            Cursor::Memory {
                id,
                batch,
                deleted,
                offset,
            } => {
                if *offset >= batch.num_rows() {
                    return Ok(None);
                }
                let len = BATCH_ROWS.min(batch.num_rows() - *offset);
                let slice = batch.slice(*offset, len);
                let first = *offset as u64;
                *offset += len;
                let cols = work_schema
                    .fields()
                    .iter()
                    .map(|f| {
                        slice
                            .column_by_name(f.name())
                            .cloned()
                            .unwrap_or_else(|| new_null_array(f.data_type(), len))
                    })
                    .collect();
                let work = RecordBatch::try_new_with_options(
                    work_schema,
                    cols,
                    &RecordBatchOptions::new().with_row_count(Some(len)),
                )
                .map_err(|e| e.to_string())?;
                Ok(Some(Chunk {
                    work,
                    id: *id,
                    first,
                    deleted: deleted.clone(),
                }))
            }
            Cursor::File {
                id,
                file,
                deleted,
                row_groups,
                reader,
                countdown,
                read_cols,
            } => loop {
                if let Some((next_row, left)) = countdown.as_mut() {
                    if *left > 0 {
                        let len = (BATCH_ROWS as u64).min(*left);
                        let first = *next_row;
                        *next_row += len;
                        *left -= len;
                        let len = len as usize;
                        let cols = work_schema
                            .fields()
                            .iter()
                            .map(|f| new_null_array(f.data_type(), len))
                            .collect();
                        let work = RecordBatch::try_new_with_options(
                            work_schema,
                            cols,
                            &RecordBatchOptions::new().with_row_count(Some(len)),
                        )
                        .map_err(|e| e.to_string())?;
                        return Ok(Some(Chunk {
                            work,
                            id: *id,
                            first,
                            deleted: deleted.clone(),
                        }));
                    }
                    *countdown = None;
                }
                if let Some((r, next_row)) = reader.as_mut() {
                    match r.next() {
                        Some(Ok(raw)) => {
                            let n = raw.num_rows();
                            let first = *next_row;
                            *next_row += n as u64;
                            let work = to_work(&raw, &work_schema)?;
                            return Ok(Some(Chunk {
                                work,
                                id: *id,
                                first,
                                deleted: deleted.clone(),
                            }));
                        }
                        Some(Err(e)) => {
                            return Err(format!("s3_storage: cannot decode Parquet data: {e}"))
                        }
                        None => *reader = None,
                    }
                }
                let Some((rg, first, rows)) = row_groups.pop_front() else {
                    return Ok(None);
                };
                metrics.add(&metrics.row_groups_read, 1);
                if read_cols.is_empty() {
                    *countdown = Some((first, rows));
                    continue;
                }
                let mask = ProjectionMask::roots(
                    file.meta.parquet_schema(),
                    read_cols.iter().map(|(_, r)| *r),
                );
                let r = ParquetRecordBatchReaderBuilder::new_with_metadata(
                    file.bytes.clone(),
                    file.meta.clone(),
                )
                .with_row_groups(vec![rg])
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| format!("s3_storage: cannot read Parquet row group: {e}"))?;
                *reader = Some((r, first));
            },
        }
    }

    /// Filters, masks deleted rows, adds row ids, applies the limit and projects.
    fn finish_chunk(&mut self, chunk: Chunk) -> Result<Option<RecordBatch>, String> {
        let Chunk {
            work,
            id,
            first,
            deleted,
        } = chunk;
        let n = work.num_rows();
        let mut mask: Option<BooleanArray> = None;
        for f in &self.filters {
            let m = f.evaluate(&work)?;
            mask = Some(match mask {
                None => m,
                Some(a) => arrow_arith::boolean::and_kleene(&a, &m).map_err(|e| e.to_string())?,
            });
        }
        if let Some(del) = deleted.filter(|d| !d.is_empty()) {
            let live: BooleanArray = (0..n as u64)
                .map(|i| Some(!del.contains(&((first + i) as u32))))
                .collect();
            mask = Some(match mask {
                None => live,
                Some(a) => {
                    arrow_arith::boolean::and_kleene(&a, &live).map_err(|e| e.to_string())?
                }
            });
        }
        let mut row_ids: Option<ArrayRef> = self.with_row_ids.then(|| {
            Arc::new(UInt64Array::from_iter_values(
                (0..n as u64).map(|i| (id << 32) | (first + i)),
            )) as ArrayRef
        });
        let mut work = work;
        if let Some(m) = mask {
            work =
                arrow_select::filter::filter_record_batch(&work, &m).map_err(|e| e.to_string())?;
            if let Some(r) = row_ids.as_mut() {
                *r = arrow_select::filter::filter(r, &m).map_err(|e| e.to_string())?;
            }
        }
        let mut rows = work.num_rows();
        if let Some(limit) = self.limit.as_mut() {
            if rows > *limit {
                work = work.slice(0, *limit);
                row_ids = row_ids.map(|r| r.slice(0, *limit));
                rows = *limit;
            }
            *limit -= rows;
        }
        if rows == 0 {
            return Ok(None);
        }
        let mut cols: Vec<ArrayRef> = self
            .output_cols
            .iter()
            .map(|&w| work.column(w).clone())
            .collect();
        if let Some(r) = row_ids {
            cols.push(r);
        }
        RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map(Some)
        .map_err(|e| format!("s3_storage: cannot build the scan result: {e}"))
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, String> {
        loop {
            if self.done || self.limit == Some(0) {
                self.done = true;
                return Ok(None);
            }
            if self.current.is_none() {
                let Some(source) = self.sources.pop_front() else {
                    self.done = true;
                    return Ok(None);
                };
                self.current = Some(self.open(source)?);
            }
            match self.next_chunk()? {
                None => self.current = None,
                Some(chunk) => {
                    if let Some(out) = self.finish_chunk(chunk)? {
                        return Ok(Some(out));
                    }
                }
            }
        }
    }
}

/// A decoded Parquet batch as the needed table columns (cast to the table types; columns the
/// file lacks are null).
fn to_work(raw: &RecordBatch, work_schema: &SchemaRef) -> Result<RecordBatch, String> {
    let n = raw.num_rows();
    let cols = work_schema
        .fields()
        .iter()
        .map(|f| match raw.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow_cast::cast(c, f.data_type()).map_err(|e| {
                format!(
                    "s3_storage: column {} is stored as {}, cannot read it as {}: {e}",
                    f.name(),
                    c.data_type(),
                    f.data_type()
                )
            }),
            None => Ok(new_null_array(f.data_type(), n)),
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        work_schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| e.to_string())
}

impl Iterator for ScanStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(b) => b.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(ArrowError::ExternalError(e.into())))
            }
        }
    }
}

impl RecordBatchReader for ScanStream {
    fn schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }
}

/// Whether a source could hold rows passing `filters`, judged by the manifest's file bounds.
pub(crate) fn prune_files(
    files: Vec<(DataFile, Option<DeletedRows>)>,
    filters: &[Filter],
    table_schema: &Schema,
    inner: &Inner,
) -> Vec<Source> {
    let keep = if filters.is_empty() {
        vec![true; files.len()]
    } else {
        let cols = crate::prune::filter_columns(filters, table_schema);
        let refs: Vec<&DataFile> = files.iter().map(|(f, _)| f).collect();
        may_match(filters, &StatsTable::from_files(&refs, &cols))
    };
    let mut out = Vec::with_capacity(files.len());
    for ((file, deleted), k) in files.into_iter().zip(keep) {
        if k {
            out.push(Source::File { file, deleted });
        } else {
            inner.metrics.add(&inner.metrics.files_pruned, 1);
        }
    }
    out
}
