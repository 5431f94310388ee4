//! Sort-key ordered types (`TypeOrdering::SortKey`): the type's order is the byte order of
//! the keys its plugin computes, not the storage order. Equality (and so `GROUP BY`,
//! `DISTINCT`, joins, `IN`, primary and unique keys) stays the storage's. [`super::rewrite`]
//! puts [`udf::sort_key`] under what orders values:
//! * `< <= > >=` and `BETWEEN` compare the sort keys of both sides;
//! * `ORDER BY` (of a query, a window or an ordered aggregate) sorts by the sort key;
//! * `min`/`max` become [`extreme`] aggregates keeping the value with the least/greatest key.
//!
//! `greatest`/`least` and window `min`/`max` over such a type are refused (0A000).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::{AggregateFunction, Sort};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, Signature, Volatility,
};

use super::{udf, TypeInfo, TypeOrdering};

/// Whether values of `info` are ordered by sort keys.
pub(crate) fn by_sort_key(info: &TypeInfo) -> bool {
    info.ordering == TypeOrdering::SortKey
}

/// `e` (of type `info`) as what to compare or sort by: its sort key for a sort-key ordered
/// type, itself otherwise.
pub(crate) fn order_operand(info: &TypeInfo, e: Expr) -> Expr {
    if by_sort_key(info) {
        udf::sort_key(info, e)
    } else {
        e
    }
}

/// A sort expression ordering by the sort key of a sort-key typed value.
pub(crate) fn sort_by_key(sort: Sort, info: &TypeInfo) -> Sort {
    Sort {
        expr: udf::sort_key(info, sort.expr),
        asc: sort.asc,
        nulls_first: sort.nulls_first,
    }
}

/// `min(x)` / `max(x)` of a sort-key typed `x` as the type's [`extreme`] aggregate.
pub(crate) fn extreme_call(info: &TypeInfo, f: AggregateFunction) -> AggregateFunction {
    let greatest = f.func.name() == "max";
    let p = f.params;
    AggregateFunction::new_udf(
        extreme(info, greatest),
        p.args,
        p.distinct,
        p.filter,
        p.order_by,
        p.null_treatment,
    )
}

/// The `min` (or, `greatest`, `max`) aggregate of a sort-key ordered type.
pub(crate) fn extreme(info: &TypeInfo, greatest: bool) -> Arc<AggregateUDF> {
    let verb = if greatest { "max" } else { "min" };
    Arc::new(AggregateUDF::new_from_impl(Extreme {
        name: format!("__phantomdb_{verb}_{}", info.name),
        info: info.clone(),
        greatest,
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

#[derive(Debug)]
struct Extreme {
    name: String,
    info: TypeInfo,
    greatest: bool,
    signature: Signature,
}

impl PartialEq for Extreme {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.info.plugin == other.info.plugin
    }
}
impl Eq for Extreme {}
impl Hash for Extreme {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.info.plugin.hash(state);
    }
}

impl AggregateUDFImpl for Extreme {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.info.storage.clone())
    }

    fn return_field(&self, _arg_fields: &[FieldRef]) -> Result<FieldRef> {
        Ok(Arc::new(self.info.field(self.name(), true)))
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(
            self.info.field(&format!("{}[value]", self.name), true),
        )])
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ExtremeAccumulator {
            info: self.info.clone(),
            greatest: self.greatest,
            best: None,
        }))
    }
}

/// The least (or greatest) value seen, with its sort key.
#[derive(Debug)]
struct ExtremeAccumulator {
    info: TypeInfo,
    greatest: bool,
    best: Option<(Vec<u8>, ScalarValue)>,
}

impl ExtremeAccumulator {
    fn offer(&mut self, values: &ArrayRef) -> Result<()> {
        if values.len() == values.null_count() {
            return Ok(());
        }
        let keys = udf::sort_keys(&self.info, values)?;
        let mut pick: Option<usize> = None;
        for i in 0..keys.len() {
            if keys.is_null(i) {
                continue;
            }
            let better = match pick {
                None => true,
                Some(p) if self.greatest => keys.value(i) > keys.value(p),
                Some(p) => keys.value(i) < keys.value(p),
            };
            if better {
                pick = Some(i);
            }
        }
        let Some(i) = pick else {
            return Ok(());
        };
        let key = keys.value(i);
        let better = match &self.best {
            None => true,
            Some((b, _)) if self.greatest => key > b.as_slice(),
            Some((b, _)) => key < b.as_slice(),
        };
        if better {
            self.best = Some((key.to_vec(), ScalarValue::try_from_array(values, i)?));
        }
        Ok(())
    }
}

impl Accumulator for ExtremeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(v) => self.offer(v),
            None => Ok(()),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.best {
            Some((_, v)) => Ok(v.clone()),
            None => ScalarValue::try_from(&self.info.storage),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .best
                .as_ref()
                .map_or(0, |(k, v)| k.capacity() + v.size())
    }
}
