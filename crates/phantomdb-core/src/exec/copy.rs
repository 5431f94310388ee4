//! `COPY table [(columns)] FROM 'file' [WITH (...)]`: bulk load from CSV, Parquet or JSON.
//! A file named in SQL is the server's and only superusers may read it; the network server's
//! `COPY ... FROM STDIN` loads its spool file through [`crate::Connection::copy_from_client_file`].

use std::collections::BTreeMap;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions};

use super::{insert_rows, table_def, WriteScope};
use crate::catalog::TableDef;
use crate::error::{Error, Result, SqlState};
use crate::planner::Planner;
use crate::plugins::Registry;
use crate::privileges::Privilege;
use crate::result::ResultSet;
use crate::sql::CopyFrom;
use crate::table::table_batch;
use crate::types::{logical_type, missing_type, udf, TypeInfo};

/// Whose file a `COPY FROM` reads, which decides who may run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyFile {
    /// A path named in SQL (`COPY t FROM 'file'`): a file of the server, so superusers only.
    Server,
    /// A file the embedding program wrote with data its client sent (the network server's
    /// `COPY t FROM STDIN`): anyone with INSERT on the table.
    Client,
}

/// Reads the file and inserts its rows; columns the file lacks take their DEFAULT or NULL.
pub(crate) async fn copy_from(
    planner: &Planner,
    scope: &WriteScope,
    copy: CopyFrom,
    file: CopyFile,
) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    let actor = planner.actor(&catalog);
    // First, as in PostgreSQL: a role without the right learns nothing about the table.
    if file == CopyFile::Server {
        actor.check_server_files()?;
    }
    let def = table_def(&scope.w, &copy.table)?;
    actor.check_table(&def, Privilege::Insert)?;
    if !std::path::Path::new(&copy.path).exists() {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("COPY FROM: file {} does not exist", copy.path),
        )));
    }
    let target_cols = target_columns(&def, &copy)?;
    let types = ColumnTypes::of(&def, &planner.registry())?;
    // A custom-typed column is read as its text and parsed by its type.
    let file_schema = Schema::new(
        target_cols
            .iter()
            .map(|&i| {
                let field = def.schema.field(i);
                match types.get(i) {
                    Some(_) => Field::new(field.name(), DataType::Utf8, true),
                    None => field.clone().with_nullable(true),
                }
            })
            .collect::<Vec<_>>(),
    );
    let batches = read_file(planner.context(), &copy, &file_schema)
        .await?
        .collect()
        .await?;
    let batches = batches
        .into_iter()
        .map(|b| table_rows(planner, &def, &types, &target_cols, b))
        .collect::<Result<Vec<_>>>()?;
    ResultSet::count(insert_rows(planner, scope, &def, batches)?)
}

/// The table columns the file holds, in file order: the named ones, or all of them.
fn target_columns(def: &TableDef, copy: &CopyFrom) -> Result<Vec<usize>> {
    if copy.columns.is_empty() {
        return Ok((0..def.schema.fields().len()).collect());
    }
    copy.columns
        .iter()
        .map(|c| {
            def.schema.index_of(c).map_err(|_| {
                Error::Catalog(
                    SqlState::UndefinedColumn,
                    format!("column \"{c}\" of table \"{}\" does not exist", def.name),
                )
            })
        })
        .collect()
}

/// The file as a DataFrame, in the format named by `FORMAT` or by the file's extension.
async fn read_file(
    ctx: &SessionContext,
    copy: &CopyFrom,
    file_schema: &Schema,
) -> Result<DataFrame> {
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
    Ok(match format.as_str() {
        "csv" => {
            let mut opts = CsvReadOptions::new()
                .has_header(copy.header.unwrap_or(true))
                .schema(file_schema)
                .file_extension("");
            if let Some(d) = copy.delimiter {
                opts = opts.delimiter(d as u8);
            }
            ctx.read_csv(&copy.path, opts).await?
        }
        "parquet" => {
            ctx.read_parquet(&copy.path, ParquetReadOptions::default().file_extension(""))
                .await?
        }
        "json" => {
            let opts = JsonReadOptions::default()
                .schema(file_schema)
                .file_extension("");
            ctx.read_json(&copy.path, opts).await?
        }
        other => {
            return Err(Error::Unsupported(format!(
                "COPY FORMAT {other} (use csv, parquet or json)"
            )))
        }
    })
}

/// A batch of the file as rows of the table: its columns in table order, the others with
/// their DEFAULT or NULL.
fn table_rows(
    planner: &Planner,
    def: &TableDef,
    types: &ColumnTypes,
    target_cols: &[usize],
    b: RecordBatch,
) -> Result<RecordBatch> {
    if b.num_columns() != target_cols.len() {
        return Err(Error::Data(
            SqlState::DataException,
            format!(
                "COPY FROM: file has {} columns, table \"{}\" expects {}",
                b.num_columns(),
                def.name,
                target_cols.len()
            ),
        ));
    }
    let mut cols: Vec<Option<ArrayRef>> = vec![None; def.schema.fields().len()];
    for (j, &i) in target_cols.iter().enumerate() {
        cols[i] = Some(types.parse(i, b.column(j))?);
    }
    let cols = cols
        .into_iter()
        .enumerate()
        .map(|(i, c)| match c {
            Some(c) => Ok(c),
            None => planner.default_array(def, i, b.num_rows()),
        })
        .collect::<Result<Vec<_>>>()?;
    table_batch(def, cols)
}

/// The custom types of a table's columns, by column index.
struct ColumnTypes(BTreeMap<usize, TypeInfo>);

impl ColumnTypes {
    /// The loaded type of every typed column (a type whose plugin is not loaded is an error).
    fn of(def: &TableDef, registry: &Registry) -> Result<Self> {
        let mut types = BTreeMap::new();
        for (i, field) in def.schema.fields().iter().enumerate() {
            let Some((name, plugin)) = logical_type(field) else {
                continue;
            };
            let info = registry
                .data_types()
                .find(|t| t.name == name && (plugin.is_empty() || t.plugin == plugin))
                .ok_or_else(|| {
                    missing_type(&format!("{}.{}", def.name, field.name()), name, plugin)
                })?;
            types.insert(i, info.clone());
        }
        Ok(Self(types))
    }

    fn get(&self, column: usize) -> Option<&TypeInfo> {
        self.0.get(&column)
    }

    /// A column of the file as the table column stores it: text parsed by the column's type,
    /// storage values (a Parquet file of storage values) kept; other columns unchanged.
    fn parse(&self, column: usize, values: &ArrayRef) -> Result<ArrayRef> {
        match self.get(column) {
            Some(t) if values.data_type() != &t.storage => udf::parse_values(t, values),
            _ => Ok(values.clone()),
        }
    }
}
