//! `phantomdb`: the PhantomDB shell.

mod catalog;
mod complete;
mod dump;
mod import;
mod integrity;
mod interrupt;
mod meta;
mod output;
mod progress;
mod report;
mod scaffold;
mod serve;
mod shell;
mod slt;
mod split;

/// mimalloc: glibc's malloc was about half of a point query's instructions, and it keeps
/// memory a finished query freed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Format;

/// PhantomDB: an embeddable SQL database with plugins.
///
/// With no DB_PATH the database lives in memory. SQL comes from -c options, -f files, from
/// standard input when it is not a terminal (each statement runs as soon as its ';' is read),
/// or from the interactive prompt.
#[derive(Debug, Parser)]
#[command(name = "phantomdb", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Database file (created if missing). Omit for an in-memory database.
    db_path: Option<PathBuf>,
    /// Run this SQL and exit (repeatable; runs in order, stops at the first error).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// Run the SQL and meta-commands in FILE and exit (repeatable; after any -c). Errors are
    /// reported and the file goes on; the exit status is non-zero if any statement failed.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format of query results.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Load every plugin library found under DIR (recursively) at start (repeatable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// Configuration of a plugin loaded from --plugin-dir, as NAME=JSON (repeatable), e.g.
    /// s3_storage='{"path": "s3://bucket/prefix", "endpoint": "http://127.0.0.1:9000"}'.
    #[arg(long = "plugin-config", value_name = "NAME=JSON", value_parser = parse_plugin_config)]
    plugin_configs: Vec<(String, String)>,
    /// Memory all queries of this process may hold, e.g. 2GB (default: 80% of RAM). Sorts and
    /// aggregates spill to temporary files beyond it; `SET memory_limit` caps one session.
    #[arg(long = "memory-limit", value_name = "SIZE", value_parser = parse_memory_limit)]
    memory_limit: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a database over the PostgreSQL wire protocol (psql and PostgreSQL drivers).
    ///
    /// Logins use the database's roles: create the first one with
    /// phantomdb DB_PATH -c "CREATE ROLE admin LOGIN SUPERUSER PASSWORD '...'".
    /// SIGTERM (or Ctrl-C) stops accepting, lets running statements finish, and exits.
    Serve(serve::ServeArgs),
    /// Read and verify everything in a database file (every page, catalog entry, segment and
    /// index entry) and report each problem.
    ///
    /// The file must not be open in another process (while it is, run
    /// `SELECT * FROM phantomdb_check()` in it). Exit status: 0 sound, 1 problems found.
    Check {
        /// The database file.
        db_path: PathBuf,
    },
    /// Copy every readable table, row, view and role of a damaged database into a new file.
    ///
    /// Reports what could not be read, then checks the new database. Exit status: 0
    /// everything copied, 3 the new database lacks what is listed, 1 nothing recovered.
    Recover {
        /// The damaged database file (not open in another process).
        db_path: PathBuf,
        /// The new database file to write (must not exist).
        out: PathBuf,
    },
    /// Plugin development tools.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run sqllogictest (.slt) files, each against a fresh file-backed database.
    Test {
        /// Load every plugin library found under DIR into each test database (repeatable).
        #[arg(long = "plugin-dir", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
        /// Configuration of a plugin, as NAME=JSON (repeatable).
        #[arg(long = "plugin-config", value_name = "NAME=JSON", value_parser = parse_plugin_config)]
        plugin_configs: Vec<(String, String)>,
        /// Storage engine of the tables the tests create (default: redb). The engine name is
        /// also a sqllogictest label, for `onlyif`/`skipif`.
        #[arg(long, value_name = "ENGINE")]
        engine: Option<String>,
        /// Stop at the first failed record.
        #[arg(long)]
        fail_fast: bool,
        /// Append the SQLSTATE and message of every error a statement raises to FILE (for
        /// checking the wording of errors).
        #[arg(long, value_name = "FILE", hide = true)]
        error_log: Option<PathBuf>,
        /// The .slt files (directories are searched for *.slt).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Write a new, buildable plugin crate (with a .slt test) in ./NAME.
    New {
        /// Plugin (and crate) name: lower-case letters, digits and '_'.
        name: String,
        /// Kind of plugin to generate.
        #[arg(long = "type", value_enum, default_value = "function")]
        plugin_type: ScaffoldType,
        /// Directory to create the crate in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Path of the phantomdb-plugin-sdk crate.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

/// Plugin kinds the scaffold can generate.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ScaffoldType {
    /// SQL functions (scalar, aggregate, table).
    Function,
}

fn main() -> ExitCode {
    tracing_subscriber_init();
    let cli = Cli::parse();
    if let Some(limit) = cli.memory_limit {
        if let Err(e) = phantomdb::set_memory_limit(limit) {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Serve(args)) => serve::run(args).await,
            Some(Command::Check { db_path }) => Ok(integrity::check(&db_path)),
            Some(Command::Recover { db_path, out }) => integrity::recover(&db_path, &out).await,
            Some(Command::Plugin(PluginCommand::New {
                name,
                plugin_type: ScaffoldType::Function,
                dir,
                sdk,
            })) => {
                let sdk = sdk.unwrap_or_else(scaffold::default_sdk_path);
                let created = scaffold::new_function_plugin(&name, &dir, &sdk)?;
                println!("created {}", created.display());
                Ok(ExitCode::SUCCESS)
            }
            Some(Command::Test {
                files,
                plugin_dirs,
                plugin_configs,
                engine,
                fail_fast,
                error_log,
            }) => {
                let files = expand_slt(&files)?;
                let options = slt::TestOptions {
                    plugins: PluginOptions {
                        dirs: plugin_dirs,
                        configs: plugin_configs.into_iter().collect(),
                    },
                    engine,
                    fail_fast,
                    error_log,
                };
                let failed = slt::run_files(&files, &options).await?;
                Ok(if failed == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            None => {
                let plugins = PluginOptions {
                    dirs: cli.plugin_dirs,
                    configs: cli.plugin_configs.into_iter().collect(),
                };
                shell::run(cli.db_path, cli.commands, cli.files, cli.format, &plugins).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Which plugins to load at start, and their configurations.
#[derive(Debug, Default, Clone)]
pub struct PluginOptions {
    /// Directories searched for plugin libraries.
    pub dirs: Vec<PathBuf>,
    /// Configuration (JSON) by plugin name.
    pub configs: std::collections::HashMap<String, String>,
}

fn parse_plugin_config(s: &str) -> Result<(String, String), String> {
    let (name, json) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=JSON, got {s}"))?;
    serde_json::from_str::<serde_json::Value>(json)
        .map_err(|e| format!("configuration of plugin {name} is not JSON: {e}"))?;
    Ok((name.trim().to_string(), json.to_string()))
}

/// Loads the plugins under each directory into `db`, reporting each failure on stderr.
/// Returns false if any plugin failed to load.
pub fn load_plugin_dirs(db: &phantomdb::Database, plugins: &PluginOptions) -> anyhow::Result<bool> {
    let mut ok = true;
    for dir in &plugins.dirs {
        let result = db
            .plugins()
            .load_plugins_from_directory_with(dir, |name| plugins.configs.get(name).cloned())?;
        for (_, e) in result.failed {
            eprintln!("Error: {e}");
            ok = false;
        }
    }
    Ok(ok)
}

/// Files as given; directories contribute their `*.slt` files, sorted.
fn expand_slt(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "slt"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn tracing_subscriber_init() {
    // Logging goes through `tracing`; a subscriber is installed only when PHANTOMDB_LOG is set.
    if std::env::var_os("PHANTOMDB_LOG").is_some() {
        let _ = tracing::subscriber::set_global_default(SimpleSubscriber);
    }
}

/// A minimal stderr subscriber (keeps the CLI's dependency list short).
struct SimpleSubscriber;

impl tracing::Subscriber for SimpleSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct V(String);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={:?}", field.name(), value));
            }
        }
        let mut v = V(String::new());
        event.record(&mut v);
        eprintln!(
            "{} {}:{}",
            event.metadata().level(),
            event.metadata().target(),
            v.0
        );
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// `--memory-limit SIZE`.
fn parse_memory_limit(value: &str) -> Result<usize, String> {
    phantomdb::parse_memory_size(value).map_err(|e| e.to_string())
}
