//! Skipping data with min/max statistics: Parquet row-group statistics and the per-file bounds
//! kept in the manifest.
//!
//! [`may_match`] answers, for each container (row group or file), whether any row in it could
//! pass all filters. It is conservative: "unknown" always means "may match". Comparisons use
//! exactly the literal casts of [`Filter::evaluate`], so a container is only skipped when the
//! exact evaluation would drop all its rows. Floating-point columns are never pruned (Parquet
//! statistics leave out NaN, which sorts above every number in Arrow comparisons).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_ord::cmp;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;
use phantomdb_plugin_sdk::arrow_array::{
    new_null_array, Array, ArrayRef, BooleanArray, Datum, Scalar, UInt64Array,
};
use phantomdb_plugin_sdk::arrow_schema::{DataType, Schema, TimeUnit};
use phantomdb_plugin_sdk::{CompareOp, Filter, Value};

use crate::manifest::{ColumnStats, DataFile};

/// Bounds of one column over `n` containers, in the table's column type.
#[derive(Debug, Clone)]
pub(crate) struct ColumnBounds {
    pub min: ArrayRef,
    pub max: ArrayRef,
    pub null_counts: Option<UInt64Array>,
}

/// Statistics of `n` containers for some columns.
#[derive(Debug, Default)]
pub(crate) struct StatsTable {
    pub n: usize,
    pub columns: HashMap<String, ColumnBounds>,
    pub row_counts: Option<UInt64Array>,
}

impl StatsTable {
    /// Row-group statistics of a Parquet file for `columns` (name and table type).
    pub(crate) fn from_row_groups(
        meta: &ParquetMetaData,
        file_schema: &Schema,
        columns: &[(String, DataType)],
    ) -> Self {
        let row_groups = meta.row_groups();
        let n = row_groups.len();
        let mut out = StatsTable {
            n,
            columns: HashMap::new(),
            row_counts: Some(UInt64Array::from_iter_values(
                row_groups.iter().map(|rg| rg.num_rows().max(0) as u64),
            )),
        };
        let parquet_schema = meta.file_metadata().schema_descr();
        for (name, table_type) in columns {
            let Ok(conv) = StatisticsConverter::try_new(name, file_schema, parquet_schema) else {
                continue;
            };
            let (Ok(min), Ok(max)) = (
                conv.row_group_mins(row_groups.iter()),
                conv.row_group_maxes(row_groups.iter()),
            ) else {
                continue;
            };
            if min.data_type() != table_type || max.data_type() != table_type {
                continue;
            }
            let null_counts = conv.row_group_null_counts(row_groups.iter()).ok();
            out.columns.insert(
                name.clone(),
                ColumnBounds {
                    min,
                    max,
                    null_counts,
                },
            );
        }
        out
    }

    /// Per-file bounds from the manifest for `columns` (name and table type).
    pub(crate) fn from_files(files: &[&DataFile], columns: &[(String, DataType)]) -> Self {
        let mut out = StatsTable {
            n: files.len(),
            columns: HashMap::new(),
            row_counts: Some(UInt64Array::from_iter_values(files.iter().map(|f| f.rows))),
        };
        for (name, ty) in columns {
            let stats: Vec<Option<&ColumnStats>> =
                files.iter().map(|f| f.columns.get(name)).collect();
            let (Some(min), Some(max)) = (
                values_to_array(stats.iter().map(|s| s.and_then(|s| s.min.as_ref())), ty),
                values_to_array(stats.iter().map(|s| s.and_then(|s| s.max.as_ref())), ty),
            ) else {
                continue;
            };
            let null_counts = stats
                .iter()
                .map(|s| s.and_then(|s| s.null_count))
                .collect::<UInt64Array>();
            out.columns.insert(
                name.clone(),
                ColumnBounds {
                    min,
                    max,
                    null_counts: Some(null_counts),
                },
            );
        }
        out
    }
}

/// An array of `ty` from optional values (unknown or unconvertible values become null).
pub(crate) fn values_to_array<'a>(
    values: impl Iterator<Item = Option<&'a Value>>,
    ty: &DataType,
) -> Option<ArrayRef> {
    let parts: Vec<ArrayRef> = values
        .map(|v| match v {
            Some(v) if *v != Value::Null => {
                v.to_array_of(ty).unwrap_or_else(|_| new_null_array(ty, 1))
            }
            _ => new_null_array(ty, 1),
        })
        .collect();
    if parts.is_empty() {
        return Some(new_null_array(ty, 0));
    }
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    arrow_select::concat::concat(&refs).ok()
}

/// Element `i` of `a` as a manifest value (`None` for nulls, non-finite floats and types without
/// a [`Value`] form).
pub(crate) fn array_value(a: &dyn Array, i: usize) -> Option<Value> {
    use phantomdb_plugin_sdk::arrow_array::cast::AsArray;
    use phantomdb_plugin_sdk::arrow_array::types::*;
    if i >= a.len() || a.is_null(i) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => Value::Int(a.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Value::Int(a.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Value::Int(a.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => Value::Int(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::UInt(a.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Value::UInt(a.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => Value::UInt(a.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => Value::UInt(a.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => {
            let v = f64::from(a.as_primitive::<Float32Type>().value(i));
            if !v.is_finite() {
                return None;
            }
            Value::Float(v)
        }
        DataType::Float64 => {
            let v = a.as_primitive::<Float64Type>().value(i);
            if !v.is_finite() {
                return None;
            }
            Value::Float(v)
        }
        DataType::Utf8 => Value::Str(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::Str(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::Str(a.as_string_view().value(i).to_string()),
        DataType::Date32 => Value::Date32(a.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Value::TimestampUs(a.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        _ => return None,
    })
}

/// Index of the smallest (or largest) non-null element, if any.
pub(crate) fn extreme_index(a: &dyn Array, largest: bool) -> Option<usize> {
    if a.len() == a.null_count() {
        return None;
    }
    let opts = arrow_ord::sort::SortOptions {
        descending: largest,
        nulls_first: false,
    };
    let idx = arrow_ord::sort::sort_to_indices(a, Some(opts), Some(1)).ok()?;
    if idx.is_empty() {
        return None;
    }
    let i = idx.value(0) as usize;
    (!a.is_null(i)).then_some(i)
}

/// Bounds of a column over several containers: (min of mins, max of maxes, total nulls);
/// unknown if any container with values has an unknown bound.
pub(crate) fn fold_bounds(b: &ColumnBounds, row_counts: Option<&UInt64Array>) -> ColumnStats {
    // A container whose values are all null has no bounds and needs none.
    let all_null = |i: usize| match (&b.null_counts, row_counts) {
        (Some(nc), Some(rc)) => !nc.is_null(i) && nc.value(i) == rc.value(i),
        _ => false,
    };
    let all_known = |a: &ArrayRef| (0..a.len()).all(|i| !a.is_null(i) || all_null(i));
    ColumnStats {
        min: if all_known(&b.min) {
            extreme_index(&b.min, false).and_then(|i| array_value(&b.min, i))
        } else {
            None
        },
        max: if all_known(&b.max) {
            extreme_index(&b.max, true).and_then(|i| array_value(&b.max, i))
        } else {
            None
        },
        null_count: b.null_counts.as_ref().and_then(|nc| {
            (nc.null_count() == 0).then(|| nc.values().iter().copied().sum::<u64>())
        }),
    }
}

/// For each container: may any row pass all `filters`?
pub(crate) fn may_match(filters: &[Filter], stats: &StatsTable) -> Vec<bool> {
    let mut keep = vec![true; stats.n];
    for f in filters {
        if let Some(m) = eval(f, stats).filter(|m| m.len() == stats.n) {
            for (k, i) in keep.iter_mut().zip(0..) {
                *k = *k && m.value(i);
            }
        }
    }
    keep
}

/// Nulls (unknown) become true: "may match".
fn unknown_true(a: BooleanArray) -> BooleanArray {
    if a.null_count() == 0 {
        return a;
    }
    a.iter().map(|v| Some(v.unwrap_or(true))).collect()
}

fn is_float(t: &DataType) -> bool {
    t.is_floating()
}

/// A filter's "may match" per container; `None` when nothing can be said.
fn eval(f: &Filter, s: &StatsTable) -> Option<BooleanArray> {
    match f {
        Filter::And(parts) => {
            let mut acc: Option<BooleanArray> = None;
            for p in parts {
                if let Some(m) = eval(p, s) {
                    acc = Some(match acc {
                        None => m,
                        Some(a) => arrow_arith::boolean::and(&a, &m).ok()?,
                    });
                }
            }
            acc
        }
        Filter::Or(parts) => {
            let mut acc: Option<BooleanArray> = None;
            for p in parts {
                let m = eval(p, s)?;
                acc = Some(match acc {
                    None => m,
                    Some(a) => arrow_arith::boolean::or(&a, &m).ok()?,
                });
            }
            acc
        }
        Filter::Literal(Value::Bool(false)) | Filter::Literal(Value::Null) => {
            Some(BooleanArray::from(vec![false; s.n]))
        }
        Filter::Compare { op, left, right } => match (left.as_ref(), right.as_ref()) {
            (Filter::Column(c), Filter::Literal(v)) => compare(s, c, *op, v),
            (Filter::Literal(v), Filter::Column(c)) => compare(s, c, op.swap(), v),
            _ => None,
        },
        Filter::InList {
            expr,
            list,
            negated: false,
        } => {
            let Filter::Column(c) = expr.as_ref() else {
                return None;
            };
            let mut acc: Option<BooleanArray> = None;
            for item in list {
                let Filter::Literal(v) = item else {
                    return None;
                };
                let m = compare(s, c, CompareOp::Eq, v)?;
                acc = Some(match acc {
                    None => m,
                    Some(a) => arrow_arith::boolean::or(&a, &m).ok()?,
                });
            }
            acc
        }
        Filter::IsNull(inner) => {
            let Filter::Column(c) = inner.as_ref() else {
                return None;
            };
            let nc = s.columns.get(c)?.null_counts.as_ref()?;
            let zero = UInt64Array::new_scalar(0);
            Some(unknown_true(cmp::gt(nc, &zero).ok()?))
        }
        Filter::IsNotNull(inner) => {
            let Filter::Column(c) = inner.as_ref() else {
                return None;
            };
            let nc = s.columns.get(c)?.null_counts.as_ref()?;
            let rows = s.row_counts.as_ref()?;
            Some(unknown_true(cmp::lt(nc, rows).ok()?))
        }
        _ => None,
    }
}

fn compare(s: &StatsTable, column: &str, op: CompareOp, v: &Value) -> Option<BooleanArray> {
    let b = s.columns.get(column)?;
    let ty = b.min.data_type();
    if is_float(ty) || *v == Value::Null {
        return None;
    }
    let lit = v.to_array_of(ty).ok()?;
    if lit.is_null(0) {
        return None;
    }
    let lit: Scalar<ArrayRef> = Scalar::new(lit);
    let (min, max): (&dyn Datum, &dyn Datum) = (&b.min, &b.max);
    let r = match op {
        CompareOp::Eq => {
            arrow_arith::boolean::and(&cmp::lt_eq(min, &lit).ok()?, &cmp::gt_eq(max, &lit).ok()?)
        }
        .ok()?,
        CompareOp::NotEq => {
            // Nothing passes only if every value equals the literal.
            let all_eq =
                arrow_arith::boolean::and(&cmp::eq(min, &lit).ok()?, &cmp::eq(max, &lit).ok()?)
                    .ok()?;
            arrow_arith::boolean::not(&all_eq).ok()?
        }
        CompareOp::Lt => cmp::lt(min, &lit).ok()?,
        CompareOp::LtEq => cmp::lt_eq(min, &lit).ok()?,
        CompareOp::Gt => cmp::gt(max, &lit).ok()?,
        CompareOp::GtEq => cmp::gt_eq(max, &lit).ok()?,
    };
    Some(unknown_true(r))
}

/// Filters used by [`may_match`] read these columns: (name, table type) for those in `schema`.
pub(crate) fn filter_columns(filters: &[Filter], schema: &Schema) -> Vec<(String, DataType)> {
    let mut out: Vec<(String, DataType)> = Vec::new();
    for f in filters {
        for c in f.columns() {
            if out.iter().any(|(n, _)| n == c) {
                continue;
            }
            if let Ok(field) = schema.field_with_name(c) {
                out.push((c.to_string(), field.data_type().clone()));
            }
        }
    }
    out
}

/// Per-column bounds of a written file, from its row-group statistics.
pub(crate) fn file_column_stats(
    meta: &ParquetMetaData,
    schema: &Arc<Schema>,
) -> std::collections::BTreeMap<String, ColumnStats> {
    let columns: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let table = StatsTable::from_row_groups(meta, schema, &columns);
    let mut out = std::collections::BTreeMap::new();
    for (name, _) in &columns {
        if let Some(b) = table.columns.get(name) {
            let st = fold_bounds(b, table.row_counts.as_ref());
            if st.min.is_some() || st.max.is_some() || st.null_count.is_some() {
                out.insert(name.clone(), st);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomdb_plugin_sdk::arrow_array::{Int64Array, StringArray};

    fn table() -> StatsTable {
        let mut columns = HashMap::new();
        columns.insert(
            "x".to_string(),
            ColumnBounds {
                min: Arc::new(Int64Array::from(vec![Some(0), Some(100), None])),
                max: Arc::new(Int64Array::from(vec![Some(99), Some(199), None])),
                null_counts: Some(UInt64Array::from(vec![0, 5, 0])),
            },
        );
        columns.insert(
            "s".to_string(),
            ColumnBounds {
                min: Arc::new(StringArray::from(vec!["a", "m", "a"])),
                max: Arc::new(StringArray::from(vec!["l", "z", "z"])),
                null_counts: None,
            },
        );
        StatsTable {
            n: 3,
            columns,
            row_counts: Some(UInt64Array::from(vec![100, 100, 100])),
        }
    }

    fn cmp_f(c: &str, op: CompareOp, v: Value) -> Filter {
        Filter::Compare {
            op,
            left: Box::new(Filter::Column(c.into())),
            right: Box::new(Filter::Literal(v)),
        }
    }

    #[test]
    fn prunes_conservatively() {
        let t = table();
        assert_eq!(
            may_match(&[cmp_f("x", CompareOp::Gt, Value::Int(150))], &t),
            vec![false, true, true]
        );
        assert_eq!(
            may_match(&[cmp_f("x", CompareOp::Eq, Value::Int(100))], &t),
            vec![false, true, true]
        );
        assert_eq!(
            may_match(&[cmp_f("x", CompareOp::Lt, Value::Int(0))], &t),
            vec![false, false, true]
        );
        // Literal on the left: 50 > x  ==  x < 50.
        let swapped = Filter::Compare {
            op: CompareOp::Gt,
            left: Box::new(Filter::Literal(Value::Int(50))),
            right: Box::new(Filter::Column("x".into())),
        };
        assert_eq!(may_match(&[swapped], &t), vec![true, false, true]);
        assert_eq!(
            may_match(&[Filter::IsNull(Box::new(Filter::Column("x".into())))], &t),
            vec![false, true, false]
        );
        assert_eq!(
            may_match(&[cmp_f("s", CompareOp::GtEq, Value::Str("n".into()))], &t),
            vec![false, true, true]
        );
        let or = Filter::Or(vec![
            cmp_f("x", CompareOp::Lt, Value::Int(10)),
            cmp_f("y", CompareOp::Lt, Value::Int(10)),
        ]);
        assert_eq!(may_match(&[or], &t), vec![true, true, true]);
        let inl = Filter::InList {
            expr: Box::new(Filter::Column("x".into())),
            list: vec![
                Filter::Literal(Value::Int(5)),
                Filter::Literal(Value::Int(7)),
            ],
            negated: false,
        };
        assert_eq!(may_match(&[inl], &t), vec![true, false, true]);
        assert_eq!(
            may_match(&[Filter::Not(Box::new(Filter::Column("b".into())))], &t),
            vec![true, true, true]
        );
    }

    #[test]
    fn values() {
        let a = StringArray::from(vec![Some("b"), None, Some("a")]);
        assert_eq!(extreme_index(&a, false), Some(2));
        assert_eq!(extreme_index(&a, true), Some(0));
        assert_eq!(array_value(&a, 0), Some(Value::Str("b".into())));
        assert_eq!(array_value(&a, 1), None);
        let arr = values_to_array([Some(&Value::Int(3)), None].into_iter(), &DataType::Int32)
            .expect("array");
        assert_eq!(arr.len(), 2);
        assert!(arr.is_null(1));
    }
}
