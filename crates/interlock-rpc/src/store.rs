//! What every role's SQLite store shares: the error type, opening a file (WAL
//! journal, `synchronous = FULL`: a crash loses nothing written), deal ids as
//! keys, and [`GroupWriter`], which commits the writes waiting for a store
//! together, one transaction and one sync for all of them.

use interlock_core::{DealId, Decision, Hash32};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored record of deal {deal_id} is corrupt: {reason}")]
    Corrupt { deal_id: String, reason: String },
    #[error("notary already recorded {recorded} for deal {deal_id}: it never decides {attempted} as well")]
    Contradiction { deal_id: DealId, recorded: Decision, attempted: Decision },
    #[error("notary has no accepted deal {0}: accept it before deciding it")]
    UnknownDeal(DealId),
    #[error("storage failed to commit a group of {writes} writes, this one among them: {reason}")]
    GroupCommit { writes: usize, reason: String },
    #[error("storage is overloaded: {queued} writes already wait for the store's writer")]
    Overloaded { queued: usize },
    #[error("the store's writer thread stopped: the write was not recorded")]
    WriterStopped,
}

/// Opens (or creates) the SQLite file at `path` in WAL mode with
/// `synchronous = FULL`, and runs `schema` on it.
pub fn open(path: &Path, schema: &str) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")?;
    connection.execute_batch(schema)?;
    count_commits(&connection);
    Ok(connection)
}

/// Counts every transaction `connection` commits into the process's durable
/// commits ([`interlock_core::counters`]): with the WAL journal and
/// `synchronous = FULL`, each one is synced to disk.
pub fn count_commits(connection: &Connection) {
    connection.commit_hook(Some(|| {
        interlock_core::counters::durable_commit();
        false
    }));
}

/// A deal id as a key column.
pub fn deal_key(deal_id: DealId) -> [u8; 32] {
    deal_id.0 .0
}

/// A deal id back from a key column.
pub fn deal_from(bytes: &[u8]) -> Result<DealId, StoreError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt {
        deal_id: interlock_core::hash::to_hex(bytes),
        reason: "deal id is not 32 bytes".into(),
    })?;
    Ok(DealId(Hash32(bytes)))
}

/// Every row `statement` selects with `params`, in order, each as `read`
/// makes it: a loader whose rows can be corrupt says so as a [`StoreError`].
pub fn collect_rows<T>(
    statement: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    mut read: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = statement.query(params)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(read(row)?);
    }
    Ok(all)
}

/// Most writes one group commit holds.
pub const GROUP_WRITES_MAX: usize = 1_024;
/// Most writes waiting for a store's writer; past it a write is refused
/// ([`StoreError::Overloaded`]) instead of queued.
pub const WRITES_QUEUED_MAX: usize = 65_536;

/// A store a [`GroupWriter`] commits for: the connection it writes through,
/// and what it keeps in memory beside the file.
pub trait GroupStore: Send + 'static {
    fn connection(&self) -> &Connection;

    /// The group's commit failed and rolled back every write in it: forget in
    /// memory what those writes changed (read it back from the file).
    fn reload(&mut self) -> Result<(), StoreError>;
}

/// One write waiting for the writer, its result type erased.
trait Write<S>: Send {
    /// Runs the write on `store` inside the group's transaction; true when
    /// it succeeded (its changes stay in the group), false when it was
    /// refused (its changes are rolled back, the others' kept).
    fn run(&mut self, store: &mut S) -> bool;

    /// Answers the writer once the group is settled: `failure` is why the
    /// group did not commit, if it did not.
    fn answer(self: Box<Self>, failure: Option<&GroupFailure>);
}

/// Why a group did not commit, told to each write in it.
struct GroupFailure {
    writes: usize,
    reason: String,
}

struct Typed<F, T, E> {
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<S, F, T, E> Write<S> for Typed<F, T, E>
where
    F: FnOnce(&mut S) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, store: &mut S) -> bool {
        let work = self.work.take().expect("a write runs once");
        let result = work(store);
        let kept = result.is_ok();
        self.result = Some(result);
        kept
    }

    fn answer(self: Box<Self>, failure: Option<&GroupFailure>) {
        let answer = match (self.result, failure) {
            // A refused write wrote nothing: its own refusal is the answer.
            (Some(Err(refused)), _) => Err(refused),
            (Some(Ok(done)), None) => Ok(done),
            (_, Some(failure)) => {
                Err(E::from(StoreError::GroupCommit { writes: failure.writes, reason: failure.reason.clone() }))
            }
            (None, None) => unreachable!("a group commits only after every write in it ran"),
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(answer);
    }
}

/// The one thread that writes a store: it takes every write waiting, runs
/// them in one SQLite transaction, each inside its own savepoint (a refused
/// write rolls back alone), commits once, and only then answers each writer
/// with its own result. If the commit fails, every write of the group gets
/// the error and the store reloads what it keeps in memory.
///
/// The store stays behind its mutex for readers; the writer holds the lock
/// from the group's first write to its commit, so a reader never sees a
/// write that is not durable. Dropping every clone stops the thread once
/// the writes queued are done.
pub struct GroupWriter<S> {
    jobs: SyncSender<Box<dyn Write<S>>>,
    commits: Arc<AtomicU64>,
}

impl<S> Clone for GroupWriter<S> {
    fn clone(&self) -> Self {
        GroupWriter { jobs: self.jobs.clone(), commits: self.commits.clone() }
    }
}

/// A write sent to the writer; [`Pending::wait`] for its answer.
pub struct Pending<T, E> {
    answer: Option<oneshot::Receiver<Result<T, E>>>,
    refused: Option<E>,
}

impl<T, E: From<StoreError>> Pending<T, E> {
    /// The write's result, once its group committed (or failed to).
    pub async fn wait(self) -> Result<T, E> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        match self.answer {
            Some(answer) => answer.await.unwrap_or_else(|_| Err(E::from(StoreError::WriterStopped))),
            None => Err(E::from(StoreError::WriterStopped)),
        }
    }
}

impl<S: GroupStore> GroupWriter<S> {
    /// Starts the writer thread of `store`, named `name` (it shows in a
    /// profile and in a panic message).
    pub fn start(name: &str, store: Arc<Mutex<S>>) -> Result<GroupWriter<S>, StoreError> {
        let (jobs, queue) = std::sync::mpsc::sync_channel(WRITES_QUEUED_MAX);
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || write_groups(&store, &queue, &counted))
            .map_err(|error| StoreError::GroupCommit { writes: 0, reason: format!("cannot start {name}: {error}") })?;
        Ok(GroupWriter { jobs, commits })
    }

    /// Queues `work` for the next group; it runs on the writer thread with
    /// the store locked. Never blocks: a full queue refuses the write.
    pub fn submit<T, E, F>(&self, work: F) -> Pending<T, E>
    where
        F: FnOnce(&mut S) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let write: Box<dyn Write<S>> = Box::new(Typed { work: Some(work), result: None, reply });
        let refused = match self.jobs.try_send(write) {
            Ok(()) => None,
            Err(TrySendError::Full(_)) => Some(E::from(StoreError::Overloaded { queued: WRITES_QUEUED_MAX })),
            Err(TrySendError::Disconnected(_)) => Some(E::from(StoreError::WriterStopped)),
        };
        Pending { answer: refused.is_none().then_some(answer), refused }
    }

    /// [`GroupWriter::submit`], then wait for the answer.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut S) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(work).wait().await
    }

    /// How many groups this writer committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

fn write_groups<S: GroupStore>(store: &Mutex<S>, queue: &Receiver<Box<dyn Write<S>>>, commits: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let mut group = Vec::with_capacity(16);
        group.push(first);
        while group.len() < GROUP_WRITES_MAX {
            match queue.try_recv() {
                Ok(write) => group.push(write),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        assert!(!group.is_empty() && group.len() <= GROUP_WRITES_MAX);
        let failure = {
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            commit_group(&mut *store, &mut group)
        };
        if failure.is_none() {
            commits.fetch_add(1, Ordering::Relaxed);
        }
        // Answered after the lock is released: readers go on meanwhile.
        for write in group {
            write.answer(failure.as_ref());
        }
    }
}

/// Runs `group` in one transaction and commits it. `None` when it committed.
fn commit_group<S: GroupStore>(store: &mut S, group: &mut [Box<dyn Write<S>>]) -> Option<GroupFailure> {
    let writes = group.len();
    let failed = |reason: String| Some(GroupFailure { writes, reason });
    if let Err(error) = store.connection().execute_batch("BEGIN IMMEDIATE") {
        return failed(format!("cannot begin the transaction: {error}"));
    }
    let mut broken = None;
    for write in group.iter_mut() {
        if let Err(error) = store.connection().execute_batch("SAVEPOINT group_write") {
            broken = Some(format!("cannot open a savepoint: {error}"));
            break;
        }
        let kept = write.run(store);
        if store.connection().is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full disk).
            broken = Some("a write's failure rolled the transaction back".to_string());
            break;
        }
        let settle = if kept { "RELEASE group_write" } else { "ROLLBACK TO group_write; RELEASE group_write" };
        if let Err(error) = store.connection().execute_batch(settle) {
            broken = Some(format!("cannot settle a write's savepoint: {error}"));
            break;
        }
    }
    let reason = match broken {
        Some(reason) => reason,
        None => match store.connection().execute_batch("COMMIT") {
            Ok(()) => return None,
            Err(error) => format!("commit failed: {error}"),
        },
    };
    if !store.connection().is_autocommit() {
        // Nothing of the group may stay: a later group must not commit it.
        let _ = store.connection().execute_batch("ROLLBACK");
    }
    let reason = match store.reload() {
        Ok(()) => reason,
        Err(error) => format!("{reason}; reloading the store's memory failed too: {error}"),
    };
    failed(reason)
}
