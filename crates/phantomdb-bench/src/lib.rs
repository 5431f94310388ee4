//! Pieces shared by the `phantomdb-bench` driver and the criterion benches.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// SQL name of the built-in stand-in for `is_prime`.
pub const BUILTIN_IS_PRIME: &str = "is_prime_builtin";

/// Trial division by 6k±1: the same algorithm as the bundled `math_functions` plugin's
/// `is_prime`, so that plugin and built-in do the same work per row.
pub fn is_prime(n: i64) -> bool {
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

/// `is_prime_builtin(BIGINT) -> BOOLEAN` as a DataFusion scalar UDF.
///
/// It stands in for a function compiled into PhantomDB: it runs in-process on the Arrow arrays
/// DataFusion hands it, with no plugin ABI in between. Comparing it with the plugin's `is_prime`
/// measures what the plugin boundary costs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IsPrimeBuiltin {
    signature: Signature,
}

impl Default for IsPrimeBuiltin {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IsPrimeBuiltin {
    fn name(&self) -> &str {
        BUILTIN_IS_PRIME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{BUILTIN_IS_PRIME} takes one argument");
        };
        let array = arg.to_array(args.number_rows)?;
        if array.data_type() != &DataType::Int64 {
            return exec_err!(
                "{BUILTIN_IS_PRIME} expects BIGINT, got {}",
                array.data_type()
            );
        }
        let out: BooleanArray = array
            .as_primitive::<Int64Type>()
            .iter()
            .map(|x| x.map(is_prime))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

/// The built-in `is_prime_builtin` UDF.
pub fn is_prime_builtin_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(IsPrimeBuiltin::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let primes: Vec<i64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(!is_prime(-7));
        assert!(is_prime(1_000_003));
        assert_eq!((1..=100_000).filter(|&n| is_prime(n)).count(), 9592);
    }
}
