//! PhantomDB bundled plugin: number-theory scalar functions and a `geometric_mean` aggregate.
//!
//! * `gcd(a BIGINT, b BIGINT) -> BIGINT`, `lcm(a, b) -> BIGINT` (NULL on overflow)
//! * `factorial(n BIGINT) -> BIGINT` (NULL for n < 0 or n > 20)
//! * `is_prime(n BIGINT) -> BOOLEAN`
//! * `fibonacci(n BIGINT) -> BIGINT` (NULL for n < 0 or n > 92)
//! * `geometric_mean(x DOUBLE) -> DOUBLE` (aggregate; ignores NULLs, NULL if any value <= 0 or no
//!   rows)
//! * `cosine_similarity(a DOUBLE[], b DOUBLE[]) -> DOUBLE` (NULL when either is NULL, holds a
//!   NULL or is all zeros; an error when their lengths differ): list arguments, declared
//!   through `phantomdb.functions/2` as Arrow C schemas

use phantomdb_plugin_sdk::prelude::*;

fn gcd(a: i64, b: i64) -> Option<i64> {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    i64::try_from(a).ok()
}

fn lcm(a: i64, b: i64) -> Option<i64> {
    if a == 0 || b == 0 {
        return Some(0);
    }
    let g = gcd(a, b)?;
    (a / g).checked_mul(b)?.checked_abs()
}

fn factorial(n: i64) -> Option<i64> {
    if !(0..=20).contains(&n) {
        return None;
    }
    Some((1..=n).product())
}

fn is_prime(n: i64) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n % 2 == 0 || n % 3 == 0 {
        return false;
    }
    let n = n as u64;
    let mut i: u64 = 5;
    while i * i <= n {
        if n.is_multiple_of(i) || n.is_multiple_of(i + 2) {
            return false;
        }
        i += 6;
    }
    true
}

fn fibonacci(n: i64) -> Option<i64> {
    if !(0..=92).contains(&n) {
        return None;
    }
    let (mut a, mut b) = (0i64, 1i64);
    for _ in 0..n {
        // `b` runs one step ahead and may wrap at fib(93); `a` (<= fib(92)) never does.
        (a, b) = (b, a.wrapping_add(b));
    }
    Some(a)
}

fn binary_i64(
    f: fn(i64, i64) -> Option<i64>,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef, String> {
    move |args, _rows| {
        let a = args[0].as_primitive::<Int64Type>();
        let b = args[1].as_primitive::<Int64Type>();
        let out: Int64Array = a.iter().zip(b.iter()).map(|(x, y)| f(x?, y?)).collect();
        Ok(Arc::new(out) as ArrayRef)
    }
}

fn unary_i64(f: fn(i64) -> Option<i64>) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef, String> {
    move |args, _rows| {
        let a = args[0].as_primitive::<Int64Type>();
        let out: Int64Array = a.iter().map(|x| f(x?)).collect();
        Ok(Arc::new(out) as ArrayRef)
    }
}

/// `geometric_mean(x)`: exp(avg(ln x)). State: (sum of ln x, count).
struct GeometricMean;

impl AggregateFunction for GeometricMean {
    fn name(&self) -> &str {
        "geometric_mean"
    }
    fn description(&self) -> &str {
        "Geometric mean of positive values"
    }
    fn signature(&self) -> Signature {
        Signature::exact(vec![TypeCode::Float64], TypeCode::Float64)
    }
    fn state_types(&self) -> Vec<ValueType> {
        vec![
            TypeCode::Float64.into(),
            TypeCode::Int64.into(),
            TypeCode::Boolean.into(),
        ]
    }
    fn create_accumulator(&self) -> Result<Box<dyn Accumulator>, String> {
        Ok(Box::new(GeoAcc::default()))
    }
}

#[derive(Default)]
struct GeoAcc {
    log_sum: f64,
    count: i64,
    /// Saw a value <= 0: the result is NULL.
    invalid: bool,
}

impl Accumulator for GeoAcc {
    fn update(&mut self, args: &[ArrayRef]) -> Result<(), String> {
        for v in args[0].as_primitive::<Float64Type>().iter().flatten() {
            if v <= 0.0 {
                self.invalid = true;
            } else {
                self.log_sum += v.ln();
                self.count += 1;
            }
        }
        Ok(())
    }

    fn merge(&mut self, states: &[ArrayRef]) -> Result<(), String> {
        let sums = states[0].as_primitive::<Float64Type>();
        let counts = states[1].as_primitive::<Int64Type>();
        let invalid = states[2].as_boolean();
        for i in 0..sums.len() {
            if sums.is_valid(i) {
                self.log_sum += sums.value(i);
            }
            if counts.is_valid(i) {
                self.count += counts.value(i);
            }
            if invalid.is_valid(i) && invalid.value(i) {
                self.invalid = true;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ArrayRef>, String> {
        Ok(vec![
            Arc::new(Float64Array::from(vec![self.log_sum])),
            Arc::new(Int64Array::from(vec![self.count])),
            Arc::new(BooleanArray::from(vec![self.invalid])),
        ])
    }

    fn evaluate(&mut self) -> Result<ArrayRef, String> {
        let v = if self.invalid || self.count == 0 {
            None
        } else {
            Some((self.log_sum / self.count as f64).exp())
        };
        Ok(Arc::new(Float64Array::from(vec![v])))
    }
}

/// A list of doubles, as `cosine_similarity` declares its arguments.
fn double_list() -> ValueType {
    ValueType::arrow(DataType::List(Arc::new(Field::new_list_field(
        DataType::Float64,
        true,
    ))))
}

/// The cosine of the angle between two vectors (`None` when either holds a NULL or is all
/// zeros).
fn cosine(a: &Float64Array, b: &Float64Array) -> Result<Option<f64>, String> {
    if a.len() != b.len() {
        return Err(format!(
            "cosine_similarity of vectors of different lengths ({} and {})",
            a.len(),
            b.len()
        ));
    }
    if a.null_count() > 0 || b.null_count() > 0 {
        return Ok(None);
    }
    let dot = |x: &[f64], y: &[f64]| -> f64 { x.iter().zip(y).map(|(p, q)| p * q).sum() };
    let (a, b) = (a.values().as_ref(), b.values().as_ref());
    let norms = (dot(a, a) * dot(b, b)).sqrt();
    Ok((norms > 0.0).then(|| dot(a, b) / norms))
}

fn cosine_similarity(args: &[ArrayRef], _rows: usize) -> Result<ArrayRef, String> {
    let (a, b) = (args[0].as_list::<i32>(), args[1].as_list::<i32>());
    let out: Float64Array = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => cosine(x.as_primitive(), y.as_primitive()),
            _ => Ok(None),
        })
        .collect::<Result<_, String>>()?;
    Ok(Arc::new(out) as ArrayRef)
}

#[derive(Default)]
struct MathPlugin;

impl Plugin for MathPlugin {
    fn register(&self, registrar: &mut Registrar) {
        registrar.scalar_functions({
            use TypeCode::{Boolean, Int64};
            vec![
                scalar_fn(
                    "gcd",
                    Signature::exact(vec![Int64, Int64], Int64),
                    binary_i64(gcd),
                ),
                scalar_fn(
                    "lcm",
                    Signature::exact(vec![Int64, Int64], Int64),
                    binary_i64(lcm),
                ),
                scalar_fn(
                    "factorial",
                    Signature::exact(vec![Int64], Int64),
                    unary_i64(factorial),
                ),
                scalar_fn(
                    "fibonacci",
                    Signature::exact(vec![Int64], Int64),
                    unary_i64(fibonacci),
                ),
                scalar_fn(
                    "is_prime",
                    Signature::exact(vec![Int64], Boolean),
                    |args, _| {
                        let a = args[0].as_primitive::<Int64Type>();
                        let out: BooleanArray = a.iter().map(|x| x.map(is_prime)).collect();
                        Ok(Arc::new(out) as ArrayRef)
                    },
                ),
                scalar_fn(
                    "cosine_similarity",
                    Signature::exact(vec![double_list(), double_list()], TypeCode::Float64),
                    cosine_similarity,
                ),
            ]
        });
        registrar.aggregate_functions(vec![Box::new(GeometricMean)]);
    }
}

phantomdb_plugin! {
    name: "math_functions",
    version: env!("CARGO_PKG_VERSION"),
    description: "Number theory functions: gcd, lcm, factorial, is_prime, fibonacci, geometric_mean, cosine_similarity",
    host_version: ">=0.1, <0.2",
    plugin: MathPlugin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosines() {
        let a = Float64Array::from(vec![3.0, 4.0]);
        let b = Float64Array::from(vec![4.0, 3.0]);
        assert_eq!(cosine(&a, &b), Ok(Some(24.0 / 25.0)));
        assert_eq!(cosine(&a, &a), Ok(Some(1.0)));
        assert!(cosine(&a, &Float64Array::from(vec![1.0])).is_err());
        let with_null = Float64Array::from(vec![Some(1.0), None]);
        assert_eq!(cosine(&a, &with_null), Ok(None));
        assert_eq!(cosine(&a, &Float64Array::from(vec![0.0, 0.0])), Ok(None));
    }

    #[test]
    fn number_theory() {
        assert_eq!(gcd(12, 18), Some(6));
        assert_eq!(gcd(i64::MIN, 0), None);
        assert_eq!(lcm(4, 6), Some(12));
        assert_eq!(lcm(i64::MAX, 2), None);
        assert_eq!(factorial(5), Some(120));
        assert_eq!(factorial(21), None);
        assert!(is_prime(97));
        assert!(!is_prime(1));
        assert_eq!(fibonacci(10), Some(55));
        assert_eq!(fibonacci(92), Some(7_540_113_804_746_346_429));
    }
}
