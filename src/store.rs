//! Opening a store, and its one write path.
//!
//! A store is a directory: `strata.redb` (the event log, the projection
//! tables and metadata) and the content store (`blobs/`, `ingest/`).
//!
//! Every mutation is [`Store::write`]: one redb write transaction in which
//! the caller validates against the current tables and emits events; each
//! event is appended to the log and applied to the tables at once (so later
//! checks in the same operation see it), and the transaction commits
//! (fsync) before `write` returns. If the closure fails, nothing is written.
//! After a failed commit the store refuses further writes until reopened.

use crate::content::ContentStore;
use crate::error::{Error, Result};
use crate::event::{Actor, Envelope, EventBody, FORMAT_VERSION};
use crate::log::{self, ChainBreak, LogHead};
use crate::projection::{self, Dump, MemTables, ReadTables, WriteTables};
use redb::{ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// redb's page cache, in MiB, unless `STRATA_CACHE_MIB` says otherwise.
/// redb's own default (1 GiB) lets a long-running `strata serve` grow by
/// every page it has touched; the OS page cache keeps the rest warm.
const DEFAULT_CACHE_MIB: usize = 32;

/// redb settings shared by writers and read-only openers: one writing
/// process, any number of readers that follow its commits, and a bounded
/// page cache.
fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
    let mib = std::env::var("STRATA_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_CACHE_MIB);
    b.set_cache_size(mib << 20);
    b
}

/// The on-disk schema version this strata writes.
pub const SCHEMA_VERSION: u64 = 1;
const SCHEMA_KEY: &str = "schema_version";

enum Db {
    ReadWrite(redb::Database),
    ReadOnly(redb::ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        Ok(match self {
            Db::ReadWrite(db) => db.begin_read()?,
            Db::ReadOnly(db) => db.begin_read()?,
        })
    }
}

/// An open store.
pub struct Store {
    root: PathBuf,
    db: Db,
    content: ContentStore,
    poisoned: AtomicBool,
    /// How many times this handle rebuilt the tables (part of [`TablesVersion`]).
    rebuilds: AtomicU64,
    events: tokio::sync::broadcast::Sender<std::sync::Arc<[Envelope]>>,
}

/// Which state of the tables a read sees: equal versions, equal tables.
///
/// Every write that changes the tables appends events, so the log head's
/// sequence number names the state; a rebuild of the tables from the log
/// (the repair of damaged tables, which appends nothing) is counted besides.
/// A rebuild by another process is not seen until its next write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TablesVersion {
    next_seq: u64,
    rebuilds: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

/// The current time as unix nanoseconds.
pub(crate) fn now_unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Open the store at `root`, creating it when it does not exist.
    ///
    /// Errors: [`crate::ErrorKind::Unavailable`] when another process holds
    /// the store open; [`crate::ErrorKind::Corrupt`] when its schema is newer
    /// than this strata.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::from(e).context(format!("creating store {}", root.display())))?;
        let content = ContentStore::open(&root)?;
        let db_path = root.join("strata.redb");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&db_path)
            .map_err(|e| Error::from(e).context(format!("opening {}", db_path.display())))?;
        let backend = crate::crash::CrashBackend::new(file)
            .map_err(|e| Error::from(e).context(format!("opening {}", db_path.display())))?;
        let db = builder()
            .create_with_backend(backend)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Error::new(
                    crate::ErrorKind::Unavailable,
                    format!(
                        "store {} is in use by another process (is `strata serve` running on it?)",
                        root.display()
                    ),
                ),
                e => Error::from(e).context(format!("opening {}", db_path.display())),
            })?;
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let store = Store {
            root,
            db: Db::ReadWrite(db),
            content,
            poisoned: AtomicBool::new(false),
            rebuilds: AtomicU64::new(0),
            events,
        };
        store.init_schema()?;
        Ok(store)
    }

    /// Open an existing store read-only. Works while another process
    /// (`strata serve`) has it open for writing, and sees its commits.
    pub fn open_read_only(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        let db_path = root.join("strata.redb");
        if !db_path.is_file() {
            return Err(Error::not_found(format!("no store at {}", root.display())));
        }
        let db = builder().open_read_only(&db_path).map_err(|e| {
            Error::from(e).context(format!("opening {} read-only", db_path.display()))
        })?;
        let (events, _) = tokio::sync::broadcast::channel(16);
        Ok(Store {
            content: ContentStore::at(&root),
            root,
            db: Db::ReadOnly(db),
            poisoned: AtomicBool::new(false),
            rebuilds: AtomicU64::new(0),
            events,
        })
    }

    /// Open the store for a caller that only reads (listing, inspecting):
    /// read-only when the store exists at this schema, so opening and
    /// closing write nothing and sync nothing; otherwise as [`Store::open`]
    /// (which creates, migrates or recovers it).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// drop(strata::Store::open(dir.path())?);
    /// let store = strata::Store::open_for_reads(dir.path())?;
    /// assert!(store.is_read_only());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_for_reads(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref();
        match Store::open_read_only(root) {
            Ok(store) if store.schema_is_current() => Ok(store),
            // Missing, older, or needing recovery: the writable open deals
            // with each (or names the problem).
            _ => Store::open(root),
        }
    }

    /// Whether this handle was opened read-only (writes are refused).
    pub fn is_read_only(&self) -> bool {
        matches!(self.db, Db::ReadOnly(_))
    }

    fn rw(&self) -> Result<&redb::Database> {
        match &self.db {
            Db::ReadWrite(db) => Ok(db),
            Db::ReadOnly(_) => Err(Error::new(
                crate::ErrorKind::Unavailable,
                "the store is open read-only",
            )),
        }
    }

    /// Whether the store is already at this schema with every table present:
    /// then opening needs no write (and no fsync).
    fn schema_is_current(&self) -> bool {
        let Ok(txn) = self.db.begin_read() else {
            return false;
        };
        let current = txn.open_table(log::META).ok().and_then(|meta| {
            meta.get(SCHEMA_KEY)
                .ok()
                .flatten()
                .map(|v| v.value().to_vec())
        });
        current.as_deref() == Some(SCHEMA_VERSION.to_le_bytes().as_slice())
            && txn.open_table(log::EVENTS).is_ok()
            && ReadTables::open_read(&txn).is_ok()
    }

    fn init_schema(&self) -> Result<()> {
        if self.schema_is_current() {
            return Ok(());
        }
        let txn = self.rw()?.begin_write()?;
        {
            let mut meta = txn.open_table(log::META)?;
            let current = meta
                .get(SCHEMA_KEY)?
                .map(|v| v.value().to_vec())
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8])));
            match current {
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_le_bytes().as_slice())?;
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(v) if v < SCHEMA_VERSION => {
                    let to = crate::migrations::migrate(
                        &txn,
                        v,
                        SCHEMA_VERSION,
                        crate::migrations::STEPS,
                    )?;
                    meta.insert(SCHEMA_KEY, to.to_le_bytes().as_slice())?;
                }
                Some(v) => {
                    return Err(Error::corrupt(format!(
                        "store schema version {v} is newer than this strata reads ({SCHEMA_VERSION}); upgrade strata"
                    )));
                }
            }
            txn.open_table(log::EVENTS)?;
            drop(WriteTables::open_write(&txn)?);
        }
        txn.commit()?;
        Ok(())
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Subscribe to events as they commit: one message per write, holding
    /// its events in order.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<[Envelope]>> {
        self.events.subscribe()
    }

    /// Run `f` on a consistent snapshot of the tables.
    pub fn read<R>(&self, f: impl FnOnce(&ReadTables) -> Result<R>) -> Result<R> {
        let txn = self.db.begin_read()?;
        let tables = ReadTables::open_read(&txn)?;
        f(&tables)
    }

    /// [`Store::read`], also telling `f` which version of the tables it sees
    /// (for views derived from the tables and cached until the next write).
    pub(crate) fn read_versioned<R>(
        &self,
        f: impl FnOnce(TablesVersion, &ReadTables) -> Result<R>,
    ) -> Result<R> {
        // Read the rebuild count before the snapshot: a rebuild that lands
        // in between makes the version look older than the tables, never
        // newer, so a stale view is never taken for a current one.
        let rebuilds = self.rebuilds.load(Ordering::SeqCst);
        let txn = self.db.begin_read()?;
        let head = log::read_head(&txn.open_table(log::META)?)?;
        let tables = ReadTables::open_read(&txn)?;
        let version = TablesVersion {
            next_seq: head.next_seq,
            rebuilds,
        };
        f(version, &tables)
    }

    /// The one write path: run `f` in a write transaction, where it reads the
    /// tables and emits events; commit durably if it succeeds and emitted
    /// anything. Returns what `f` returned.
    pub fn write<R>(
        &self,
        actor: &Actor,
        f: impl FnOnce(&mut Writer<'_>) -> Result<R>,
    ) -> Result<R> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(Error::new(
                crate::ErrorKind::Unavailable,
                "the store refuses writes after a failed commit; reopen it",
            ));
        }
        let txn = self.rw()?.begin_write()?;
        let (result, appended) = {
            let meta = txn.open_table(log::META)?;
            let head = log::read_head(&meta)?;
            let mut w = Writer {
                tables: WriteTables::open_write(&txn)?,
                events: txn.open_table(log::EVENTS)?,
                meta,
                head,
                time: now_unix_nanos(),
                actor: actor.clone(),
                appended: Vec::new(),
            };
            let result = f(&mut w)?;
            let head = w.head;
            log::write_head(&mut w.meta, &head)?;
            (result, w.appended)
        };
        if appended.is_empty() {
            txn.abort()?;
            return Ok(result);
        }
        crate::crash::point("before-commit");
        if let Err(e) = txn.commit() {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(Error::from(e));
        }
        crate::crash::point("after-commit");
        if !appended.is_empty() {
            let _ = self.events.send(appended.into());
        }
        Ok(result)
    }

    /// The log head: next sequence number and last hash.
    pub fn head(&self) -> Result<LogHead> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(log::META)?;
        log::read_head(&meta)
    }

    /// Events with `from <= seq <= to`.
    pub fn events(&self, from: u64, to: u64) -> Result<Vec<Envelope>> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(log::EVENTS)?;
        log::scan(&events, from, to)
    }

    /// Check the hash chain of the whole log.
    pub fn verify_chain(&self) -> Result<std::result::Result<u64, ChainBreak>> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(log::META)?;
        let head = log::read_head(&meta)?;
        let events = txn.open_table(log::EVENTS)?;
        log::verify_chain(&events, &head)
    }

    /// Fold the log from scratch into fresh in-memory tables and compare them
    /// with the live tables. `Ok(None)` when equal; otherwise the first difference.
    pub fn verify_replay(&self) -> Result<Option<String>> {
        let txn = self.db.begin_read()?;
        let live = ReadTables::open_read(&txn)?.dump()?;
        let events = txn.open_table(log::EVENTS)?;
        let replayed = replay_dump(&events, u64::MAX)?;
        Ok(first_difference(&live, &replayed))
    }

    /// Overwrite the raw bytes of event `seq` (tests of tamper detection only).
    #[doc(hidden)]
    pub fn tamper_with_event(&self, seq: u64, f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let txn = self.rw()?.begin_write()?;
        {
            let mut events = txn.open_table(log::EVENTS)?;
            let mut bytes = events
                .get(seq)?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| Error::not_found(format!("no event {seq}")))?;
            f(&mut bytes);
            events.insert(seq, bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl Store {
    /// Rebuild every projection table from the log (one transaction): the
    /// repair for tables that are damaged or differ from a replay.
    pub fn rebuild_tables(&self) -> Result<u64> {
        let txn = self.rw()?.begin_write()?;
        let mut n = 0;
        {
            WriteTables::drop_all(&txn)?;
            let mut tables = WriteTables::open_write(&txn)?;
            let events = txn.open_table(log::EVENTS)?;
            for item in events.iter()? {
                let (k, v) = item?;
                let env = Envelope::decode(v.value())
                    .map_err(|e| e.context(format!("event {}", k.value())))?;
                projection::apply(&mut tables, &env)?;
                n += 1;
            }
        }
        txn.commit()
            .inspect_err(|_| self.poisoned.store(true, Ordering::SeqCst))?;
        self.rebuilds.fetch_add(1, Ordering::SeqCst);
        Ok(n)
    }

    /// Time travel: make a new store in `dir` holding events `1..=to` of
    /// this one, verbatim (same bytes, same hash chain), their projection,
    /// and the layer blobs it names (hard-linked when possible).
    pub fn replay_into(&self, dir: &Path, to: u64) -> Result<Store> {
        let target = Store::open(dir)?;
        if target.head()? != LogHead::EMPTY {
            return Err(Error::invalid(format!(
                "{} already holds a store with events; replay needs an empty directory",
                dir.display()
            )));
        }
        let src = self.db.begin_read()?;
        let src_events = src.open_table(log::EVENTS)?;
        let txn = target.rw()?.begin_write()?;
        {
            let mut tables = WriteTables::open_write(&txn)?;
            let mut events = txn.open_table(log::EVENTS)?;
            let mut meta = txn.open_table(log::META)?;
            let mut head = LogHead::EMPTY;
            for item in src_events.range(1..=to)? {
                let (k, v) = item?;
                let env = Envelope::decode(v.value())
                    .map_err(|e| e.context(format!("event {}", k.value())))?;
                events.insert(k.value(), v.value())?;
                projection::apply(&mut tables, &env)?;
                head = LogHead {
                    next_seq: env.seq + 1,
                    last_hash: Envelope::hash_bytes(v.value()),
                };
            }
            log::write_head(&mut meta, &head)?;
            for (_, layer) in tables.layers()? {
                self.content.link_into(&target.content, &layer.diff_id)?;
            }
        }
        txn.commit()?;
        Ok(target)
    }

    /// Append `events` (time, actor, body) to an empty store in one
    /// transaction, re-validated by `apply` and re-chained. Every layer blob
    /// an event names must already be in this store's content store.
    pub fn import_events(&self, events: Vec<(i64, Actor, EventBody)>) -> Result<u64> {
        if self.head()? != LogHead::EMPTY {
            return Err(Error::invalid("import needs an empty store"));
        }
        let n = events.len() as u64;
        let anyone = Actor::default();
        self.write(&anyone, |w| {
            for (i, (time, actor, body)) in events.into_iter().enumerate() {
                if let EventBody::LayerRegistered { diff_id, .. } = &body
                    && !self.content.contains(diff_id)
                {
                    return Err(Error::invalid(format!(
                        "event {}: layer blob {diff_id} is not in the store",
                        i + 1
                    )));
                }
                w.emit_as(body, time, actor)
                    .map_err(|e| e.context(format!("event {}", i + 1)))?;
            }
            Ok(())
        })?;
        Ok(n)
    }
}

/// Replay events `1..=to` into an in-memory database and dump its tables.
fn replay_dump<T: ReadableTable<u64, &'static [u8]>>(events: &T, to: u64) -> Result<Dump> {
    replay_in_memory(events, to)?.dump()
}

/// Fold events `1..=to` of `events` into fresh in-memory tables. Two
/// threads: this one reads and decodes events (configs included), the
/// other folds them in order.
fn replay_in_memory<T: ReadableTable<u64, &'static [u8]>>(
    events: &T,
    to: u64,
) -> Result<MemTables> {
    type Batch = Vec<(Envelope, Option<projection::Decoded>)>;
    const BATCH: usize = 256;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(64);
    std::thread::scope(|scope| {
        let folder = scope.spawn(move || -> Result<MemTables> {
            let mut tables = MemTables::new();
            for batch in rx {
                for (env, decoded) in batch {
                    projection::apply_decoded(&mut tables, &env, decoded)?;
                }
            }
            Ok(tables)
        });
        let read = (|| -> Result<()> {
            let mut batch = Vec::with_capacity(BATCH);
            for item in events.range(1..=to)? {
                let (k, v) = item?;
                let env = Envelope::decode(v.value())
                    .map_err(|e| e.context(format!("event {}", k.value())))?;
                let decoded = projection::Decoded::of(&env);
                batch.push((env, decoded));
                if batch.len() == BATCH
                    && tx
                        .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                        .is_err()
                {
                    // The folder stopped on an error: it reports it.
                    return Ok(());
                }
            }
            let _ = tx.send(batch);
            Ok(())
        })();
        drop(tx);
        // The folder's error comes first: it is about an earlier event
        // than any error the reader met.
        let tables = folder
            .join()
            .map_err(|_| Error::internal("replay thread panicked"))??;
        read?;
        Ok(tables)
    })
}

fn first_difference(live: &Dump, replayed: &Dump) -> Option<String> {
    for ((name, a), (_, b)) in live.iter().zip(replayed) {
        let mut ia = a.iter();
        let mut ib = b.iter();
        loop {
            match (ia.next(), ib.next()) {
                (None, None) => break,
                (Some((k, _)), None) => {
                    return Some(format!("table {name}: row {k:?} is not produced by replay"));
                }
                (None, Some((k, _))) => {
                    return Some(format!(
                        "table {name}: row {k:?} is missing from the live table"
                    ));
                }
                (Some((ka, va)), Some((kb, vb))) => {
                    if ka != kb {
                        let k = ka.min(kb);
                        return Some(format!("table {name}: row {k:?} differs from replay"));
                    }
                    if va != vb {
                        return Some(format!("table {name}: row {ka:?} differs from replay"));
                    }
                }
            }
        }
    }
    None
}

/// A write in progress: read the tables, emit events.
pub struct Writer<'txn> {
    tables: WriteTables<'txn>,
    events: redb::Table<'txn, u64, &'static [u8]>,
    meta: redb::Table<'txn, &'static str, &'static [u8]>,
    head: LogHead,
    time: i64,
    actor: Actor,
    appended: Vec<Envelope>,
}

impl<'txn> Writer<'txn> {
    /// The tables as they are now, including this write's events so far.
    pub fn tables(&self) -> &WriteTables<'txn> {
        &self.tables
    }

    /// The time every event of this write carries (unix nanoseconds).
    pub fn time_unix_nanos(&self) -> i64 {
        self.time
    }

    /// Append `body` to the log and apply it to the tables.
    pub fn emit(&mut self, body: EventBody) -> Result<()> {
        let (time, actor) = (self.time, self.actor.clone());
        self.emit_as(body, time, actor)
    }

    /// [`Writer::emit`] with a given time and actor (importing a log).
    fn emit_as(&mut self, body: EventBody, time_unix_nanos: i64, actor: Actor) -> Result<()> {
        let env = Envelope {
            version: FORMAT_VERSION,
            seq: self.head.next_seq,
            time_unix_nanos,
            actor,
            prev_hash: self.head.last_hash,
            body,
        };
        let bytes = env.encode()?;
        self.events.insert(env.seq, bytes.as_slice())?;
        projection::apply(&mut self.tables, &env)?;
        self.head = LogHead {
            next_seq: env.seq + 1,
            last_hash: Envelope::hash_bytes(&bytes),
        };
        self.appended.push(env);
        Ok(())
    }
}
