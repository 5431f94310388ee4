//! The interactive shell, `-c` commands and scripts on standard input.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use phantomdb::{Connection, Database};
use rustyline::error::ReadlineError;

use crate::output::{self, Format};
use crate::split::{is_blank, split_statements};

struct Shell {
    conn: Connection,
    format: Format,
    timer: bool,
}

/// Entry point of the shell modes.
pub async fn run(
    db_path: Option<PathBuf>,
    commands: Vec<String>,
    format: Format,
    plugins: &crate::PluginOptions,
) -> Result<ExitCode> {
    let db = match &db_path {
        Some(p) => Database::open(p)?,
        None => Database::open_in_memory()?,
    };
    // A plugin that fails to load is reported; the shell starts with the others.
    crate::load_plugin_dirs(&db, plugins)?;
    let mut shell = Shell {
        conn: db.connect()?,
        format,
        timer: false,
    };
    if !commands.is_empty() {
        for sql in &commands {
            let ok = if sql.trim_start().starts_with('.') {
                match shell.meta(sql.trim()).await {
                    Ok(true) => true,
                    Ok(false) => return Ok(ExitCode::SUCCESS),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        false
                    }
                }
            } else {
                shell.run_sql(sql).await
            };
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !std::io::stdin().is_terminal() {
        let mut script = String::new();
        std::io::stdin().read_to_string(&mut script)?;
        return Ok(if shell.run_script(&script).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    shell.repl(db_path).await?;
    Ok(ExitCode::SUCCESS)
}

const HELP: &str = "\
Statements end with ';' and may span lines. Meta-commands (one per line):
  .help              show this help
  .tables            list tables and views
  .schema [TABLE]    show table definitions
  .mode table|csv|json   set the output format
  .timer on|off      show how long each statement takes
  .read FILE         run the SQL in FILE
  .quit / .exit      leave the shell";

impl Shell {
    /// Runs SQL text statement by statement, printing each result. Returns false on error.
    async fn run_sql(&mut self, sql: &str) -> bool {
        let statements = match phantomdb::sql::parse(sql) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: {e}");
                return false;
            }
        };
        // Buffered, and flushed after every batch and statement.
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        for stmt in statements {
            let start = Instant::now();
            let printed = match self.conn.execute_statement_stream(stmt).await {
                Ok(mut stream) => output::print_stream(&mut stdout, &mut stream, self.format).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = printed {
                if is_broken_pipe(&e) {
                    // The reader went away (`| head`): stop quietly, as sqlite3 does.
                    std::process::exit(0);
                }
                let _ = stdout.flush();
                eprintln!("Error: {e}");
                return false;
            }
            if self.timer {
                let _ = writeln!(stdout, "Run Time: {:.3}s", start.elapsed().as_secs_f64());
            }
            let _ = stdout.flush();
        }
        let _ = stdout.flush();
        true
    }

    /// Runs a script that may mix SQL and meta-commands. Like `sqlite3` and `psql`, an error
    /// is reported and the script goes on; returns false if any statement failed.
    async fn run_script(&mut self, script: &str) -> bool {
        let mut ok = true;
        let mut buffer = String::new();
        for line in script.lines() {
            if is_blank(&buffer) && line.trim_start().starts_with('.') {
                buffer.clear();
                match self.meta(line.trim()).await {
                    Ok(true) => continue,
                    Ok(false) => return ok,
                    Err(e) => {
                        eprintln!("Error: {e}");
                        ok = false;
                        continue;
                    }
                }
            }
            buffer.push_str(line);
            buffer.push('\n');
            let (statements, rest) = split_statements(&buffer);
            for sql in statements {
                ok &= self.run_sql(&sql).await;
            }
            buffer = rest;
        }
        if !is_blank(&buffer) {
            ok &= self.run_sql(&buffer).await;
        }
        ok
    }

    /// Handles a meta-command. Returns false when the shell should exit.
    async fn meta(&mut self, line: &str) -> Result<bool> {
        let mut parts = line.split_whitespace();
        let cmd = parts.next().unwrap_or("");
        let arg = parts.next();
        match (cmd, arg) {
            (".quit" | ".exit", _) => return Ok(false),
            (".help", _) => println!("{HELP}"),
            (".tables", _) => {
                // Each table with its storage engine; views are marked as such.
                let catalog = self.conn.catalog().await?;
                let names: Vec<String> = catalog
                    .names()
                    .map(|n| match catalog.get(n) {
                        Some(phantomdb::catalog::CatalogEntry::Table(t)) => {
                            format!("{n} ({})", t.engine)
                        }
                        _ => format!("{n} (view)"),
                    })
                    .collect();
                if !names.is_empty() {
                    println!("{}", names.join("  "));
                }
            }
            (".schema", table) => {
                let catalog = self.conn.catalog().await?;
                for t in catalog
                    .tables()
                    .filter(|t| table.is_none_or(|n| n == t.name))
                {
                    let cols: Vec<String> = t
                        .schema
                        .fields()
                        .iter()
                        .map(|f| {
                            let mut s = format!("{} {}", f.name(), sql_type_name(f.data_type()));
                            if !f.is_nullable() {
                                s.push_str(" NOT NULL");
                            }
                            if let Some(d) = t.defaults.get(f.name()) {
                                s.push_str(&format!(" DEFAULT {d}"));
                            }
                            s
                        })
                        .collect();
                    let mut body = cols.join(", ");
                    if !t.primary_key.is_empty() {
                        body.push_str(&format!(
                            ", PRIMARY KEY ({})",
                            t.primary_key_names().join(", ")
                        ));
                    }
                    println!("CREATE TABLE {} ({body}) USING {};", t.name, t.engine);
                }
                for v in catalog
                    .views()
                    .filter(|v| table.is_none_or(|n| n == v.name))
                {
                    println!("CREATE VIEW {} AS {};", v.name, v.query);
                }
            }
            (".mode", Some(m)) => self.format = m.parse().map_err(anyhow::Error::msg)?,
            (".timer", Some("on")) => self.timer = true,
            (".timer", Some("off")) => self.timer = false,
            (".read", Some(file)) => {
                let script = std::fs::read_to_string(file)?;
                Box::pin(self.run_script(&script)).await;
            }
            _ => anyhow::bail!("unknown or incomplete meta-command {line:?} (try .help)"),
        }
        Ok(true)
    }

    async fn repl(&mut self, db_path: Option<PathBuf>) -> Result<()> {
        let mut editor = rustyline::DefaultEditor::new()?;
        let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".phantomdb_history"));
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        println!(
            "PhantomDB {} ({}). Enter .help for help.",
            env!("CARGO_PKG_VERSION"),
            db_path.map_or_else(
                || "in-memory database".to_string(),
                |p| p.display().to_string()
            )
        );
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "phantomdb> "
            } else {
                "      ...> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    if buffer.is_empty() && line.trim_start().starts_with('.') {
                        let _ = editor.add_history_entry(line.as_str());
                        match self.meta(line.trim()).await {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => eprintln!("Error: {e}"),
                        }
                        continue;
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    let (statements, rest) = split_statements(&buffer);
                    if !statements.is_empty() {
                        let _ = editor.add_history_entry(buffer.trim());
                        for sql in statements {
                            self.run_sql(&sql).await;
                        }
                        buffer = if is_blank(&rest) { String::new() } else { rest };
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
        Ok(())
    }
}

/// The SQL spelling of an Arrow type, for `.schema`.
fn sql_type_name(ty: &phantomdb::arrow::datatypes::DataType) -> String {
    use phantomdb::arrow::datatypes::DataType as T;
    match ty {
        T::Boolean => "BOOLEAN".into(),
        T::Int8 => "TINYINT".into(),
        T::Int16 => "SMALLINT".into(),
        T::Int32 => "INT".into(),
        T::Int64 => "BIGINT".into(),
        T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => format!("{ty} /* unsigned */"),
        T::Float32 => "REAL".into(),
        T::Float64 => "DOUBLE".into(),
        T::Utf8 | T::Utf8View | T::LargeUtf8 => "TEXT".into(),
        T::Binary | T::BinaryView | T::LargeBinary => "BYTEA".into(),
        T::Date32 | T::Date64 => "DATE".into(),
        T::Timestamp(_, None) => "TIMESTAMP".into(),
        T::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        T::Decimal128(p, s) | T::Decimal256(p, s) => format!("DECIMAL({p}, {s})"),
        other => other.to_string(),
    }
}

/// Whether printing failed because standard output was closed.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
