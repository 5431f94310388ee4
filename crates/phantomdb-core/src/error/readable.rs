//! Messages for users from the parser's, DataFusion's and Arrow's errors: PostgreSQL's
//! wording where there is one (`syntax error at or near "SELEC"`, `division by zero`,
//! `column "x" does not exist`), never a Rust type name or `Debug` output.

use arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::{Error, Position};

/// The message of a syntax error at the end of the statement.
pub(super) const AT_END_OF_INPUT: &str = "syntax error at end of input";

/// A parser error as [`Error::Syntax`]. The parser's text is `Expected: X, found: Y at Line:
/// L, Column: C`; its parts become the message, what was expected and the position.
pub(super) fn syntax_error(e: &ParserError) -> Error {
    let text = match e {
        ParserError::ParserError(s) | ParserError::TokenizerError(s) => s.as_str(),
        ParserError::RecursionLimitExceeded => {
            return Error::Limit(
                super::SqlState::StatementTooComplex,
                "statement is nested too deeply (more than 50 levels of parentheses or \
                 subqueries)"
                    .into(),
            )
        }
    };
    let (text, position) = split_location(text);
    let (message, expected) = match text.split_once(", found: ") {
        Some((expected, found)) => {
            let expected = expected.strip_prefix("Expected: ").unwrap_or(expected);
            (near(found), Some(expected.to_string()))
        }
        None => (lower_first(text), None),
    };
    Error::Syntax {
        message,
        expected,
        position,
    }
}

/// A syntax error at a token the statement should not have had.
pub(super) fn unexpected_token(found: &TokenWithSpan) -> Error {
    let start = found.span.start;
    let message = if found.token == Token::EOF {
        AT_END_OF_INPUT.to_string()
    } else {
        near(&found.token.to_string())
    };
    Error::Syntax {
        message,
        expected: Some("end of statement".into()),
        position: (start.line > 0).then_some(Position {
            line: start.line,
            column: start.column,
        }),
    }
}

/// `syntax error at or near "TOKEN"`, or at end of input.
fn near(found: &str) -> String {
    if found == "EOF" {
        AT_END_OF_INPUT.to_string()
    } else {
        format!("syntax error at or near \"{found}\"")
    }
}

/// Splits ` at Line: L, Column: C` off the end of a parser message.
fn split_location(text: &str) -> (&str, Option<Position>) {
    let Some((head, tail)) = text.rsplit_once(" at Line: ") else {
        return (text, None);
    };
    let Some((line, column)) = tail.split_once(", Column: ") else {
        return (text, None);
    };
    match (line.trim().parse(), column.trim().parse()) {
        (Ok(line), Ok(column)) => (head, Some(Position { line, column })),
        _ => (text, None),
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if !chars.as_str().starts_with(|d: char| d.is_uppercase()) => {
            c.to_lowercase().chain(chars).collect()
        }
        _ => s.to_string(),
    }
}

/// The message of a DataFusion error on one line. Errors raised by PhantomDB inside
/// DataFusion callbacks come back wrapped in `External` and keep their own message; context
/// DataFusion adds ("Error during planning: ", "Arrow error: ") is left out.
pub(super) fn datafusion_message(e: &DataFusionError) -> String {
    let text = match e {
        DataFusionError::External(inner) => {
            if let Some(ours) = inner.downcast_ref::<Error>() {
                return ours.to_string();
            }
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                return datafusion_message(df);
            }
            if let Some(arrow) = inner.downcast_ref::<ArrowError>() {
                return arrow_message(arrow);
            }
            inner.to_string()
        }
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            return datafusion_message(inner)
        }
        DataFusionError::Shared(inner) => return datafusion_message(inner),
        DataFusionError::Collection(errors) => match errors.first() {
            Some(first) => return datafusion_message(first),
            None => "unknown error".to_string(),
        },
        DataFusionError::ArrowError(a, _) => return arrow_message(a),
        DataFusionError::SQL(p, _) => return syntax_error(p).to_string(),
        DataFusionError::SchemaError(s, _) => schema_message(s),
        DataFusionError::Plan(m) | DataFusionError::Execution(m) => m.clone(),
        DataFusionError::NotImplemented(m) => format!("not supported: {m}"),
        DataFusionError::Configuration(m) => format!("invalid setting: {m}"),
        DataFusionError::Internal(m) => format!("internal error: {m}"),
        DataFusionError::ResourcesExhausted(m) => format!("out of memory: {m}"),
        DataFusionError::IoError(io) => format!("I/O error: {io}"),
        DataFusionError::ExecutionJoin(j) => format!("a query task failed: {j}"),
        other => other.strip_backtrace(),
    };
    one_line(&text)
}

fn schema_message(e: &SchemaError) -> String {
    match e {
        SchemaError::FieldNotFound { field, .. } => {
            format!("column \"{}\" does not exist", field.flat_name())
        }
        SchemaError::AmbiguousReference { field } => {
            format!("column reference \"{}\" is ambiguous", field.flat_name())
        }
        other => lower_first(&other.to_string()),
    }
}

/// Arrow's errors in PostgreSQL's words where it has them.
fn arrow_message(e: &ArrowError) -> String {
    match e {
        ArrowError::DivideByZero => "division by zero".into(),
        ArrowError::CastError(m) => cast_message(m),
        ArrowError::ArithmeticOverflow(m) => {
            format!("value out of range: {}", lower_first(m.trim()))
        }
        ArrowError::ParseError(m)
        | ArrowError::ComputeError(m)
        | ArrowError::InvalidArgumentError(m)
        | ArrowError::SchemaError(m)
        | ArrowError::JsonError(m)
        | ArrowError::CsvError(m)
        | ArrowError::NotYetImplemented(m) => one_line(&lower_first(m)),
        ArrowError::ExternalError(inner) => match inner.downcast_ref::<Error>() {
            Some(ours) => ours.to_string(),
            None => match inner.downcast_ref::<DataFusionError>() {
                Some(df) => datafusion_message(df),
                None => one_line(&inner.to_string()),
            },
        },
        ArrowError::IoError(m, _) => format!("I/O error: {m}"),
        other => one_line(&lower_first(&other.to_string())),
    }
}

/// `Cannot cast string 'x' to value of Int32 type` → `invalid input syntax for type
/// integer: "x"`, as PostgreSQL says it.
fn cast_message(m: &str) -> String {
    if let Some(rest) = m.strip_prefix("Cannot cast string '") {
        if let Some((value, ty)) = rest.rsplit_once("' to value of ") {
            let ty = ty.strip_suffix(" type").unwrap_or(ty);
            return format!(
                "invalid input syntax for type {}: \"{value}\"",
                sql_type_name(ty)
            );
        }
    }
    one_line(&lower_first(m))
}

/// The SQL name of an Arrow type as Arrow prints it.
fn sql_type_name(arrow: &str) -> String {
    let name = match arrow {
        "Int8" | "Int16" | "UInt8" => "smallint",
        "Int32" | "UInt16" => "integer",
        "Int64" | "UInt32" | "UInt64" => "bigint",
        "Float16" | "Float32" => "real",
        "Float64" => "double precision",
        "Boolean" => "boolean",
        "Date32" | "Date64" => "date",
        "Utf8" | "LargeUtf8" | "Utf8View" => "text",
        other if other.starts_with("Decimal") => "numeric",
        other if other.starts_with("Timestamp") => "timestamp",
        other if other.starts_with("Time") => "time",
        other if other.starts_with("Interval") => "interval",
        other => return other.to_lowercase(),
    };
    name.to_string()
}

/// The lines of a message joined by single spaces (DataFusion indents continuation lines
/// with tabs).
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_messages_become_postgres_syntax_errors() {
        let e = syntax_error(&ParserError::ParserError(
            "Expected: an SQL statement, found: SELEC at Line: 1, Column: 1".into(),
        ));
        assert_eq!(e.to_string(), "syntax error at or near \"SELEC\"");
        assert_eq!(e.position(), Some(Position { line: 1, column: 1 }));
        assert_eq!(e.detail().as_deref(), Some("expected an SQL statement"));
        let e = syntax_error(&ParserError::ParserError(
            "Expected: an expression, found: EOF".into(),
        ));
        assert_eq!(e.to_string(), AT_END_OF_INPUT);
        assert_eq!(
            e.at_end_of("SELECT 1 +\n  ").position(),
            Some(Position {
                line: 1,
                column: 11
            })
        );
        let e = syntax_error(&ParserError::TokenizerError(
            "Unterminated string literal at Line: 2, Column: 8".into(),
        ));
        assert_eq!(e.to_string(), "unterminated string literal");
        assert_eq!(e.position(), Some(Position { line: 2, column: 8 }));
    }

    #[test]
    fn arrow_messages() {
        assert_eq!(arrow_message(&ArrowError::DivideByZero), "division by zero");
        assert_eq!(
            arrow_message(&ArrowError::CastError(
                "Cannot cast string 'x' to value of Int32 type".into()
            )),
            "invalid input syntax for type integer: \"x\""
        );
    }

    #[test]
    fn char_offsets() {
        let sql = "SELECT 1;\nSELEC é x";
        let p = Position { line: 2, column: 9 };
        assert_eq!(sql.chars().nth(p.char_offset(sql).unwrap()), Some('x'));
        assert_eq!(Position::end_of("ab\ncd"), Position { line: 2, column: 3 });
    }
}
