//! Meta-commands: lines starting with `.` at the prompt, in scripts and in `-c`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};

use crate::catalog::{self, text_rows};
use crate::report::Verbosity;
use crate::shell::{open_database, Shell};

const HELP: &str = "\
Statements end with ';' and may span lines. Meta-commands (one per line):
  .help                  show this help
  .tables                list tables (with their storage engine) and views
  .schema [TABLE]        show CREATE statements
  .dump [TABLE]          SQL that recreates the database (or a table); .read restores it
  .import FILE TABLE     load a CSV file with a header line (creates TABLE if needed)
  .read FILE             run the SQL in FILE
  .output [FILE]         send results to FILE (no FILE: back to standard output)
  .open [DB]             close this database and open DB (no DB: a new in-memory one)
  .mode table|markdown|csv|json   set the output format
  .errors default|verbose         verbose errors show their SQLSTATE and detail
  .timer on|off          show how long each statement takes
  .plugins               loaded plugins
  .engines               storage engines
  .quit / .exit          leave the shell";

impl Shell {
    /// Handles a meta-command. Returns false when the shell should exit.
    pub(crate) async fn meta(&mut self, line: &str) -> Result<bool> {
        let mut parts = line.split_whitespace();
        let cmd = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        match (cmd, args.as_slice()) {
            (".quit" | ".exit", _) => return Ok(false),
            (".help", _) => writeln!(self.out, "{HELP}")?,
            (".tables", []) => self.print_tables().await?,
            (".schema", [] | [_]) => self.print_schema(args.first().copied()).await?,
            (".dump", [] | [_]) => {
                crate::dump::dump(&self.conn, args.first().copied(), &mut self.out).await?
            }
            (".import", [file, table]) => {
                crate::import::import(&self.conn, Path::new(file), table).await?;
            }
            (".read", [file]) => {
                let end = self.run_file(Path::new(file)).await?;
                if !end.ok {
                    bail!("{file} had errors");
                }
            }
            (".output", []) => {
                self.out.flush()?;
                self.out = Box::new(std::io::BufWriter::new(std::io::stdout()));
            }
            (".output", [file]) => {
                let f = std::fs::File::create(file)
                    .map_err(|e| anyhow::anyhow!("cannot write {file}: {e}"))?;
                self.out.flush()?;
                self.out = Box::new(std::io::BufWriter::new(f));
            }
            (".open", [] | [_]) => {
                let path = args.first().map(Path::new);
                let (db, conn) = open_database(path, &self.plugins)?;
                self._db = db;
                self.conn = conn;
            }
            (".mode", [m]) => self.format = m.parse().map_err(anyhow::Error::msg)?,
            (".errors", ["verbose"]) => self.verbosity = Verbosity::Verbose,
            (".errors", ["default"]) => self.verbosity = Verbosity::Default,
            (".timer", ["on"]) => self.timer = true,
            (".timer", ["off"]) => self.timer = false,
            (".plugins", []) => {
                let rows = text_rows(
                    &self.conn,
                    "SELECT name, version, type, state FROM phantomdb_plugins() ORDER BY name",
                )
                .await?;
                for r in rows {
                    writeln!(self.out, "{} {} ({}, {})", r[0], r[1], r[2], r[3])?;
                }
            }
            (".engines", []) => {
                let rows = text_rows(
                    &self.conn,
                    "SELECT name, plugin, capabilities FROM phantomdb_storage_engines() \
                     ORDER BY name",
                )
                .await?;
                for r in rows {
                    writeln!(self.out, "{} (plugin {}): {}", r[0], r[1], r[2])?;
                }
            }
            _ => bail!("unknown or incomplete meta-command {line:?} (try .help)"),
        }
        self.out.flush()?;
        Ok(true)
    }

    /// `.tables`: each table with its storage engine; views are marked as such.
    async fn print_tables(&mut self) -> Result<()> {
        let mut names: Vec<(String, String)> =
            text_rows(&self.conn, "SELECT name, engine FROM phantomdb_tables()")
                .await?
                .into_iter()
                .map(|r| (r[0].clone(), r[1].clone()))
                .collect();
        for v in text_rows(&self.conn, "SELECT name FROM phantomdb_views()").await? {
            names.push((v[0].clone(), "view".into()));
        }
        names.sort();
        let shown: Vec<String> = names.iter().map(|(n, e)| format!("{n} ({e})")).collect();
        if !shown.is_empty() {
            writeln!(self.out, "{}", shown.join("  "))?;
        }
        Ok(())
    }

    /// `.schema [TABLE]`: `CREATE TABLE` and `CREATE VIEW` statements.
    async fn print_schema(&mut self, only: Option<&str>) -> Result<()> {
        let wanted = |name: &str| only.is_none_or(|n| n == name);
        for t in catalog::tables(&self.conn).await? {
            if wanted(&t.name) {
                writeln!(self.out, "{}", t.create_sql())?;
            }
        }
        for (name, query) in catalog::views(&self.conn).await? {
            if wanted(&name) {
                writeln!(self.out, "CREATE VIEW {name} AS {query};")?;
            }
        }
        Ok(())
    }
}
