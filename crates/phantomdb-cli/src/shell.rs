//! The interactive shell, `-c` commands and scripts on standard input.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use phantomdb::arrow::util::display::array_value_to_string;
use phantomdb::{Connection, Database};
use rustyline::error::ReadlineError;

use crate::output::{self, Format};
use crate::split::{is_blank, split_statements};

struct Shell {
    conn: Connection,
    format: Format,
    timer: bool,
    /// At a terminal: Ctrl-C cancels the running statement.
    interactive: bool,
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
        interactive: false,
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
    shell.interactive = true;
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
        let statements = match phantomdb::parse(sql) {
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
            let watcher = self
                .interactive
                .then(|| crate::interrupt::Watcher::start(self.conn.cancel_handle()));
            let printed = match self.conn.execute_statement_stream(stmt).await {
                Ok(mut stream) => output::print_stream(&mut stdout, &mut stream, self.format).await,
                Err(e) => Err(e.into()),
            };
            let interrupted = watcher.as_ref().is_some_and(|w| w.fired());
            drop(watcher);
            if let Err(e) = printed {
                if is_broken_pipe(&e) {
                    // The reader went away (`| head`): stop quietly, as sqlite3 does.
                    std::process::exit(0);
                }
                let _ = stdout.flush();
                if interrupted {
                    eprintln!("Interrupted");
                } else {
                    eprintln!("Error: {e}");
                }
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

    /// Rows of a query on PhantomDB's system tables, every value as text.
    async fn text_rows(&self, sql: &str) -> Result<Vec<Vec<String>>> {
        let result = self.conn.execute_async(sql).await?;
        let mut rows = Vec::new();
        for batch in &result.batches {
            for r in 0..batch.num_rows() {
                let row = batch
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, r))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// `.schema [TABLE]`: `CREATE TABLE` and `CREATE VIEW` statements from the system tables.
    async fn print_schema(&self, only: Option<&str>) -> Result<()> {
        let wanted = |name: &str| only.is_none_or(|n| n == name);
        let columns = self
            .text_rows(
                "SELECT table_name, name, type, not_null, \"default\", key_position \
                 FROM phantomdb_columns() ORDER BY table_name, CAST(position AS INT)",
            )
            .await?;
        let tables = self
            .text_rows("SELECT name, engine FROM phantomdb_tables() ORDER BY name")
            .await?;
        for t in tables.iter().filter(|t| wanted(&t[0])) {
            let mine: Vec<&Vec<String>> = columns.iter().filter(|c| c[0] == t[0]).collect();
            let mut body: Vec<String> = mine
                .iter()
                .map(|c| {
                    let mut s = format!("{} {}", c[1], c[2]);
                    if c[3] == "true" {
                        s.push_str(" NOT NULL");
                    }
                    if !c[4].is_empty() {
                        s.push_str(&format!(" DEFAULT {}", c[4]));
                    }
                    s
                })
                .collect();
            let mut key: Vec<(u32, &str)> = mine
                .iter()
                .filter_map(|c| Some((c[5].parse().ok()?, c[1].as_str())))
                .collect();
            key.sort();
            if !key.is_empty() {
                let names: Vec<&str> = key.iter().map(|(_, n)| *n).collect();
                body.push(format!("PRIMARY KEY ({})", names.join(", ")));
            }
            println!(
                "CREATE TABLE {} ({}) USING {};",
                t[0],
                body.join(", "),
                t[1]
            );
        }
        let views = self
            .text_rows("SELECT name, query FROM phantomdb_views() ORDER BY name")
            .await?;
        for v in views.iter().filter(|v| wanted(&v[0])) {
            println!("CREATE VIEW {} AS {};", v[0], v[1]);
        }
        Ok(())
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
                let mut names: Vec<(String, String)> = self
                    .text_rows("SELECT name, engine FROM phantomdb_tables()")
                    .await?
                    .into_iter()
                    .map(|r| (r[0].clone(), r[1].clone()))
                    .collect();
                for v in self.text_rows("SELECT name FROM phantomdb_views()").await? {
                    names.push((v[0].clone(), "view".into()));
                }
                names.sort();
                let shown: Vec<String> = names.iter().map(|(n, e)| format!("{n} ({e})")).collect();
                if !shown.is_empty() {
                    println!("{}", shown.join("  "));
                }
            }
            (".schema", table) => self.print_schema(table).await?,
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
        // After the editor, which installs a SIGINT handler of its own for as long as it lives
        // (at the prompt the terminal is raw and Ctrl-C is a key, not a signal).
        if let Err(e) = crate::interrupt::install() {
            eprintln!("Warning: Ctrl-C will not cancel statements: {e}");
        }
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
        // Ctrl-C at an empty prompt once warns, twice in a row exits.
        let mut exit_armed = false;
        loop {
            let prompt = if buffer.is_empty() {
                "phantomdb> "
            } else {
                "      ...> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    exit_armed = false;
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
                Err(ReadlineError::Interrupted) if buffer.is_empty() && exit_armed => break,
                Err(ReadlineError::Interrupted) if buffer.is_empty() => {
                    exit_armed = true;
                    println!("(Ctrl-C again to exit, or .quit)");
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

/// Whether printing failed because standard output was closed.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
