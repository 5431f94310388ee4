//! Column statistics of a unit of storage (a redb segment): minimum, maximum, null count and a
//! distinct-count sketch per column, computed when the unit is written.
//!
//! They are bounds, not counts of live rows: rows deleted later still count (a minimum stays a
//! lower bound when rows go away). Scans merge them per partition for the planner and test
//! them against filters to skip units that cannot hold a matching row.

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::hash_utils::{create_hashes, HLL_RANDOM_STATE};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Strings longer than this get no minimum or maximum (they would bloat every unit's stats).
const MAX_BOUND_BYTES: usize = 64;

/// Register index bits of the distinct-count sketch (2^8 = 256 one-byte registers: about 6.5%
/// standard error).
const SKETCH_BITS: u32 = 8;
const SKETCH_REGISTERS: usize = 1 << SKETCH_BITS;

/// A HyperLogLog sketch of the distinct non-null values of a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DistinctSketch {
    registers: Vec<u8>,
}

impl Default for DistinctSketch {
    fn default() -> Self {
        Self {
            registers: vec![0; SKETCH_REGISTERS],
        }
    }
}

impl DistinctSketch {
    /// Adds the non-null values of `array`.
    fn add(&mut self, array: &ArrayRef) -> Result<()> {
        let mut hashes = vec![0u64; array.len()];
        create_hashes([array], &HLL_RANDOM_STATE, &mut hashes)?;
        for (i, h) in hashes.iter().enumerate() {
            if array.is_null(i) {
                continue;
            }
            let register = (h >> (64 - SKETCH_BITS)) as usize;
            // Rank of the first set bit in the remaining bits (1-based), capped.
            let rest = (h << SKETCH_BITS) | (1 << (SKETCH_BITS - 1));
            let rank = rest.leading_zeros() as u8 + 1;
            if rank > self.registers[register] {
                self.registers[register] = rank;
            }
        }
        Ok(())
    }

    /// Adds everything `other` has seen.
    pub(crate) fn merge(&mut self, other: &DistinctSketch) {
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct values.
    pub(crate) fn estimate(&self) -> usize {
        let m = SKETCH_REGISTERS as f64;
        // 2^-r built from its exponent bits (r <= 64): `powi` is a slow library call, and
        // query processors' plan forms ask for every column's estimate per statement.
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| f64::from_bits((1023 - u64::from(r.min(64))) << 52))
            .sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln() // linear counting for small sets
        } else {
            raw
        };
        estimate.round() as usize
    }
}

/// Statistics of one column of one unit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnStats {
    /// Smallest non-null value, when known.
    pub(crate) min: Option<ScalarValue>,
    /// Largest non-null value, when known.
    pub(crate) max: Option<ScalarValue>,
    /// NULLs among the unit's rows.
    pub(crate) null_count: usize,
    /// The distinct non-null values.
    pub(crate) distinct: DistinctSketch,
}

impl ColumnStats {
    /// Statistics of `array`.
    pub(crate) fn of(array: &ArrayRef) -> Result<Self> {
        let (mut min, mut max) = (None, None);
        if bounded(array.data_type()) && array.null_count() < array.len() {
            let mut lo = MinAccumulator::try_new(array.data_type())?;
            let mut hi = MaxAccumulator::try_new(array.data_type())?;
            lo.update_batch(std::slice::from_ref(array))?;
            hi.update_batch(std::slice::from_ref(array))?;
            min = short(lo.evaluate()?);
            max = short(hi.evaluate()?);
        }
        let mut distinct = DistinctSketch::default();
        distinct.add(array)?;
        Ok(Self {
            min,
            max,
            null_count: array.null_count(),
            distinct,
        })
    }

    /// Widens these statistics to cover `other` as well.
    pub(crate) fn merge(&mut self, other: &ColumnStats) {
        self.min = bound(self.min.take(), other.min.as_ref(), |a, b| b < a);
        self.max = bound(self.max.take(), other.max.as_ref(), |a, b| b > a);
        self.null_count += other.null_count;
        self.distinct.merge(&other.distinct);
    }
}

/// The bound of `ours` and `theirs`: unknown if either is; `theirs` if `better(ours, theirs)`.
fn bound(
    ours: Option<ScalarValue>,
    theirs: Option<&ScalarValue>,
    better: impl Fn(&ScalarValue, &ScalarValue) -> bool,
) -> Option<ScalarValue> {
    let (ours, theirs) = (ours?, theirs?);
    match ours.partial_cmp(theirs) {
        Some(_) if better(&ours, theirs) => Some(theirs.clone()),
        Some(_) => Some(ours),
        None => None, // different types (a column changed type): unknown
    }
}

/// Whether min/max of this type are kept (types whose values round-trip through text).
fn bounded(t: &DataType) -> bool {
    t.is_numeric()
        || t.is_temporal()
        || matches!(
            t,
            DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
}

/// `v`, unless it is NULL or a string too long to keep.
fn short(v: ScalarValue) -> Option<ScalarValue> {
    if v.is_null() {
        return None;
    }
    match &v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
            if s.len() > MAX_BOUND_BYTES =>
        {
            None
        }
        _ => Some(v),
    }
}

/// Statistics of one stored unit: its rows (deleted ones included) and its columns in stored
/// order (a unit written before a column was added has fewer).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnitStats {
    /// Rows stored in the unit.
    pub(crate) rows: usize,
    /// Per stored column.
    pub(crate) columns: Vec<ColumnStats>,
}

impl UnitStats {
    /// Statistics of the rows of `batch`.
    pub(crate) fn of(batch: &RecordBatch) -> Result<Self> {
        Ok(Self {
            rows: batch.num_rows(),
            columns: batch
                .columns()
                .iter()
                .map(ColumnStats::of)
                .collect::<Result<_>>()?,
        })
    }

    /// The stored form (JSON; bounds as text, read back with the column's type).
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let stored = StoredUnit {
            rows: self.rows,
            columns: self
                .columns
                .iter()
                .map(|c| StoredColumn {
                    min: c.min.as_ref().and_then(text),
                    max: c.max.as_ref().and_then(text),
                    nulls: c.null_count,
                    sketch: c.distinct.registers.clone(),
                })
                .collect(),
        };
        serde_json::to_vec(&stored).map_err(|e| Error::Storage(format!("statistics: {e}")))
    }

    /// Reads the stored form; `types` are the unit's column types (bounds of columns beyond
    /// them, or that no longer parse, read as unknown).
    pub(crate) fn decode(bytes: &[u8], types: &[DataType]) -> Result<Self> {
        let stored: StoredUnit = serde_json::from_slice(bytes)
            .map_err(|e| Error::Storage(format!("corrupt statistics: {e}")))?;
        let parse = |s: Option<String>, i: usize| -> Option<ScalarValue> {
            let t = types.get(i)?;
            ScalarValue::try_from_string(s?, t)
                .ok()
                .filter(|v| !v.is_null())
        };
        Ok(Self {
            rows: stored.rows,
            columns: stored
                .columns
                .into_iter()
                .enumerate()
                .map(|(i, c)| ColumnStats {
                    min: parse(c.min, i),
                    max: parse(c.max, i),
                    null_count: c.nulls,
                    distinct: if c.sketch.len() == SKETCH_REGISTERS {
                        DistinctSketch {
                            registers: c.sketch,
                        }
                    } else {
                        DistinctSketch::default()
                    },
                })
                .collect(),
        })
    }
}

/// A bound as text, only if it reads back as the same value.
fn text(v: &ScalarValue) -> Option<String> {
    let s = match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => other.to_string(),
    };
    let back = ScalarValue::try_from_string(s.clone(), &v.data_type()).ok()?;
    (back == *v).then_some(s)
}

#[derive(Serialize, Deserialize)]
struct StoredUnit {
    rows: usize,
    columns: Vec<StoredColumn>,
}

#[derive(Serialize, Deserialize)]
struct StoredColumn {
    min: Option<String>,
    max: Option<String>,
    nulls: usize,
    #[serde(with = "sketch_text")]
    sketch: Vec<u8>,
}

/// Sketch registers as base64 text (JSON arrays of numbers would be four times larger).
mod sketch_text {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Merged statistics of some units, per table column: `None` where any unit lacks them.
pub(crate) fn merge_units<'a>(
    units: impl IntoIterator<Item = Option<&'a UnitStats>>,
    columns: usize,
) -> Vec<Option<ColumnStats>> {
    let mut merged: Option<Vec<Option<ColumnStats>>> = None;
    for unit in units {
        let Some(unit) = unit else {
            return vec![None; columns];
        };
        match &mut merged {
            None => {
                merged = Some((0..columns).map(|i| unit.columns.get(i).cloned()).collect());
            }
            Some(m) => {
                for (i, slot) in m.iter_mut().enumerate() {
                    match (slot.as_mut(), unit.columns.get(i)) {
                        (Some(a), Some(b)) => a.merge(b),
                        _ => *slot = None,
                    }
                }
            }
        }
    }
    merged.unwrap_or_else(|| vec![None; columns])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Float64Array, Int64Array, StringViewArray};
    use std::sync::Arc;

    #[test]
    fn the_estimate_sums_powers_of_two_exactly() {
        for fill in [0u8, 1, 7, 30, 64] {
            let sketch = DistinctSketch {
                registers: (0..SKETCH_REGISTERS)
                    .map(|i| (i as u8) % (fill + 1))
                    .collect(),
            };
            let m = SKETCH_REGISTERS as f64;
            let sum: f64 = sketch
                .registers
                .iter()
                .map(|&r| 2f64.powi(-i32::from(r)))
                .sum();
            let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
            let zeros = sketch.registers.iter().filter(|&&r| r == 0).count();
            let expected = if raw <= 2.5 * m && zeros > 0 {
                m * (m / zeros as f64).ln()
            } else {
                raw
            };
            assert_eq!(sketch.estimate(), expected.round() as usize, "fill {fill}");
        }
    }

    #[test]
    fn bounds_nulls_and_distinct_values_round_trip() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "i",
                Arc::new(Int64Array::from(vec![Some(5), None, Some(-3), Some(5)])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringViewArray::from(vec![
                    Some("pear"),
                    Some("apple"),
                    None,
                    None,
                ])),
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![0.1, 2.5, -1e300, 7.0])),
            ),
            (
                "d",
                Arc::new(Date32Array::from(vec![9000, 9001, 8999, 9000])),
            ),
        ])
        .expect("batch");
        let stats = UnitStats::of(&batch).expect("stats");
        assert_eq!(stats.columns[0].min, Some(ScalarValue::Int64(Some(-3))));
        assert_eq!(stats.columns[0].max, Some(ScalarValue::Int64(Some(5))));
        assert_eq!(stats.columns[0].null_count, 1);
        assert_eq!(stats.columns[0].distinct.estimate(), 2);
        assert_eq!(
            stats.columns[1].min,
            Some(ScalarValue::Utf8View(Some("apple".into())))
        );
        assert_eq!(stats.columns[1].null_count, 2);
        let types: Vec<DataType> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let back = UnitStats::decode(&stats.encode().expect("encode"), &types).expect("decode");
        assert_eq!(back, stats);
    }

    #[test]
    fn distinct_estimate_is_close_and_merges() {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..50_000));
        let b: ArrayRef = Arc::new(Int64Array::from_iter_values(25_000..75_000));
        let (mut sa, sb) = (
            ColumnStats::of(&a).expect("a"),
            ColumnStats::of(&b).expect("b"),
        );
        let within = |est: usize, truth: f64| (est as f64 - truth).abs() / truth < 0.2;
        assert!(within(sa.distinct.estimate(), 50_000.0));
        sa.merge(&sb);
        assert!(
            within(sa.distinct.estimate(), 75_000.0),
            "{}",
            sa.distinct.estimate()
        );
        assert_eq!(sa.min, Some(ScalarValue::Int64(Some(0))));
        assert_eq!(sa.max, Some(ScalarValue::Int64(Some(74_999))));
    }
}
