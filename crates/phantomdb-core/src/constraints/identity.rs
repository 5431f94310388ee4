//! Identity columns: NULL (or missing) values take the next values of the column's sequence,
//! kept in the database file (`engines/redb/sequence.rs`); the connection remembers the last
//! value it got of each sequence for `currval` and `lastval`, as PostgreSQL does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use parking_lot::Mutex;

use crate::catalog::TableDef;
use crate::engines::redb::WriteTxn;
use crate::error::{Error, Result, SqlState};
use crate::privileges::{Actor, Privilege};

/// The values this connection last took from each sequence, and the write transaction of
/// its running writing statement (for `nextval`).
#[derive(Default)]
pub(crate) struct SessionSequences {
    state: Mutex<(HashMap<String, i64>, Option<i64>)>,
    writer: Mutex<Option<Writer>>,
}

/// The write transaction `nextval` takes values in, and the user it takes them for.
struct Writer {
    w: Arc<Mutex<WriteTxn>>,
    user: String,
}

impl std::fmt::Debug for SessionSequences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSequences")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// While alive, `nextval` takes its values in the attached write transaction.
pub(crate) struct AttachedWriter(Arc<SessionSequences>);

impl Drop for AttachedWriter {
    fn drop(&mut self) {
        *self.0.writer.lock() = None;
    }
}

/// How long `nextval` waits for the write transaction a scan of the same statement holds.
const WRITER_WAIT: Duration = Duration::from_secs(10);

impl SessionSequences {
    /// Records that `value` was the last value taken from `sequence`.
    fn took(&self, sequence: &str, value: i64) {
        let mut s = self.state.lock();
        s.0.insert(sequence.to_string(), value);
        s.1 = Some(value);
    }

    /// Lets `nextval` take values in `w`, for `user`, until the returned guard drops (one
    /// writing statement).
    pub(crate) fn attach(self: &Arc<Self>, w: &Arc<Mutex<WriteTxn>>, user: &str) -> AttachedWriter {
        *self.writer.lock() = Some(Writer {
            w: w.clone(),
            user: user.to_string(),
        });
        AttachedWriter(self.clone())
    }

    /// `nextval(sequence)`: takes the sequence's next value in the statement's write
    /// transaction (42P01 for an unknown sequence; 42501 without INSERT or UPDATE on its
    /// table).
    pub(crate) fn nextval(&self, sequence: &str) -> Result<i64> {
        let sequence = sequence_name(sequence);
        let (w, user) = match &*self.writer.lock() {
            Some(writer) => (writer.w.clone(), writer.user.clone()),
            None => {
                return Err(Error::Transaction(
                    SqlState::InternalError,
                    "nextval outside a writing statement".into(),
                ))
            }
        };
        let mut w = w.try_lock_for(WRITER_WAIT).ok_or_else(|| {
            Error::Transaction(
                SqlState::LockNotAvailable,
                format!("nextval(\"{sequence}\"): the write transaction is busy"),
            )
        })?;
        let catalog = w.catalog();
        let table = catalog
            .tables()
            .find(|t| t.identity.values().any(|i| i.sequence == sequence))
            .cloned()
            .ok_or_else(|| {
                Error::Catalog(
                    SqlState::UndefinedTable,
                    format!("relation \"{sequence}\" does not exist"),
                )
            })?;
        let actor = Actor::resolve(&user, &catalog);
        if !actor.holds(&table.owner, &table.grants, Privilege::Insert)
            && !actor.holds(&table.owner, &table.grants, Privilege::Update)
        {
            return Err(Error::PermissionDenied(format!(
                "permission denied for sequence {sequence}"
            )));
        }
        let value = w.sequence_take(&sequence, 1)?;
        drop(w);
        self.took(&sequence, value);
        Ok(value)
    }

    /// `currval(sequence)`: 55000 before this connection took a value of it.
    pub(crate) fn currval(&self, sequence: &str) -> Result<i64> {
        let sequence = sequence_name(sequence);
        let sequence = sequence.as_str();
        self.state.lock().0.get(sequence).copied().ok_or_else(|| {
            Error::Catalog(
                SqlState::ObjectNotInPrerequisiteState,
                format!("currval of sequence \"{sequence}\" is not yet defined in this session"),
            )
        })
    }

    /// `lastval()`: 55000 before this connection took any value.
    pub(crate) fn lastval(&self) -> Result<i64> {
        self.state.lock().1.ok_or_else(|| {
            Error::Catalog(
                SqlState::ObjectNotInPrerequisiteState,
                "lastval is not yet defined in this session".into(),
            )
        })
    }
}

/// A sequence name as `nextval`/`currval` take it (PostgreSQL's regclass text): lower case
/// unless double-quoted, an optional `public.` schema.
fn sequence_name(text: &str) -> String {
    let text = text.trim();
    let text = text
        .strip_prefix("public.")
        .or_else(|| text.strip_prefix("\"public\"."))
        .unwrap_or(text);
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => text.to_lowercase(),
    }
}

/// `rows` with the NULLs of identity columns replaced by new sequence values; explicit values
/// raise the sequence past them, so later generated values never collide with them.
pub(crate) fn fill_identity(
    w: &Mutex<WriteTxn>,
    session: &Arc<SessionSequences>,
    def: &TableDef,
    rows: RecordBatch,
) -> Result<RecordBatch> {
    if def.identity.is_empty() || rows.num_rows() == 0 {
        return Ok(rows);
    }
    let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
    for (&position, identity) in &def.identity {
        let Some(column) = columns.get(position) else {
            continue;
        };
        let field_type = def.schema.field(position).data_type().clone();
        let values = cast(column, &DataType::Int64)?;
        let values = values.as_primitive::<Int64Type>();
        if let Some(max) = arrow::compute::max(values) {
            w.lock().sequence_raise(&identity.sequence, max)?;
        }
        let missing = values.null_count();
        if missing == 0 {
            continue;
        }
        let mut next = w.lock().sequence_take(&identity.sequence, missing as u64)?;
        let filled: Int64Array = values
            .iter()
            .map(|v| {
                Some(v.unwrap_or_else(|| {
                    next += 1;
                    next - 1
                }))
            })
            .collect();
        session.took(&identity.sequence, next - 1);
        columns[position] = cast(&(Arc::new(filled) as ArrayRef), &field_type)?;
    }
    Ok(RecordBatch::try_new(def.schema_ref(), columns)?)
}

/// UPDATE may not set an identity column to NULL.
pub(crate) fn refuse_null_identity(def: &TableDef, rows: &RecordBatch) -> Result<()> {
    for &position in def.identity.keys() {
        if rows.column(position).null_count() > 0 {
            return Err(Error::Constraint(
                SqlState::NotNullViolation,
                format!(
                    "NULL value in column \"{}\" of table \"{}\" violates NOT NULL",
                    def.schema.field(position).name(),
                    def.name
                ),
            ));
        }
    }
    Ok(())
}

/// A value given for a `GENERATED ALWAYS` identity column is refused, as in PostgreSQL.
pub(crate) fn refuse_given_always(def: &TableDef, rows: &RecordBatch) -> Result<()> {
    for (&position, identity) in &def.identity {
        let given = rows
            .columns()
            .get(position)
            .is_some_and(|c| c.null_count() < c.len());
        if identity.always && given {
            let column = def.schema.field(position).name();
            return Err(Error::Constraint(
                SqlState::GeneratedAlways,
                format!(
                    "cannot insert a non-DEFAULT value into column \"{column}\": column \"{column}\" is an identity column defined as GENERATED ALWAYS"
                ),
            ));
        }
    }
    Ok(())
}
