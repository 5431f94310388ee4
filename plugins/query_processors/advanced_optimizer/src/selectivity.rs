//! The fraction of a relation's rows its own filters keep, estimated from the scanned
//! table's statistics (distinct counts, null counts, min/max), with fixed guesses where the
//! statistics say nothing.

use phantomdb_plugin_sdk::plan::{ColumnStatistics, Expr, Literal, PlanNode, ScanStatistics};

use crate::region::column_of;

/// Guess for a condition the statistics cannot estimate.
const UNKNOWN: f64 = 0.25;
/// Guess for an equality without a distinct count.
const EQUALITY: f64 = 0.1;
/// Guess for a range without min/max.
const RANGE: f64 = 1.0 / 3.0;
/// Guess for `LIKE`.
const LIKE: f64 = 0.1;

/// The statistics of the table under `node`, seen through filters and aliases.
pub fn scan_statistics(node: &PlanNode) -> Option<&ScanStatistics> {
    match node {
        PlanNode::Scan { statistics, .. } => statistics.as_ref(),
        PlanNode::Filter { input, .. } | PlanNode::SubqueryAlias { input, .. } => {
            scan_statistics(input)
        }
        _ => None,
    }
}

/// The conditions of the filters inside `node` (down to its scan, including pushed ones).
pub fn own_filters(node: &PlanNode) -> Vec<&Expr> {
    match node {
        PlanNode::Scan { filters, .. } => filters.iter().collect(),
        PlanNode::Filter {
            predicate, input, ..
        } => {
            let mut all = own_filters(input);
            all.push(predicate);
            all
        }
        PlanNode::SubqueryAlias { input, .. } => own_filters(input),
        _ => Vec::new(),
    }
}

/// Estimates conditions over one table.
pub struct Selectivity<'a> {
    pub stats: Option<&'a ScanStatistics>,
}

impl Selectivity<'_> {
    fn column(&self, expr: &Expr) -> Option<&ColumnStatistics> {
        let (_, name) = column_of(expr)?;
        self.stats?.columns.iter().find(|c| c.name == name)
    }

    fn rows(&self) -> Option<f64> {
        self.stats?.row_count.map(|r| (r as f64).max(1.0))
    }

    /// The fraction of rows for which `expr` is true, in `[0, 1]`.
    pub fn of(&self, expr: &Expr) -> f64 {
        self.estimate(expr).clamp(0.0, 1.0)
    }

    fn estimate(&self, expr: &Expr) -> f64 {
        match expr {
            Expr::Binary { op, left, right } => match op.to_ascii_lowercase().as_str() {
                "and" => self.of(left) * self.of(right),
                "or" => {
                    let (a, b) = (self.of(left), self.of(right));
                    a + b - a * b
                }
                "=" => self.equality(left, right),
                "<>" => 1.0 - self.equality(left, right),
                "<" | "<=" => self.range(left, right, true),
                ">" | ">=" => self.range(left, right, false),
                _ => UNKNOWN,
            },
            Expr::Unary { op, expr } if op == "not" => 1.0 - self.of(expr),
            Expr::IsNull { expr, negated } => {
                let nulls = match (self.column(expr), self.rows()) {
                    (
                        Some(ColumnStatistics {
                            null_count: Some(n),
                            ..
                        }),
                        Some(rows),
                    ) => *n as f64 / rows,
                    _ => 0.05,
                };
                if *negated {
                    1.0 - nulls
                } else {
                    nulls
                }
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let one = self.equality(expr, &Expr::Literal(null()));
                let s = (one * list.len() as f64).min(1.0);
                if *negated {
                    1.0 - s
                } else {
                    s
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let s = match (self.bounds(expr), number(low), number(high)) {
                    (Some((min, max)), Some(lo), Some(hi)) if max > min => {
                        ((hi.min(max) - lo.max(min)) / (max - min)).max(0.0)
                    }
                    _ => RANGE * RANGE * 2.0,
                };
                if *negated {
                    1.0 - s
                } else {
                    s
                }
            }
            Expr::Like { negated, .. } => {
                if *negated {
                    1.0 - LIKE
                } else {
                    LIKE
                }
            }
            Expr::Alias { expr, .. } => self.of(expr),
            _ => UNKNOWN,
        }
    }

    /// `left = right` where one side is a column.
    fn equality(&self, left: &Expr, right: &Expr) -> f64 {
        let column = self.column(left).or_else(|| self.column(right));
        match column.and_then(|c| c.distinct_count) {
            Some(d) => 1.0 / (d as f64).max(1.0),
            None => EQUALITY,
        }
    }

    /// `left < right` (`below`) or `left > right`, with a column on one side.
    fn range(&self, left: &Expr, right: &Expr, below: bool) -> f64 {
        // `5 < x` is `x > 5`.
        let (column, value, below) = match (self.bounds(left), number(right)) {
            (Some(b), Some(v)) => (b, v, below),
            _ => match (self.bounds(right), number(left)) {
                (Some(b), Some(v)) => (b, v, !below),
                _ => return RANGE,
            },
        };
        let (min, max) = column;
        if max <= min {
            return RANGE;
        }
        let below_fraction = ((value - min) / (max - min)).clamp(0.0, 1.0);
        if below {
            below_fraction
        } else {
            1.0 - below_fraction
        }
    }

    /// The column's min and max as numbers.
    fn bounds(&self, expr: &Expr) -> Option<(f64, f64)> {
        let c = self.column(expr)?;
        Some((
            literal_number(c.min.as_ref()?)?,
            literal_number(c.max.as_ref()?)?,
        ))
    }
}

fn null() -> Literal {
    Literal {
        data_type: "n".into(),
        value: serde_json::Value::Null,
    }
}

/// A literal operand as a number (through casts).
fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Literal(l) => literal_number(l),
        Expr::Cast { expr, .. } => number(expr),
        _ => None,
    }
}

/// Numbers, decimals (text) and dates (`YYYY-MM-DD`, as days) as one scale per type.
fn literal_number(l: &Literal) -> Option<f64> {
    match &l.value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse::<f64>().ok().or_else(|| date_days(s)),
        _ => None,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn date_days(s: &str) -> Option<f64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.get(..2)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146097 + doe - 719468) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> ScanStatistics {
        ScanStatistics {
            row_count: Some(1000),
            exact: true,
            columns: vec![
                ColumnStatistics {
                    name: "k".into(),
                    distinct_count: Some(50),
                    min: Some(Literal {
                        data_type: "l".into(),
                        value: 0.into(),
                    }),
                    max: Some(Literal {
                        data_type: "l".into(),
                        value: 100.into(),
                    }),
                    null_count: Some(100),
                },
                ColumnStatistics {
                    name: "day".into(),
                    min: Some(Literal {
                        data_type: "tdD".into(),
                        value: "1994-01-01".into(),
                    }),
                    max: Some(Literal {
                        data_type: "tdD".into(),
                        value: "1995-01-01".into(),
                    }),
                    ..Default::default()
                },
            ],
        }
    }

    fn col(name: &str) -> Box<Expr> {
        Box::new(Expr::column(name))
    }

    fn lit(value: serde_json::Value, t: &str) -> Box<Expr> {
        Box::new(Expr::Literal(Literal {
            data_type: t.into(),
            value,
        }))
    }

    fn bin(op: &str, left: Box<Expr>, right: Box<Expr>) -> Expr {
        Expr::Binary {
            op: op.into(),
            left,
            right,
        }
    }

    #[test]
    fn statistics_drive_the_estimates() {
        let s = stats();
        let sel = Selectivity { stats: Some(&s) };
        assert_eq!(sel.of(&bin("=", col("k"), lit(7.into(), "l"))), 1.0 / 50.0);
        assert_eq!(sel.of(&bin("<", col("k"), lit(25.into(), "l"))), 0.25);
        assert_eq!(sel.of(&bin("<", lit(25.into(), "l"), col("k"))), 0.75);
        let quarter = sel.of(&bin(">=", col("day"), lit("1994-10-02".into(), "tdD")));
        assert!((quarter - 0.25).abs() < 0.01, "{quarter}");
        let null = Expr::IsNull {
            expr: col("k"),
            negated: false,
        };
        assert_eq!(sel.of(&null), 0.1);
        let both = bin(
            "and",
            Box::new(bin("=", col("k"), lit(7.into(), "l"))),
            Box::new(null),
        );
        assert!((sel.of(&both) - 0.002).abs() < 1e-12);
    }

    #[test]
    fn without_statistics_the_guesses_apply() {
        let sel = Selectivity { stats: None };
        assert_eq!(sel.of(&bin("=", col("k"), lit(7.into(), "l"))), EQUALITY);
        assert_eq!(sel.of(&bin(">", col("k"), lit(7.into(), "l"))), RANGE);
    }

    #[test]
    fn dates_count_days() {
        assert_eq!(date_days("1970-01-01"), Some(0.0));
        assert_eq!(date_days("2000-03-01"), Some(11017.0));
        assert_eq!(date_days("1995-13-01"), None);
    }
}
