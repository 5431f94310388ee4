//! Splitting a script into statements at top-level semicolons (outside quotes, comments and
//! dollar-quoted strings).

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
            '$' => {
                // A dollar-quoted string, `$$...$$` or `$tag$...$tag$` (not `$1`).
                let mut tag = String::from("$");
                let mut ahead = chars.clone();
                while let Some(&d) = ahead.peek() {
                    if d == '$' {
                        tag.push(d);
                        break;
                    }
                    if !(d.is_alphanumeric() || d == '_') || (tag.len() == 1 && d.is_ascii_digit())
                    {
                        break;
                    }
                    tag.push(d);
                    ahead.next();
                }
                if tag.len() < 2 || !tag.ends_with('$') {
                    continue;
                }
                for _ in 1..tag.chars().count() {
                    if let Some(d) = chars.next() {
                        current.push(d);
                    }
                }
                let body = current.len();
                for d in chars.by_ref() {
                    current.push(d);
                    if d == '$' && current.len() >= body + tag.len() && current.ends_with(&tag) {
                        break;
                    }
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
    fn dollar_quotes_hide_semicolons() {
        let (stmts, rest) =
            split_statements("SELECT $$a;b$$; SELECT $t$ $$;$ $t$, $1; SELECT $$$$; SELECT $");
        assert_eq!(
            stmts,
            vec![
                "SELECT $$a;b$$;",
                " SELECT $t$ $$;$ $t$, $1;",
                " SELECT $$$$;"
            ]
        );
        assert_eq!(rest, " SELECT $");
        let (stmts, rest) = split_statements("SELECT $$;");
        assert!(stmts.is_empty());
        assert_eq!(rest, "SELECT $$;");
    }

    #[test]
    fn escaped_quotes_stay_inside_the_string() {
        let (stmts, rest) = split_statements("SELECT 'it''s;'; ");
        assert_eq!(stmts, vec!["SELECT 'it''s;';"]);
        assert!(is_blank(&rest));
    }
}
