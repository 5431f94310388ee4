//! `RETURNING` of INSERT, UPDATE and DELETE: the select list is evaluated over the rows the
//! statement wrote (or deleted), exposed under the table's name and alias.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::SelectItem;

use crate::error::Result;
use crate::result::ResultSet;

/// The rows of `RETURNING items` over `rows` (the table's schema), which the select list sees
/// as table `table` (or `alias`).
pub(crate) async fn returning(
    table: &str,
    alias: Option<&str>,
    items: &[SelectItem],
    rows: RecordBatch,
) -> Result<ResultSet> {
    let ctx = SessionContext::new();
    let schema = rows.schema();
    let mem = MemTable::try_new(schema, vec![vec![rows]])?;
    let name = quote(table);
    ctx.register_table(TableReference::bare(table), Arc::new(mem))?;
    let list: Vec<String> = items.iter().map(ToString::to_string).collect();
    let from = match alias {
        Some(a) => format!("{name} AS {}", quote(a)),
        None => name,
    };
    let df = ctx
        .sql(&format!("SELECT {} FROM {from}", list.join(", ")))
        .await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok(ResultSet::rows(schema, batches))
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
