//! The group writer over a real SQLite file: concurrent writers share
//! commits and are all durable, a refused write rolls back alone, and a
//! group whose transaction breaks answers every write in it with the error.
//! This file is its own process: the process's commit count
//! (`interlock_core::counters`) holds only these tests' commits.

use interlock_rpc::store::{open, GroupStore, GroupWriter, StoreError};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);";
const WRITERS: u64 = 200;

/// A store with something in memory beside the file: the notes it wrote.
struct Notes {
    connection: Connection,
    written: Vec<u64>,
    reloads: u32,
}

impl Notes {
    fn open(path: &Path) -> Notes {
        Notes { connection: open(path, SCHEMA).unwrap(), written: Vec::new(), reloads: 0 }
    }

    /// One write: a savepoint, like every store's writes.
    fn add(&mut self, id: u64, refuse: bool) -> Result<u64, StoreError> {
        let savepoint = self.connection.savepoint()?;
        savepoint.execute("INSERT INTO notes (id, text) VALUES (?1, ?2)", (id, format!("note {id}")))?;
        if refuse {
            return Err(StoreError::Corrupt { deal_id: id.to_string(), reason: "refused on purpose".into() });
        }
        savepoint.commit()?;
        self.written.push(id);
        Ok(id)
    }

    /// The ids in the file at `path`, read afresh.
    fn stored(path: &Path) -> Vec<u64> {
        ids(&Connection::open(path).unwrap()).unwrap()
    }
}

/// The ids of the notes `connection` holds, in order.
fn ids(connection: &Connection) -> rusqlite::Result<Vec<u64>> {
    let mut statement = connection.prepare("SELECT id FROM notes ORDER BY id")?;
    let ids = statement.query_map([], |row| row.get(0))?.collect();
    ids
}

impl GroupStore for Notes {
    fn connection(&self) -> &Connection {
        &self.connection
    }

    fn reload(&mut self) -> Result<(), StoreError> {
        self.written = ids(&self.connection)?;
        self.reloads += 1;
        Ok(())
    }
}

/// A notes file in `dir` behind a group writer: its path, the store and the writer.
fn start(dir: &Path) -> (PathBuf, Arc<Mutex<Notes>>, GroupWriter<Notes>) {
    let path = dir.join("notes.sqlite");
    let store = Arc::new(Mutex::new(Notes::open(&path)));
    let writer = GroupWriter::start("notes-writer", store.clone()).unwrap();
    (path, store, writer)
}

/// One write to the notes, boxed to wait beside others.
type NoteWrite = Box<dyn FnOnce(&mut Notes) -> Result<u64, StoreError> + Send>;

/// Sends `writes` while the store is locked, so that they wait together,
/// then lets the writer go and collects every answer.
async fn write_together(
    store: &Arc<Mutex<Notes>>,
    writer: &GroupWriter<Notes>,
    writes: Vec<NoteWrite>,
) -> Vec<Result<u64, StoreError>> {
    let held = store.lock().unwrap();
    let pending: Vec<_> = writes.into_iter().map(|write| writer.submit(write)).collect();
    drop(held);
    let mut answers = Vec::new();
    for write in pending {
        answers.push(write.wait().await);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits_are_all_answered_and_durable_and_a_refusal_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store, writer) = start(dir.path());
    let commits_before = interlock_core::counters::counts().durable_commits;

    // Writers on tasks of their own, all at once.
    let tasks: Vec<_> = (1..=WRITERS)
        .map(|id| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.write(move |notes: &mut Notes| notes.add(id, false)).await })
        })
        .collect();
    for (id, task) in (1..=WRITERS).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), id, "writer {id} is answered with its own result");
    }
    let commits = interlock_core::counters::counts().durable_commits - commits_before;
    assert!((1..WRITERS).contains(&commits), "{WRITERS} writers took {commits} commits");
    // The other test of this process commits too, so at least the writer's.
    assert!((1..=commits).contains(&writer.commits()), "the writer counted {} of {commits}", writer.commits());

    // Refused writes among accepted ones, in one group.
    let writes: Vec<NoteWrite> = (1_001..=1_010)
        .map(|id| {
            let refuse = id % 3 == 0;
            Box::new(move |notes: &mut Notes| notes.add(id, refuse)) as Box<_>
        })
        .collect();
    let before = writer.commits();
    let answers = write_together(&store, &writer, writes).await;
    assert!(writer.commits() - before <= 2, "ten writes waiting together take one group (two at most)");
    for (id, answer) in (1_001..=1_010).zip(&answers) {
        match answer {
            Ok(done) => assert_eq!(*done, id),
            Err(error) => {
                assert_eq!(id % 3, 0, "only the refused writes fail: {id}: {error}");
                assert!(error.to_string().contains("refused on purpose"), "{error}");
            }
        }
    }
    assert_eq!(answers.iter().filter(|answer| answer.is_err()).count(), 3);

    drop(writer);
    let stored = Notes::stored(&path);
    let expected: Vec<u64> = (1..=WRITERS).chain((1_001..=1_010).filter(|id| id % 3 != 0)).collect();
    assert_eq!(stored, expected, "every acknowledged write is in the file, no refused one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_transaction_breaks_answers_every_write_with_the_error_and_reloads_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store, writer) = start(dir.path());
    writer.write(|notes: &mut Notes| notes.add(1, false)).await.unwrap();

    // The third write rolls the whole transaction back, as SQLite does on
    // an I/O error or a full disk: nothing of the group may be acknowledged.
    let writes: Vec<NoteWrite> = vec![
        Box::new(|notes: &mut Notes| notes.add(2, false)),
        Box::new(|notes: &mut Notes| notes.add(3, false)),
        Box::new(|notes: &mut Notes| {
            notes.connection.execute_batch("ROLLBACK")?;
            Ok(4)
        }),
        Box::new(|notes: &mut Notes| notes.add(5, false)),
    ];
    let answers = write_together(&store, &writer, writes).await;
    // The first write may have gone in a group of its own before the lock was held.
    let failed: Vec<String> =
        answers.iter().filter_map(|answer| answer.as_ref().err().map(ToString::to_string)).collect();
    assert!(failed.len() >= 3, "every write of the broken group fails: {answers:?}");
    for error in &failed {
        assert!(error.contains("failed to commit a group"), "{error}");
    }
    let stored = Notes::stored(&path);
    let acknowledged: Vec<u64> =
        std::iter::once(1).chain(answers.iter().filter_map(|a| a.as_ref().ok().copied())).collect();
    assert_eq!(stored, acknowledged, "the file holds exactly the acknowledged writes");
    {
        let notes = store.lock().unwrap();
        assert_eq!(notes.written, stored, "memory was read back from the file");
        assert_eq!(notes.reloads, 1);
    }

    // The writer goes on after a broken group.
    assert_eq!(writer.write(|notes: &mut Notes| notes.add(6, false)).await.unwrap(), 6);
    assert!(Notes::stored(&path).contains(&6));
}
