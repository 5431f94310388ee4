//! `INSERT` with what DataFusion does not plan: `ON CONFLICT ... DO NOTHING | DO UPDATE`
//! (PostgreSQL), `INSERT OR REPLACE` / `REPLACE INTO` / `INSERT OR IGNORE` (SQLite) and
//! `RETURNING`. DataFusion plans the plain INSERT (so defaults, casts and the INSERT
//! privilege are as for any INSERT); the rows it yields are matched against the table's
//! unique keys here and written through the table's engine.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, Expr as SqlExpr, Ident, Insert, OnConflictAction,
    OnInsert, SqliteOnConflict, Statement as SqlStatement, TableObject, VisitMut, VisitorMut,
};

use super::returning::{quote, returning};
use super::{table_def, WriteScope};
use crate::catalog::TableDef;
use crate::constraints::unique::{stored_holders, unique_keys, UniqueKey};
use crate::constraints::{prepare_rows, validate_rows};
use crate::engines::TableAccess;
use crate::error::{Error, Result, SqlState};
use crate::planner::{object_name, Planner};
use crate::plugins::Registry;
use crate::privileges::Privilege;
use crate::result::ResultSet;
use crate::sql::normalize_ident;
use crate::table::{table_batch, table_rows, RowId, TableRole};

/// Whether an INSERT needs this executor rather than DataFusion's.
pub(crate) fn is_extended_insert(insert: &Insert) -> bool {
    insert.on.is_some()
        || insert.returning.is_some()
        || insert.or.is_some()
        || insert.ignore
        || insert.replace_into
        || insert.table_alias.is_some()
}

/// Whether an INSERT may change rows already in the table (`ON CONFLICT DO UPDATE`, `ON
/// DUPLICATE KEY UPDATE`, `INSERT OR REPLACE`, `REPLACE INTO`): those rows are found by key,
/// not by a plan query processors see.
pub(crate) fn replaces_rows(insert: &Insert) -> bool {
    insert.replace_into
        || matches!(insert.or, Some(SqliteOnConflict::Replace))
        || match &insert.on {
            Some(OnInsert::OnConflict(c)) => matches!(c.action, OnConflictAction::DoUpdate(_)),
            Some(OnInsert::DuplicateKeyUpdate(_)) => true,
            _ => false,
        }
}

/// What to do with a row whose key is taken.
enum Conflict {
    /// Fail (23505).
    Fail,
    /// Skip the row (`DO NOTHING`, `INSERT OR IGNORE`); `None`: any unique key.
    Nothing(Option<UniqueKey>),
    /// Update the stored row (`DO UPDATE SET ... WHERE ...`).
    Update {
        key: UniqueKey,
        assignments: Vec<Assignment>,
        selection: Option<Box<SqlExpr>>,
    },
    /// Delete the stored rows holding any key of the row, then insert it (SQLite).
    Replace,
}

/// Runs an INSERT with ON CONFLICT, SQLite's OR clauses or RETURNING.
pub(crate) async fn insert_extended(
    planner: &Planner,
    scope: &WriteScope,
    mut insert: Insert,
) -> Result<ResultSet> {
    let TableObject::TableName(table_name) = &insert.table else {
        return Err(Error::Unsupported("INSERT into a table function".into()));
    };
    let table = object_name(table_name)?;
    let items = insert.returning.take();
    let on = insert.on.take();
    let or = insert.or.take();
    let ignore = std::mem::take(&mut insert.ignore) || matches!(or, Some(SqliteOnConflict::Ignore));
    let replace =
        std::mem::take(&mut insert.replace_into) || matches!(or, Some(SqliteOnConflict::Replace));
    let alias = insert.table_alias.take().map(|a| normalize_ident(&a.alias));
    let def = table_def(&scope.w, &table)?;
    let conflict = match on {
        Some(OnInsert::OnConflict(c)) => {
            let key = match c.conflict_target {
                Some(target) => Some(arbiter(&def, target)?),
                None => None,
            };
            match c.action {
                OnConflictAction::DoNothing => Conflict::Nothing(key),
                OnConflictAction::DoUpdate(u) => {
                    let Some(key) = key else {
                        return Err(Error::Sql(
                            "ON CONFLICT DO UPDATE requires inference specification or constraint name"
                                .into(),
                        ));
                    };
                    let catalog = scope.w.lock().catalog();
                    planner
                        .actor(&catalog)
                        .check_table(&def, Privilege::Update)?;
                    Conflict::Update {
                        key,
                        assignments: u.assignments,
                        selection: u.selection.map(Box::new),
                    }
                }
            }
        }
        Some(OnInsert::DuplicateKeyUpdate(_)) => {
            return Err(Error::Unsupported(
                "ON DUPLICATE KEY UPDATE; use ON CONFLICT (cols) DO UPDATE".into(),
            ))
        }
        Some(_) => return Err(Error::Unsupported("this ON clause of INSERT".into())),
        None if replace => Conflict::Replace,
        None if ignore => Conflict::Nothing(None),
        None => Conflict::Fail,
    };
    let stmt = DfStatement::Statement(Box::new(SqlStatement::Insert(insert)));
    let (plan, guard) = planner
        .plan(
            scope.txns(),
            stmt,
            Some((table.clone(), TableRole::InsertTarget)),
        )
        .await?;
    let LogicalPlan::Dml(dml) = plan else {
        return Err(Error::Sql("internal: INSERT did not plan as DML".into()));
    };
    let batches = DataFrame::new(planner.state(), dml.input.as_ref().clone())
        .collect()
        .await?;
    drop(guard);
    let rows = table_rows(&def, batches)?;
    let access = scope.raw_table(planner, &def)?;
    let rows = prepare_rows(&scope.w, planner.sequences(), &def, rows)?;
    let registry = planner.registry();
    let written = apply(
        access.as_ref(),
        &def,
        rows,
        conflict,
        alias.as_deref(),
        &registry,
    )
    .await?;
    match items {
        Some(items) => returning(&table, alias.as_deref(), &items, written).await,
        None => ResultSet::count(written.num_rows()),
    }
}

/// The unique key an ON CONFLICT target names: its columns (in any order) or constraint.
fn arbiter(def: &TableDef, target: ConflictTarget) -> Result<UniqueKey> {
    let keys = unique_keys(def);
    let found = match target {
        ConflictTarget::Columns(cols) => {
            let mut wanted = Vec::with_capacity(cols.len());
            for c in &cols {
                let name = normalize_ident(c);
                wanted.push(def.schema.index_of(&name).map_err(|_| {
                    Error::Catalog(
                        SqlState::UndefinedColumn,
                        format!("column \"{name}\" does not exist"),
                    )
                })?);
            }
            wanted.sort_unstable();
            keys.into_iter().find(|k| {
                let mut cols = k.columns.clone();
                cols.sort_unstable();
                cols == wanted
            })
        }
        ConflictTarget::OnConstraint(name) => {
            let name = object_name(&name)?;
            keys.into_iter().find(|k| k.name == name)
        }
    };
    found.ok_or_else(|| {
        Error::Catalog(
            SqlState::InvalidColumnReference,
            "there is no unique or exclusion constraint matching the ON CONFLICT specification"
                .into(),
        )
    })
}

/// Writes `rows` as `conflict` says; returns the rows written (inserted or updated), in
/// statement order.
async fn apply(
    access: &dyn TableAccess,
    def: &TableDef,
    rows: RecordBatch,
    conflict: Conflict,
    alias: Option<&str>,
    registry: &Registry,
) -> Result<RecordBatch> {
    match conflict {
        Conflict::Fail => {
            validate_rows(access, &rows, &[])?;
            access.insert(rows.clone())?;
            Ok(rows)
        }
        Conflict::Nothing(key) => {
            let keys = match key {
                Some(k) => vec![k],
                None => unique_keys(def),
            };
            let mut keep = vec![true; rows.num_rows()];
            for key in &keys {
                let encoded = key.encode(def, &rows)?;
                let holders = stored_holders(access, key, &encoded)?;
                let mut seen = HashSet::new();
                for (i, k) in encoded.iter().enumerate() {
                    if !keep[i] || k.has_null() {
                        continue;
                    }
                    if !holders[i].is_empty() || !seen.insert(k.bytes().to_vec()) {
                        keep[i] = false;
                    }
                }
            }
            let rows = filter_record_batch(&rows, &BooleanArray::from(keep))?;
            validate_rows(access, &rows, &[])?;
            access.insert(rows.clone())?;
            Ok(rows)
        }
        Conflict::Replace => {
            // A later row of the statement replaces an earlier one holding one of its keys.
            let keys = unique_keys(def);
            let n = rows.num_rows();
            let mut keep = vec![true; n];
            let mut replaced: HashSet<RowId> = HashSet::new();
            for key in &keys {
                let encoded = key.encode(def, &rows)?;
                let mut last: HashMap<&[u8], usize> = HashMap::new();
                for (i, k) in encoded.iter().enumerate() {
                    if k.has_null() {
                        continue;
                    }
                    if let Some(prev) = last.insert(k.bytes(), i) {
                        keep[prev] = false;
                    }
                }
                for ids in stored_holders(access, key, &encoded)? {
                    replaced.extend(ids);
                }
            }
            let rows = filter_record_batch(&rows, &BooleanArray::from(keep))?;
            let replaced: Vec<RowId> = replaced.into_iter().collect();
            validate_rows(access, &rows, &replaced)?;
            if !replaced.is_empty() {
                access.delete(&replaced)?;
            }
            access.insert(rows.clone())?;
            Ok(rows)
        }
        Conflict::Update {
            key,
            assignments,
            selection,
        } => {
            let encoded = key.encode(def, &rows)?;
            let holders = stored_holders(access, &key, &encoded)?;
            let mut seen = HashSet::new();
            let mut conflicting: Vec<(usize, RowId)> = Vec::new();
            let mut fresh: Vec<u32> = Vec::new();
            for (i, k) in encoded.iter().enumerate() {
                if !k.has_null() && !seen.insert(k.bytes().to_vec()) {
                    return Err(Error::Constraint(
                        SqlState::CardinalityViolation,
                        "ON CONFLICT DO UPDATE command cannot affect row a second time".into(),
                    ));
                }
                match holders[i].first() {
                    Some(&id) => conflicting.push((i, id)),
                    None => fresh.push(i as u32),
                }
            }
            let mut order: Vec<(usize, RecordBatch)> = Vec::new();
            if !conflicting.is_empty() {
                let ids: Vec<RowId> = conflicting.iter().map(|(_, id)| *id).collect();
                let (stored, stored_ids) = crate::constraints::unique::fetch_rows(access, &ids)?;
                // Pair each stored row with its proposed row.
                let position: HashMap<RowId, usize> =
                    conflicting.iter().map(|&(i, id)| (id, i)).collect();
                let proposed_idx: Vec<u32> = stored_ids
                    .iter()
                    .map(|id| position.get(id).copied().unwrap_or(0) as u32)
                    .collect();
                let proposed = take_record_batch(&rows, &UInt32Array::from(proposed_idx.clone()))?;
                let (new_rows, keep) = updated_rows(
                    def,
                    alias,
                    &assignments,
                    selection.as_deref(),
                    &stored,
                    &proposed,
                    registry,
                )
                .await?;
                let mask = BooleanArray::from(keep.clone());
                let new_rows = filter_record_batch(&new_rows, &mask)?;
                let ids: Vec<RowId> = stored_ids
                    .iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(id, _)| *id)
                    .collect();
                if !ids.is_empty() {
                    validate_rows(access, &new_rows, &ids)?;
                    access.update(&ids, new_rows.clone())?;
                }
                let kept_idx = proposed_idx.iter().zip(&keep).filter(|(_, k)| **k);
                for (row, (&i, _)) in kept_idx.enumerate() {
                    order.push((i as usize, new_rows.slice(row, 1)));
                }
            }
            let inserted = take_record_batch(&rows, &UInt32Array::from(fresh.clone()))?;
            if inserted.num_rows() > 0 {
                validate_rows(access, &inserted, &[])?;
                access.insert(inserted.clone())?;
            }
            for (row, &i) in fresh.iter().enumerate() {
                order.push((i as usize, inserted.slice(row, 1)));
            }
            order.sort_by_key(|(i, _)| *i);
            let parts: Vec<RecordBatch> = order.into_iter().map(|(_, b)| b).collect();
            Ok(concat_batches(&def.schema_ref(), &parts)?)
        }
    }
}

/// Prefix of the columns that carry the proposed row (`excluded.col`) while evaluating.
const EXCLUDED: &str = "__phantomdb_excluded_";

/// The stored rows after `SET assignments`, and whether `WHERE selection` holds for each.
/// Custom types (#14) are planned as in any statement: the text compared with or assigned to
/// a typed column is parsed by its type.
async fn updated_rows(
    def: &TableDef,
    alias: Option<&str>,
    assignments: &[Assignment],
    selection: Option<&SqlExpr>,
    stored: &RecordBatch,
    proposed: &RecordBatch,
    registry: &Registry,
) -> Result<(RecordBatch, Vec<bool>)> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, f) in def.schema.fields().iter().enumerate() {
        fields.push(f.as_ref().clone().with_nullable(true));
        columns.push(stored.column(i).clone());
    }
    for (i, f) in def.schema.fields().iter().enumerate() {
        fields.push(
            f.as_ref()
                .clone()
                .with_name(format!("{EXCLUDED}{}", f.name()))
                .with_nullable(true),
        );
        columns.push(proposed.column(i).clone());
    }
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
    let both = RecordBatch::try_new(schema.clone(), columns)?;
    let mut set: HashMap<String, String> = HashMap::new();
    for a in assignments {
        let AssignmentTarget::ColumnName(name) = &a.target else {
            return Err(Error::Unsupported(
                "assigning a tuple in ON CONFLICT".into(),
            ));
        };
        let column = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(normalize_ident)
            .ok_or_else(|| Error::Sql(format!("bad column name {name}")))?;
        if def.schema.index_of(&column).is_err() {
            return Err(Error::Catalog(
                SqlState::UndefinedColumn,
                format!(
                    "column \"{column}\" of relation \"{}\" does not exist",
                    def.name
                ),
            ));
        }
        let mut value = rewrite(&a.value, &def.name, alias);
        crate::types::literals::type_expr_literals(&mut value, typed_columns(def), registry);
        set.insert(column, value.to_string());
    }
    let mut list: Vec<String> = def
        .schema
        .fields()
        .iter()
        .map(|f| match set.get(f.name()) {
            Some(e) => e.clone(),
            None => quote(f.name()),
        })
        .collect();
    list.push(match selection {
        Some(s) => {
            let mut s = rewrite(s, &def.name, alias);
            crate::types::literals::type_expr_literals(&mut s, typed_columns(def), registry);
            format!("({s})")
        }
        None => "true".into(),
    });
    // Each item named apart (`SET b = a` would otherwise name two items `a`).
    let list: Vec<String> = list
        .into_iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS \"__phantomdb_item_{i}\""))
        .collect();
    let ctx = crate::types::assign::typed_context(registry);
    let mem = MemTable::try_new(schema, vec![vec![both]])?;
    ctx.register_table(
        TableReference::bare("__phantomdb_upsert"),
        std::sync::Arc::new(mem),
    )?;
    let plan = ctx
        .state()
        .create_logical_plan(&format!(
            "SELECT {} FROM __phantomdb_upsert",
            list.join(", ")
        ))
        .await?;
    let plan = crate::types::rewrite::rewrite(plan, registry)?;
    let out = ctx.execute_logical_plan(plan).await?.collect().await?;
    let out_schema = out
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| std::sync::Arc::new(arrow::datatypes::Schema::empty()));
    let out = concat_batches(&out_schema, &out)?;
    let n = def.schema.fields().len();
    let keep_col = out.column(n);
    let keep_col = arrow::compute::cast(keep_col, &arrow::datatypes::DataType::Boolean)?;
    let keep_col = keep_col.as_boolean();
    let keep = (0..keep_col.len())
        .map(|i| keep_col.is_valid(i) && keep_col.value(i))
        .collect();
    let columns = def
        .schema
        .fields()
        .iter()
        .zip(out.columns())
        .map(|(f, c)| crate::types::assign::assigned_values(f, c.clone(), registry))
        .collect::<Result<Vec<_>>>()?;
    let new_rows = table_batch(def, columns)?;
    Ok((new_rows, keep))
}

/// The columns the SET and WHERE expressions see, by name: the stored row's and the proposed
/// row's (`excluded`).
fn typed_columns(
    def: &TableDef,
) -> impl Iterator<Item = (String, arrow::datatypes::FieldRef)> + '_ {
    def.schema.fields().iter().flat_map(|f| {
        [
            (f.name().clone(), f.clone()),
            (format!("{EXCLUDED}{}", f.name()), f.clone()),
        ]
    })
}

/// `expr` with `excluded.col` pointing at the proposed row's column and `table.col` /
/// `alias.col` at the stored row's.
fn rewrite(expr: &SqlExpr, table: &str, alias: Option<&str>) -> SqlExpr {
    struct Rewriter<'a> {
        table: &'a str,
        alias: Option<&'a str>,
    }
    impl VisitorMut for Rewriter<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            if let SqlExpr::CompoundIdentifier(parts) = expr {
                if parts.len() == 2 {
                    let qualifier = normalize_ident(&parts[0]);
                    let column = normalize_ident(&parts[1]);
                    if qualifier == "excluded" {
                        *expr = SqlExpr::Identifier(Ident::with_quote(
                            '"',
                            format!("{EXCLUDED}{column}"),
                        ));
                    } else if qualifier == self.table || Some(qualifier.as_str()) == self.alias {
                        *expr = SqlExpr::Identifier(Ident::with_quote('"', column));
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut e = expr.clone();
    let _ = e.visit(&mut Rewriter { table, alias });
    e
}
