//! Secondary-index scans: an equality, `IN` list or range predicate on the first column of a
//! stored index reads the matching row ids from the index and the rows by id, while planning
//! (as key lookups do), instead of scanning the table. The predicate stays with DataFusion
//! (pushed down as inexact), which re-checks every row.

use std::ops::Bound;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow::datatypes::Field;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Operator};

use crate::catalog::{IndexDef, TableDef};
use crate::engines::TableAccess;
use crate::error::Result;
use crate::table::index_keys::encode_columns;
use crate::table::RowId;

/// More rows than this and the index is not used (a scan is as good).
const MAX_INDEX_ROWS: usize = 1 << 18;

/// What the predicates on an index's first column select.
#[derive(Debug, Default)]
pub(super) struct Selection {
    /// `col = v` / `col IN (...)`: these values.
    points: Option<Vec<ScalarValue>>,
    lo: Option<(ScalarValue, bool)>,
    hi: Option<(ScalarValue, bool)>,
    /// The predicates used, for EXPLAIN.
    used: Vec<String>,
}

impl Selection {
    fn is_empty(&self) -> bool {
        self.points.is_none() && self.lo.is_none() && self.hi.is_none()
    }
}

/// Whether `expr` is a predicate an index on `column` can answer.
pub(super) fn usable(expr: &Expr, column: &Field) -> bool {
    let mut s = Selection::default();
    add_predicate(&mut s, expr, column);
    !s.is_empty()
}

/// Folds `expr` into `s` when it constrains `column` with literals.
fn add_predicate(s: &mut Selection, expr: &Expr, column: &Field) {
    let is_col = |e: &Expr| matches!(e, Expr::Column(c) if c.name == *column.name());
    let literal = |e: &Expr| match e {
        Expr::Literal(v, _) if !v.is_null() => v.cast_to(column.data_type()).ok(),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) if !v.is_null() => v.cast_to(column.data_type()).ok(),
            _ => None,
        },
        _ => None,
    };
    match expr {
        Expr::BinaryExpr(b) => {
            let (op, value) = if is_col(&b.left) {
                (b.op, literal(&b.right))
            } else if is_col(&b.right) {
                let flipped = match b.op {
                    Operator::Lt => Operator::Gt,
                    Operator::LtEq => Operator::GtEq,
                    Operator::Gt => Operator::Lt,
                    Operator::GtEq => Operator::LtEq,
                    other => other,
                };
                (flipped, literal(&b.left))
            } else {
                return;
            };
            let Some(v) = value else { return };
            match op {
                Operator::Eq => s.points = Some(vec![v]),
                Operator::Gt => tighten(&mut s.lo, v, false, true),
                Operator::GtEq => tighten(&mut s.lo, v, true, true),
                Operator::Lt => tighten(&mut s.hi, v, false, false),
                Operator::LtEq => tighten(&mut s.hi, v, true, false),
                _ => return,
            }
            s.used.push(expr.to_string());
        }
        Expr::InList(l) if !l.negated && is_col(&l.expr) => {
            if let Some(values) = l.list.iter().map(literal).collect::<Option<Vec<_>>>() {
                s.points = Some(values);
                s.used.push(expr.to_string());
            }
        }
        Expr::Between(b) if !b.negated && is_col(&b.expr) => {
            if let (Some(lo), Some(hi)) = (literal(&b.low), literal(&b.high)) {
                tighten(&mut s.lo, lo, true, true);
                tighten(&mut s.hi, hi, true, false);
                s.used.push(expr.to_string());
            }
        }
        _ => {}
    }
}

/// Keeps the tighter of two bounds (`lower`: a lower bound).
fn tighten(bound: &mut Option<(ScalarValue, bool)>, v: ScalarValue, inclusive: bool, lower: bool) {
    let replace = match bound {
        None => true,
        Some((old, old_inclusive)) => match v.partial_cmp(old) {
            Some(std::cmp::Ordering::Greater) => lower,
            Some(std::cmp::Ordering::Less) => !lower,
            Some(std::cmp::Ordering::Equal) => *old_inclusive && !inclusive,
            None => false,
        },
    };
    if replace {
        *bound = Some((v, inclusive));
    }
}

/// The rows an index answers `filters` with: the first stored index whose first column the
/// filters constrain. `None` when no index applies or it would select too many rows.
/// With `with_row_ids`, the row ids follow the table columns.
pub(super) fn index_rows(
    access: &dyn TableAccess,
    filters: &[Expr],
    with_row_ids: bool,
) -> Result<Option<(RecordBatch, String)>> {
    if !access.keeps_indexes() {
        return Ok(None);
    }
    let def = access.def().clone();
    for index in def.indexes.iter().filter(|i| i.stored) {
        let column = def.schema.field(index.columns[0]);
        let mut s = Selection::default();
        for f in filters {
            add_predicate(&mut s, f, column);
        }
        if s.is_empty() {
            continue;
        }
        let Some(ids) = selected_ids(access, &def, index, &s)? else {
            continue;
        };
        if ids.len() > MAX_INDEX_ROWS {
            return Ok(None);
        }
        let Some((rows, order)) = access.fetch(&ids)? else {
            return Ok(None);
        };
        let rows = if with_row_ids {
            let mut columns = rows.columns().to_vec();
            columns.push(Arc::new(UInt64Array::from(order)) as ArrayRef);
            let mut fields: Vec<Field> = def
                .schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new(
                crate::table::ROW_ID_COLUMN,
                arrow::datatypes::DataType::UInt64,
                false,
            ));
            RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)?
        } else {
            rows
        };
        let kind = if s.points.is_some() {
            "lookup"
        } else {
            "range"
        };
        let detail = format!("index={}, {kind}=[{}]", index.name, s.used.join(" AND "));
        return Ok(Some((rows, detail)));
    }
    Ok(None)
}

/// The row ids `s` selects through `index` (`None`: the index cannot answer).
fn selected_ids(
    access: &dyn TableAccess,
    def: &TableDef,
    index: &IndexDef,
    s: &Selection,
) -> Result<Option<Vec<RowId>>> {
    let first = [index.columns[0]];
    let encode = |v: &ScalarValue| -> Result<Vec<u8>> {
        let array = v.to_array()?;
        Ok(encode_columns(def, &first, &[array])?
            .first()
            .map(|k| k.bytes().to_vec())
            .unwrap_or_default())
    };
    if let Some(points) = &s.points {
        let mut ids = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for p in points {
            let k = encode(p)?;
            if !seen.insert(k.clone()) {
                continue;
            }
            let b = Bound::Included(k.as_slice());
            match access.index_range(index, b, b)? {
                Some(found) => ids.extend(found),
                None => return Ok(None),
            }
        }
        return Ok(Some(ids));
    }
    let lo =
        s.lo.as_ref()
            .map(|(v, inc)| encode(v).map(|k| (k, *inc)))
            .transpose()?;
    let hi =
        s.hi.as_ref()
            .map(|(v, inc)| encode(v).map(|k| (k, *inc)))
            .transpose()?;
    // Without a lower bound, start after the NULLs (they sort first and match no range).
    let null_key = encode(&ScalarValue::try_from(
        def.schema.field(first[0]).data_type(),
    )?)?;
    let lo_bound = match &lo {
        Some((k, true)) => Bound::Included(k.as_slice()),
        Some((k, false)) => Bound::Excluded(k.as_slice()),
        None => Bound::Excluded(null_key.as_slice()),
    };
    let hi_bound = match &hi {
        Some((k, true)) => Bound::Included(k.as_slice()),
        Some((k, false)) => Bound::Excluded(k.as_slice()),
        None => Bound::Unbounded,
    };
    access.index_range(index, lo_bound, hi_bound)
}
