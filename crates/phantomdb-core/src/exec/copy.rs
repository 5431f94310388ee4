//! `COPY table [(columns)] FROM 'file' [WITH (...)]`: bulk load from CSV, Parquet or JSON.

use arrow::array::ArrayRef;
use arrow::datatypes::Schema;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};

use super::insert::table_batch;
use super::{insert_rows, table_def, WriteScope};
use crate::error::{Error, Result, SqlState};
use crate::planner::Planner;
use crate::result::ResultSet;
use crate::sql::CopyFrom;

/// Reads the file and inserts its rows; columns the file lacks take their DEFAULT or NULL.
pub(crate) async fn copy_from(
    planner: &Planner,
    scope: &WriteScope,
    copy: CopyFrom,
) -> Result<ResultSet> {
    let ctx = planner.context();
        let def = table_def(&scope.w, &copy.table)?;
        let format = copy.format.clone().unwrap_or_else(|| {
            let lower = copy.path.to_lowercase();
            if lower.ends_with(".parquet") {
                "parquet".into()
            } else if lower.ends_with(".json") || lower.ends_with(".ndjson") {
                "json".into()
            } else {
                "csv".into()
            }
        });
        if !std::path::Path::new(&copy.path).exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("COPY FROM: file {} does not exist", copy.path),
            )));
        }
        // The file's columns: the named ones, or all of the table's.
        let target_cols: Vec<usize> = if copy.columns.is_empty() {
            (0..def.schema.fields().len()).collect()
        } else {
            copy.columns
                .iter()
                .map(|c| {
                    def.schema.index_of(c).map_err(|_| {
                        Error::Catalog(SqlState::UndefinedColumn, format!(
                            "column \"{c}\" of table \"{}\" does not exist",
                            def.name
                        ))
                    })
                })
                .collect::<Result<_>>()?
        };
        let file_schema = Schema::new(
            target_cols
                .iter()
                .map(|&i| def.schema.field(i).clone().with_nullable(true))
                .collect::<Vec<_>>(),
        );
        let df = match format.as_str() {
            "csv" => {
                let mut opts = CsvReadOptions::new()
                    .has_header(copy.header.unwrap_or(true))
                    .schema(&file_schema)
                    .file_extension("");
                if let Some(d) = copy.delimiter {
                    opts = opts.delimiter(d as u8);
                }
                ctx.read_csv(&copy.path, opts).await?
            }
            "parquet" => {
                ctx
                    .read_parquet(&copy.path, ParquetReadOptions::default().file_extension(""))
                    .await?
            }
            "json" => {
                ctx
                    .read_json(
                        &copy.path,
                        JsonReadOptions::default()
                            .schema(&file_schema)
                            .file_extension(""),
                    )
                    .await?
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "COPY FORMAT {other} (use csv, parquet or json)"
                )))
            }
        };
        let batches = df.collect().await?;
        // Place the file's columns in table order; absent columns take their DEFAULT or NULL.
        let mut full = Vec::with_capacity(batches.len());
        for b in batches {
            if b.num_columns() != target_cols.len() {
                return Err(Error::Data(SqlState::DataException, format!(
                    "COPY FROM: file has {} columns, table \"{}\" expects {}",
                    b.num_columns(),
                    def.name,
                    target_cols.len()
                )));
            }
            let mut cols: Vec<Option<ArrayRef>> = vec![None; def.schema.fields().len()];
            for (j, &i) in target_cols.iter().enumerate() {
                cols[i] = Some(b.column(j).clone());
            }
            let cols = cols
                .into_iter()
                .enumerate()
                .map(|(i, c)| match c {
                    Some(c) => Ok(c),
                    None => planner.default_array(&def, i, b.num_rows()),
                })
                .collect::<Result<Vec<_>>>()?;
            full.push(cols);
        }
        let batches = full
            .into_iter()
            .map(|cols| table_batch(&def, cols))
            .collect::<Result<Vec<_>>>()?;
    ResultSet::count(insert_rows(planner, scope, &def, batches)?)
}
