//! `phantomdb test`: runs sqllogictest files, each against a fresh file-backed database.

use std::path::{Path, PathBuf};

use anyhow::Result;
use async_trait::async_trait;
use phantomdb::{Connection, Database};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::output::rows_as_strings;

/// One connection to the database under test.
struct SltConnection {
    conn: Connection,
}

#[async_trait]
impl sqllogictest::AsyncDB for SltConnection {
    type Error = phantomdb::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, phantomdb::Error> {
        let rs = self.conn.execute_async(sql).await?;
        if let Some(n) = rs.rows_affected {
            return Ok(DBOutput::StatementComplete(n as u64));
        }
        if rs.schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let rows = rows_as_strings(&rs).map_err(|e| phantomdb::Error::Sql(e.to_string()))?;
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; rs.schema.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "phantomdb"
    }
}

/// Options of a test run.
pub struct TestOptions {
    /// Plugins to load into every test database.
    pub plugins: crate::PluginOptions,
    /// Storage engine for the tables the tests create.
    pub engine: Option<String>,
}

/// Runs every file; prints one line per file and a final `N passed, N failed` line.
/// Returns the number of failed files.
pub async fn run_files(files: &[PathBuf], options: &TestOptions) -> Result<usize> {
    let mut passed = 0;
    let mut failed = 0;
    for file in files {
        match run_file(file, options).await {
            Ok(()) => {
                passed += 1;
                println!("ok     {}", file.display());
            }
            Err(e) => {
                failed += 1;
                println!("FAILED {}\n{e}", file.display());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed)
}

async fn run_file(file: &Path, options: &TestOptions) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path().join("test.db"))?;
    if !crate::load_plugin_dirs(&db, &options.plugins)? {
        anyhow::bail!("some plugins failed to load");
    }
    if let Some(engine) = &options.engine {
        db.connect()?
            .execute_async(&format!(
                "SET default_table_access_method = '{}'",
                engine.replace('\'', "''")
            ))
            .await?;
    }
    let engine_label = options.engine.clone().unwrap_or_else(|| "redb".to_string());
    let mut runner = sqllogictest::Runner::new(move || {
        let db = db.clone();
        async move {
            Ok(SltConnection {
                conn: db.connect()?,
            })
        }
    });
    runner.add_label("phantomdb");
    runner.add_label(&engine_label);
    runner
        .run_file_async(file)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.display(true)))?;
    Ok(())
}
