//! `REINDEX`, which DataFusion's parser does not know: PostgreSQL's `REINDEX INDEX name` and
//! `REINDEX TABLE name`, and SQLite's `REINDEX`, `REINDEX name` (a table or an index).

use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Error, Result};

/// What a `REINDEX` statement rebuilds.
#[derive(Debug, Clone, PartialEq)]
pub enum Reindex {
    /// `REINDEX INDEX name`.
    Index(ObjectName),
    /// `REINDEX TABLE name`: every index of the table.
    Table(ObjectName),
    /// SQLite's `REINDEX name`: the index of that name, else every index of the table.
    Named(ObjectName),
    /// `REINDEX` alone, `REINDEX DATABASE [name]` or `REINDEX SYSTEM [name]`: every index.
    All,
}

impl std::fmt::Display for Reindex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reindex::Index(n) => write!(f, "REINDEX INDEX {n}"),
            Reindex::Table(n) => write!(f, "REINDEX TABLE {n}"),
            Reindex::Named(n) => write!(f, "REINDEX {n}"),
            Reindex::All => write!(f, "REINDEX"),
        }
    }
}

/// Parses a `REINDEX` statement when the parser stands at one.
pub(crate) fn parse_reindex(p: &mut Parser) -> Result<Option<Reindex>> {
    if word(&p.peek_token().token).as_deref() != Some("REINDEX") {
        return Ok(None);
    }
    p.next_token();
    if p.peek_token().token == Token::LParen {
        return Err(Error::Unsupported("REINDEX options".into()));
    }
    let at_end = |p: &Parser| matches!(p.peek_token().token, Token::EOF | Token::SemiColon);
    if at_end(p) {
        return Ok(Some(Reindex::All));
    }
    let kind = word(&p.peek_token().token);
    let stmt = match kind.as_deref() {
        Some(k @ ("INDEX" | "TABLE" | "DATABASE" | "SYSTEM" | "SCHEMA")) => {
            let k = k.to_string();
            p.next_token();
            if word(&p.peek_token().token).as_deref() == Some("CONCURRENTLY") {
                return Err(Error::Unsupported("REINDEX ... CONCURRENTLY".into()));
            }
            match k.as_str() {
                "INDEX" => Reindex::Index(object_name(p)?),
                "TABLE" => Reindex::Table(object_name(p)?),
                "SCHEMA" => {
                    // One schema, `public`, holds every table.
                    object_name(p)?;
                    Reindex::All
                }
                _ => {
                    if !at_end(p) {
                        object_name(p)?;
                    }
                    Reindex::All
                }
            }
        }
        _ => Reindex::Named(object_name(p)?),
    };
    Ok(Some(stmt))
}

fn object_name(p: &mut Parser) -> Result<ObjectName> {
    p.parse_object_name(false).map_err(Error::from_parser)
}

/// An unquoted word, upper-cased.
fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;

    fn parse(sql: &str) -> Result<Option<Reindex>> {
        let mut p = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .map_err(Error::from_parser)?;
        parse_reindex(&mut p)
    }

    #[test]
    fn spellings() {
        let name = |s: &str| ObjectName::from(vec![datafusion::sql::sqlparser::ast::Ident::new(s)]);
        assert_eq!(parse("REINDEX").unwrap(), Some(Reindex::All));
        assert_eq!(
            parse("reindex index i").unwrap(),
            Some(Reindex::Index(name("i")))
        );
        assert_eq!(
            parse("REINDEX TABLE t").unwrap(),
            Some(Reindex::Table(name("t")))
        );
        assert_eq!(parse("REINDEX t").unwrap(), Some(Reindex::Named(name("t"))));
        assert_eq!(parse("REINDEX DATABASE db").unwrap(), Some(Reindex::All));
        assert_eq!(parse("REINDEX SYSTEM").unwrap(), Some(Reindex::All));
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert!(parse("REINDEX TABLE CONCURRENTLY t").is_err());
        assert!(parse("REINDEX (VERBOSE) TABLE t").is_err());
        assert!(parse("REINDEX TABLE").is_err());
    }
}
