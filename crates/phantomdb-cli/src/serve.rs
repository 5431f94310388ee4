//! `phantomdb serve`: the PostgreSQL-protocol server (crate `phantomdb-server`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::{load_plugin_dirs, parse_plugin_config, PluginOptions};

/// Arguments of `phantomdb serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Database file (created if missing).
    db_path: PathBuf,
    /// Address to listen on (overrides `listen` in the configuration; default
    /// 127.0.0.1:5432).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Configuration file (phantomdb.toml: [server], [auth] rules, memory_limit); SIGHUP
    /// reloads its authentication rules.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Load every plugin library found under DIR (recursively) at start (repeatable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// Configuration of a plugin loaded from --plugin-dir, as NAME=JSON (repeatable).
    #[arg(long = "plugin-config", value_name = "NAME=JSON", value_parser = parse_plugin_config)]
    plugin_configs: Vec<(String, String)>,
}

/// Serves until SIGTERM or SIGINT.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => phantomdb_server::Config::load(path)?,
        None => phantomdb_server::Config::default(),
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let db = phantomdb::Database::open(&args.db_path)
        .with_context(|| format!("opening {}", args.db_path.display()))?;
    let plugins = PluginOptions {
        dirs: args.plugin_dirs,
        configs: args.plugin_configs.into_iter().collect(),
    };
    if !load_plugin_dirs(&db, &plugins)? {
        anyhow::bail!("some plugins failed to load");
    }
    let name = args.db_path.display().to_string();
    let server = phantomdb_server::Server::new(db, config, &name)?
        .bind()
        .await?;
    eprintln!(
        "phantomdb: serving {name} on {} (PostgreSQL protocol; stop with SIGTERM or Ctrl-C)",
        server.local_addr()?
    );
    server.run(phantomdb_server::shutdown_signal()).await;
    eprintln!("phantomdb: stopped");
    Ok(ExitCode::SUCCESS)
}
