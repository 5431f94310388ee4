//! `SET default_table_access_method = 'engine'`: the engine of tables created without
//! `USING`, stored in the database (a database setting, not a session one).

use super::{unknown_engine, WriteScope};
use crate::catalog::DEFAULT_ENGINE_SETTING;
use crate::error::Result;
use crate::planner::Planner;
use crate::result::ResultSet;

/// Checks that the engine exists and stores the setting.
pub(crate) fn set_default_engine(
    planner: &Planner,
    scope: &WriteScope,
    engine: String,
) -> Result<ResultSet> {
    let catalog = scope.w.lock().catalog();
    planner
        .actor(&catalog)
        .check_superuser(&format!("set {DEFAULT_ENGINE_SETTING}"))?;
    let registry = planner.registry();
    if registry.engine(&engine).is_none() {
        return Err(unknown_engine(&registry, &engine));
    }
    scope
        .w
        .lock()
        .put_setting(DEFAULT_ENGINE_SETTING, &engine)?;
    Ok(ResultSet::empty())
}
