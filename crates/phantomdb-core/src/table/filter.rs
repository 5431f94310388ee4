//! DataFusion filters in the SDK's [`Filter`] form, which engines receive with a scan.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Operator};
use phantomdb_plugin_sdk::storage::{CompareOp, Filter, Value};

/// Translates a DataFusion filter into the SDK's [`Filter`], when it has that form.
pub(crate) fn to_filter(expr: &Expr) -> Option<Filter> {
    let b = |e: &Expr| to_filter(e).map(Box::new);
    Some(match expr {
        Expr::Column(c) => Filter::Column(c.name.clone()),
        Expr::Literal(v, _) => Filter::Literal(to_value(v)?),
        Expr::BinaryExpr(be) => {
            let op = match be.op {
                Operator::Eq => CompareOp::Eq,
                Operator::NotEq => CompareOp::NotEq,
                Operator::Lt => CompareOp::Lt,
                Operator::LtEq => CompareOp::LtEq,
                Operator::Gt => CompareOp::Gt,
                Operator::GtEq => CompareOp::GtEq,
                Operator::And => {
                    return Some(Filter::And(vec![
                        to_filter(&be.left)?,
                        to_filter(&be.right)?,
                    ]))
                }
                Operator::Or => {
                    return Some(Filter::Or(vec![
                        to_filter(&be.left)?,
                        to_filter(&be.right)?,
                    ]))
                }
                _ => return None,
            };
            Filter::Compare {
                op,
                left: b(&be.left)?,
                right: b(&be.right)?,
            }
        }
        Expr::Not(e) => Filter::Not(b(e)?),
        Expr::IsNull(e) => Filter::IsNull(b(e)?),
        Expr::IsNotNull(e) => Filter::IsNotNull(b(e)?),
        Expr::InList(l) => Filter::InList {
            expr: b(&l.expr)?,
            list: l.list.iter().map(to_filter).collect::<Option<Vec<_>>>()?,
            negated: l.negated,
        },
        Expr::Between(bt) => {
            let ge = Filter::Compare {
                op: CompareOp::GtEq,
                left: b(&bt.expr)?,
                right: b(&bt.low)?,
            };
            let le = Filter::Compare {
                op: CompareOp::LtEq,
                left: b(&bt.expr)?,
                right: b(&bt.high)?,
            };
            let inside = Filter::And(vec![ge, le]);
            if bt.negated {
                Filter::Not(Box::new(inside))
            } else {
                inside
            }
        }
        _ => return None,
    })
}

pub(crate) fn to_value(v: &ScalarValue) -> Option<Value> {
    if v.is_null() {
        return Some(Value::Null);
    }
    Some(match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(x)) => Value::Int(i64::from(*x)),
        ScalarValue::Int16(Some(x)) => Value::Int(i64::from(*x)),
        ScalarValue::Int32(Some(x)) => Value::Int(i64::from(*x)),
        ScalarValue::Int64(Some(x)) => Value::Int(*x),
        ScalarValue::UInt8(Some(x)) => Value::UInt(u64::from(*x)),
        ScalarValue::UInt16(Some(x)) => Value::UInt(u64::from(*x)),
        ScalarValue::UInt32(Some(x)) => Value::UInt(u64::from(*x)),
        ScalarValue::UInt64(Some(x)) => Value::UInt(*x),
        ScalarValue::Float32(Some(x)) => Value::Float(f64::from(*x)),
        ScalarValue::Float64(Some(x)) => Value::Float(*x),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::Str(s.clone()),
        ScalarValue::Date32(Some(d)) => Value::Date32(*d),
        ScalarValue::TimestampMicrosecond(Some(t), None) => Value::TimestampUs(*t),
        _ => return None,
    })
}
