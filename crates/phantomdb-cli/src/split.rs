//! Splitting a script into statements at top-level semicolons (outside quotes and comments).

/// The complete statements of `text`, and the unfinished rest (no terminating `;` yet).
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        match c {
            '\'' | '"' => {
                // Quoted string or identifier; a doubled quote is an escaped quote.
                while let Some(d) = chars.next() {
                    current.push(d);
                    if d == c {
                        if chars.peek() == Some(&c) {
                            current.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    current.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for d in chars.by_ref() {
                    current.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            ';' => {
                if !is_blank(&current) {
                    out.push(std::mem::take(&mut current));
                } else {
                    current.clear();
                }
            }
            _ => {}
        }
    }
    (out, current)
}

/// Whether `sql` holds nothing but whitespace, comments and semicolons.
pub fn is_blank(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest.is_empty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let (stmts, rest) = split_statements("SELECT ';'; -- a;b\nSELECT \"x;\" /* ; */; SELECT 3");
        assert_eq!(
            stmts,
            vec!["SELECT ';';", " -- a;b\nSELECT \"x;\" /* ; */;"]
        );
        assert_eq!(rest, " SELECT 3");
    }

    #[test]
    fn escaped_quotes_stay_inside_the_string() {
        let (stmts, rest) = split_statements("SELECT 'it''s;'; ");
        assert_eq!(stmts, vec!["SELECT 'it''s;';"]);
        assert!(is_blank(&rest));
    }
}
