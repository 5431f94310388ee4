//! [`Database`]: the entry point of the embedding API.

use std::path::Path;
use std::sync::Arc;

use crate::auth::{RoleInfo, ScramVerifier};
use crate::engines::redb::{DataView, Store};
use crate::error::{Error, Result};
use crate::plugins::PluginManager;
use crate::result::ResultSet;
use crate::session::Connection;
use crate::shared::DatabaseShared;

mod integrity;

/// An open PhantomDB database: a file, or memory only.
///
/// `Database` is cheap to clone and can be shared between threads; each thread (or task)
/// usually opens its own [`Connection`].
///
/// ```no_run
/// let db = phantomdb::Database::open("app.db")?;
/// let conn = db.connect()?;
/// conn.execute("CREATE TABLE t(id INT PRIMARY KEY, v TEXT)")?;
/// conn.execute("INSERT INTO t VALUES (1, 'a')")?;
/// let rows = conn.execute("SELECT v FROM t WHERE id = 1")?;
/// assert_eq!(rows.num_rows(), 1);
/// # Ok::<(), phantomdb::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Database {
    shared: Arc<DatabaseShared>,
}

impl Database {
    /// Opens the database file at `path`, creating it if it does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(Error::Storage(format!(
                "{} is a directory, not a database file",
                path.display()
            )));
        }
        Ok(Self {
            shared: DatabaseShared::new(Store::open(path)?, Some(path.to_path_buf())),
        })
    }

    /// Opens the database file at `path` with I/O failures injected as `faults` says (to
    /// test how statements fail when the disk fills up or the device fails).
    pub fn open_with_io_faults(
        path: impl AsRef<Path>,
        faults: Arc<crate::engines::redb::IoFaults>,
    ) -> Result<Self> {
        let path = path.as_ref();
        Ok(Self {
            shared: DatabaseShared::new(
                Store::open_with_io_faults(path, faults)?,
                Some(path.to_path_buf()),
            ),
        })
    }

    /// Creates a database that lives in memory and disappears when dropped.
    pub fn open_in_memory() -> Result<Self> {
        Ok(Self {
            shared: DatabaseShared::new(Store::open_in_memory()?, None),
        })
    }

    /// The file behind the database, or `None` for an in-memory one.
    pub fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    /// The plugin manager of this database (load, list and unload plugins).
    pub fn plugins(&self) -> &Arc<PluginManager> {
        &self.shared.plugins
    }

    /// Opens a new connection, running as [`DEFAULT_USER`](crate::DEFAULT_USER): the
    /// database owner, a superuser whether or not a role of that name exists.
    pub fn connect(&self) -> Result<Connection> {
        self.connect_as(crate::session::DEFAULT_USER)
    }

    /// Opens a new connection running as `user` (what `current_user` returns). A stored role
    /// runs with its privileges, looked up again for every statement; any other name has
    /// only what is granted to `PUBLIC`. The connection does not authenticate `user`: that is
    /// the caller's job (see [`Database::role`]).
    pub fn connect_as(&self, user: &str) -> Result<Connection> {
        Connection::new(self.shared.clone(), user)
    }

    /// The stored role `name` (as of the latest commit), with its password verifier;
    /// `None` when no such role exists. What a server authenticates a login against.
    pub fn role(&self, name: &str) -> Result<Option<RoleInfo>> {
        let catalog = self.shared.store.read_view()?.catalog();
        let Some(role) = catalog.role(name) else {
            return Ok(None);
        };
        let verifier = match &role.password {
            Some(text) => Some(ScramVerifier::parse(text).ok_or_else(|| {
                Error::Storage(format!("role \"{name}\" has a corrupt password verifier"))
            })?),
            None => None,
        };
        Ok(Some(RoleInfo {
            name: role.name.clone(),
            login: role.login,
            superuser: role.superuser,
            verifier,
        }))
    }

    /// Whether role `user` is `group` or a member of it, directly or through other roles
    /// (`GRANT group TO user`), as of the latest commit. What a server's `+group`
    /// authentication rules match.
    pub fn is_member_of(&self, user: &str, group: &str) -> Result<bool> {
        let catalog = self.shared.store.read_view()?.catalog();
        Ok(catalog.role(user).is_some() && catalog.roles_of(user).contains(group))
    }

    /// Whether any stored role may log in (`LOGIN`), as of the latest commit (a server can
    /// use it to decide whether logins need a password).
    pub fn has_login_role(&self) -> Result<bool> {
        let catalog = self.shared.store.read_view()?.catalog();
        let found = catalog.roles().any(|r| r.login);
        Ok(found)
    }

    /// Runs SQL on a new connection (autocommit). Handy for one-off statements.
    pub fn execute(&self, sql: &str) -> Result<ResultSet> {
        self.connect()?.execute(sql)
    }
}
