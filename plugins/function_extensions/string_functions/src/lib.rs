//! PhantomDB bundled plugin: string functions.
//!
//! * `levenshtein(a TEXT, b TEXT) -> BIGINT` (edit distance in Unicode scalar values)
//! * `soundex(s TEXT) -> TEXT` (American Soundex, e.g. `Robert` -> `R163`)
//! * `slugify(s TEXT) -> TEXT` (lower-case ASCII words joined by `-`)
//! * table function `split_to_rows(text TEXT, sep TEXT)` -> one `Utf8` column `value`
//!
//! Text arrives as Arrow `Utf8` (the host casts `Utf8View`/`LargeUtf8` before calling).

use phantomdb_plugin_sdk::prelude::*;

fn levenshtein(a: &str, b: &str) -> i64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] as i64
}

fn soundex_code(c: char) -> Option<char> {
    Some(match c.to_ascii_lowercase() {
        'b' | 'f' | 'p' | 'v' => '1',
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => '2',
        'd' | 't' => '3',
        'l' => '4',
        'm' | 'n' => '5',
        'r' => '6',
        _ => return None,
    })
}

fn soundex(s: &str) -> String {
    let mut letters = s.chars().filter(|c| c.is_ascii_alphabetic());
    let Some(first) = letters.next() else {
        return String::new();
    };
    let mut out = String::with_capacity(4);
    out.push(first.to_ascii_uppercase());
    let mut last = soundex_code(first);
    for c in letters {
        let code = soundex_code(c);
        match code {
            Some(d) if code != last => {
                out.push(d);
                if out.len() == 4 {
                    break;
                }
            }
            _ => {}
        }
        // 'h' and 'w' do not separate equal codes; vowels do.
        if !matches!(c.to_ascii_lowercase(), 'h' | 'w') {
            last = code;
        }
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    out
}

fn unary_str(f: fn(&str) -> String) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef, String> {
    move |args, _| {
        let a = args[0].as_string::<i32>();
        let out: StringArray = a.iter().map(|v| v.map(f)).collect();
        Ok(Arc::new(out) as ArrayRef)
    }
}

/// `split_to_rows(text, sep)`: one row per piece.
struct SplitToRows;

impl TableFunction for SplitToRows {
    fn name(&self) -> &str {
        "split_to_rows"
    }
    fn description(&self) -> &str {
        "Splits text by a separator into one row per piece (column `value`)"
    }
    fn signature(&self) -> Signature {
        Signature::table(vec![TypeCode::Utf8, TypeCode::Utf8])
    }
    fn call(&self, args: &[Literal]) -> Result<TableOutput, String> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Utf8,
            false,
        )]));
        let (text, sep) = match (&args[0], &args[1]) {
            (Literal::Null, _) | (_, Literal::Null) => return Ok((schema, Vec::new())),
            (Literal::Utf8(t), Literal::Utf8(s)) => (t.as_str(), s.as_str()),
            _ => return Err("split_to_rows(text, sep) expects two text arguments".to_string()),
        };
        let pieces: Vec<&str> = if sep.is_empty() {
            vec![text]
        } else {
            text.split(sep).collect()
        };
        let column: ArrayRef = Arc::new(StringArray::from(pieces));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![column]).map_err(|e| e.to_string())?;
        Ok((schema, vec![batch]))
    }
}

#[derive(Default)]
struct StringPlugin;

impl Plugin for StringPlugin {
    fn register(&self, registrar: &mut Registrar) {
        registrar.scalar_functions({
            use TypeCode::{Int64, Utf8};
            vec![
                scalar_fn(
                    "levenshtein",
                    Signature::exact(vec![Utf8, Utf8], Int64),
                    |args, _| {
                        let a = args[0].as_string::<i32>();
                        let b = args[1].as_string::<i32>();
                        let out: Int64Array = a
                            .iter()
                            .zip(b.iter())
                            .map(|(x, y)| Some(levenshtein(x?, y?)))
                            .collect();
                        Ok(Arc::new(out) as ArrayRef)
                    },
                ),
                scalar_fn(
                    "soundex",
                    Signature::exact(vec![Utf8], Utf8),
                    unary_str(soundex),
                ),
                scalar_fn(
                    "slugify",
                    Signature::exact(vec![Utf8], Utf8),
                    unary_str(slugify),
                ),
            ]
        });
        registrar.table_functions(vec![Box::new(SplitToRows)]);
    }
}

phantomdb_plugin! {
    name: "string_functions",
    version: env!("CARGO_PKG_VERSION"),
    description: "String functions: levenshtein, soundex, slugify, split_to_rows",
    host_version: ">=0.1, <0.2",
    plugin: StringPlugin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(soundex("Robert"), "R163");
        assert_eq!(soundex("Rupert"), "R163");
        assert_eq!(soundex("Ashcraft"), "A261");
        assert_eq!(soundex("Tymczak"), "T522");
        assert_eq!(soundex("Pfister"), "P236");
        assert_eq!(slugify("  Hello, World! 2024 "), "hello-world-2024");
    }
}
