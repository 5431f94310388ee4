//! The shell: `-c` commands, `-f` files, scripts on standard input (each statement runs as
//! soon as its `;` arrives, and its output is flushed before the next line is read, so the
//! shell can be driven as a coprocess), and the interactive prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use phantomdb::{Connection, Database};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;

use crate::complete::{Names, ShellHelper};
use crate::output::{self, Format};
use crate::progress::Progress;
use crate::report::{self, Verbosity};
use crate::split::{is_blank, split_statements};

/// Lines of a script, from a file or standard input.
pub type Lines<'a> = &'a mut dyn Iterator<Item = std::io::Result<String>>;

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptEnd {
    /// No statement or meta-command failed.
    pub ok: bool,
    /// `.quit` or `.exit` ended it.
    pub quit: bool,
}

/// The shell's state: the database, the output and the settings meta-commands change.
pub struct Shell {
    /// The open database (kept open for as long as the shell uses it).
    pub(crate) _db: Database,
    pub(crate) conn: Connection,
    pub(crate) plugins: crate::PluginOptions,
    pub(crate) format: Format,
    pub(crate) timer: bool,
    pub(crate) verbosity: Verbosity,
    /// At a terminal: Ctrl-C cancels the running statement, long statements show progress.
    pub(crate) interactive: bool,
    /// Where results go: standard output, or the file of `.output FILE`.
    pub(crate) out: Box<dyn Write>,
    /// Names for tab completion, refreshed after statements at the prompt.
    pub(crate) names: Names,
}

/// Entry point of the shell modes.
pub async fn run(
    db_path: Option<PathBuf>,
    commands: Vec<String>,
    files: Vec<PathBuf>,
    format: Format,
    plugins: &crate::PluginOptions,
) -> Result<ExitCode> {
    let mut shell = Shell::open(db_path.as_deref(), format, plugins.clone())?;
    if !commands.is_empty() || !files.is_empty() {
        for sql in &commands {
            let ok = if sql.trim_start().starts_with('.') {
                match shell.meta(sql.trim()).await {
                    Ok(true) => true,
                    Ok(false) => return Ok(ExitCode::SUCCESS),
                    Err(e) => {
                        shell.report(&e, None);
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
        // Files (as psql -f): every statement runs, errors are reported and counted.
        let mut ok = true;
        for file in &files {
            let end = shell.run_file(file).await?;
            ok &= end.ok;
            if end.quit {
                break;
            }
        }
        return Ok(exit_code(ok));
    }
    if !std::io::stdin().is_terminal() {
        let stdin = std::io::stdin();
        let end = shell.run_script(&mut stdin.lock().lines()).await;
        return Ok(exit_code(end.ok));
    }
    shell.interactive = true;
    shell.repl(db_path).await?;
    Ok(ExitCode::SUCCESS)
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Shell {
    /// Opens the database at `path` (in memory without one) with the plugins loaded.
    pub(crate) fn open(
        path: Option<&Path>,
        format: Format,
        plugins: crate::PluginOptions,
    ) -> Result<Self> {
        let (db, conn) = open_database(path, &plugins)?;
        Ok(Shell {
            _db: db,
            conn,
            plugins,
            format,
            timer: false,
            verbosity: Verbosity::Default,
            interactive: false,
            out: Box::new(std::io::BufWriter::new(std::io::stdout())),
            names: Names::default(),
        })
    }

    /// Prints `error` on standard error (with the line and a caret when it has a position in
    /// `sql`).
    pub(crate) fn report(&mut self, error: &anyhow::Error, sql: Option<&str>) {
        let _ = self.out.flush();
        let text = report::describe(error, sql, self.format, self.verbosity);
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }

    /// Runs SQL text statement by statement, printing each result and flushing it before
    /// the next statement starts. Returns false at the first error.
    pub(crate) async fn run_sql(&mut self, sql: &str) -> bool {
        let statements = match self.conn.parse(sql).await {
            Ok(s) => s,
            Err(e) => {
                self.report(&e.into(), Some(sql));
                return false;
            }
        };
        for stmt in statements {
            let start = Instant::now();
            let watcher = self
                .interactive
                .then(|| crate::interrupt::Watcher::start(self.conn.cancel_handle()));
            let progress = Progress::start(self.interactive && std::io::stderr().is_terminal());
            let printed = match self.conn.execute_statement_stream(stmt).await {
                Ok(mut stream) => {
                    output::print_stream(&mut self.out, &mut stream, self.format, &progress).await
                }
                Err(e) => Err(e.into()),
            };
            drop(progress);
            let interrupted = watcher.as_ref().is_some_and(|w| w.fired());
            drop(watcher);
            if let Err(e) = printed {
                if is_broken_pipe(&e) {
                    // The reader went away (`| head`): stop quietly, as sqlite3 does.
                    std::process::exit(0);
                }
                if interrupted {
                    let _ = self.out.flush();
                    eprintln!("Interrupted");
                } else {
                    self.report(&e, Some(sql));
                }
                return false;
            }
            if self.timer {
                let _ = writeln!(self.out, "Run Time: {:.3}s", start.elapsed().as_secs_f64());
            }
            if let Err(e) = self.out.flush() {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    std::process::exit(0);
                }
            }
        }
        true
    }

    /// Runs the script in `file` (`-f`, `.read`).
    pub(crate) async fn run_file(&mut self, file: &Path) -> Result<ScriptEnd> {
        let reader = std::fs::File::open(file)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
        let mut lines = std::io::BufReader::new(reader).lines();
        Ok(Box::pin(self.run_script(&mut lines)).await)
    }

    /// Runs a script that may mix SQL and meta-commands, each statement as soon as its
    /// terminating `;` has been read. Like `sqlite3` and `psql`, an error is reported and
    /// the script goes on.
    pub(crate) async fn run_script(&mut self, lines: Lines<'_>) -> ScriptEnd {
        let mut ok = true;
        let mut buffer = String::new();
        for line in lines {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    self.report(&anyhow::anyhow!("cannot read the script: {e}"), None);
                    return ScriptEnd {
                        ok: false,
                        quit: false,
                    };
                }
            };
            if is_blank(&buffer) && line.trim_start().starts_with('.') {
                buffer.clear();
                match self.meta(line.trim()).await {
                    Ok(true) => continue,
                    Ok(false) => return ScriptEnd { ok, quit: true },
                    Err(e) => {
                        self.report(&e, None);
                        ok = false;
                        continue;
                    }
                }
            }
            buffer.push_str(&line);
            buffer.push('\n');
            let (statements, rest) = split_statements(&buffer);
            for sql in statements {
                // Positions of errors count from the statement's first line.
                ok &= self.run_sql(sql.trim_start()).await;
            }
            buffer = rest;
        }
        if !is_blank(&buffer) {
            ok &= self.run_sql(&buffer).await;
        }
        ScriptEnd { ok, quit: false }
    }

    async fn repl(&mut self, db_path: Option<PathBuf>) -> Result<()> {
        let mut editor: rustyline::Editor<ShellHelper, DefaultHistory> = rustyline::Editor::new()?;
        editor.set_helper(Some(ShellHelper {
            names: self.names.clone(),
        }));
        self.names.refresh(&self.conn).await;
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
                        remember(&mut editor, history.as_deref(), &line);
                        match self.meta(line.trim()).await {
                            Ok(true) => {}
                            Ok(false) => break,
                            Err(e) => self.report(&e, None),
                        }
                        self.names.refresh(&self.conn).await;
                        continue;
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    let (statements, rest) = split_statements(&buffer);
                    if !statements.is_empty() {
                        remember(&mut editor, history.as_deref(), buffer.trim());
                        for sql in statements {
                            self.run_sql(sql.trim_start()).await;
                        }
                        buffer = if is_blank(&rest) { String::new() } else { rest };
                        self.names.refresh(&self.conn).await;
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
        let _ = self.out.flush();
        Ok(())
    }
}

/// Adds `entry` to the history and saves the history at once, so it survives however the
/// shell ends.
fn remember(
    editor: &mut rustyline::Editor<ShellHelper, DefaultHistory>,
    file: Option<&Path>,
    entry: &str,
) {
    let _ = editor.add_history_entry(entry);
    if let Some(f) = file {
        let _ = editor.save_history(f);
    }
}

/// Opens a database and a connection, loading the plugins (a plugin that fails to load is
/// reported; the shell starts with the others).
pub(crate) fn open_database(
    path: Option<&Path>,
    plugins: &crate::PluginOptions,
) -> Result<(Database, Connection)> {
    let db = match path {
        Some(p) => Database::open(p)?,
        None => Database::open_in_memory()?,
    };
    crate::load_plugin_dirs(&db, plugins)?;
    let conn = db.connect()?;
    Ok((db, conn))
}

/// Whether printing failed because standard output was closed.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
