//! Fault injection for the crash-safety tests.
//!
//! With `STRATA_TEST_CRASH_AT=N` in the environment the process aborts
//! (like SIGKILL: no destructors, no flushes) at the N-th crash point it
//! passes. Crash points sit where ordering matters: every chunk written to a
//! blob, before and after a blob's fsync, after its rename, after the
//! directory fsync, before and after each transaction commit, and at every
//! write and sync redb makes through [`CrashBackend`].
//!
//! With `STRATA_TEST_CRASH_MODE=power-loss` as well, the database writes
//! since its last sync are undone before aborting, modelling an OS crash
//! rather than a killed process.
//!
//! Without those variables a crash point costs one atomic load.

use redb::StorageBackend;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Plan {
    at: u64,
    power_loss: bool,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let at = std::env::var("STRATA_TEST_CRASH_AT").ok()?.parse().ok()?;
        let power_loss = std::env::var("STRATA_TEST_CRASH_MODE").is_ok_and(|m| m == "power-loss");
        Some(Plan { at, power_loss })
    })
    .as_ref()
}

static PASSED: AtomicU64 = AtomicU64::new(0);

/// Undo records of database writes not yet synced (power-loss mode).
type UndoLog = Vec<(u64, Vec<u8>, u64)>;
static UNDO: OnceLock<Mutex<Option<(redb::backends::FileBackend, UndoLog)>>> = OnceLock::new();

fn die(name: &str, n: u64) -> ! {
    if let Some(p) = plan()
        && p.power_loss
        && let Some(slot) = UNDO.get()
        && let Ok(mut guard) = slot.lock()
        && let Some((file, undo)) = guard.as_mut()
    {
        for (offset, old, old_len) in undo.drain(..).rev() {
            let _ = file.write(offset, &old);
            let _ = file.set_len(old_len);
        }
        let _ = file.sync_data();
    }
    eprintln!("strata: test crash at point {n} ({name})");
    std::process::abort()
}

/// How many crash points this process has passed (for the test harness).
pub fn passed() -> u64 {
    PASSED.load(Ordering::SeqCst)
}

/// A crash point.
pub(crate) fn point(name: &'static str) {
    if let Some(p) = plan() {
        let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
        if n == p.at {
            die(name, n);
        }
    }
}

/// A redb storage backend that passes crash points on every write and sync.
#[derive(Debug)]
pub(crate) struct CrashBackend {
    inner: redb::backends::FileBackend,
}

impl CrashBackend {
    pub(crate) fn new(file: std::fs::File) -> Result<CrashBackend, redb::DatabaseError> {
        let power_loss = plan().is_some_and(|p| p.power_loss);
        if power_loss {
            let shadow = redb::backends::FileBackend::new(file.try_clone()?)?;
            let _ = UNDO.set(Mutex::new(Some((shadow, Vec::new()))));
        }
        Ok(CrashBackend {
            inner: redb::backends::FileBackend::new(file)?,
        })
    }

    fn remember(&self, offset: u64, len: usize) -> Result<(), std::io::Error> {
        let Some(slot) = UNDO.get() else {
            return Ok(());
        };
        let file_len = self.inner.len()?;
        let mut old = vec![0u8; len];
        let readable = file_len.saturating_sub(offset).min(len as u64) as usize;
        if readable > 0 {
            self.inner.read(offset, &mut old[..readable])?;
        }
        if let Ok(mut g) = slot.lock()
            && let Some((_, undo)) = g.as_mut()
        {
            undo.push((offset, old[..readable].to_vec(), file_len));
        }
        Ok(())
    }
}

impl StorageBackend for CrashBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        point("db-set-len");
        self.remember(len.min(self.inner.len()?), 0)?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        point("db-before-sync");
        self.inner.sync_data()?;
        if let Some(slot) = UNDO.get()
            && let Ok(mut g) = slot.lock()
            && let Some((_, undo)) = g.as_mut()
        {
            undo.clear();
        }
        point("db-after-sync");
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        point("db-write");
        self.remember(offset, data.len())?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }
    fn try_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }
    fn lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.inner.lock_range(start, end)
    }
    fn lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.inner.lock_shared_range(start, end)
    }
    fn unlock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.inner.unlock_range(start, end)
    }
    fn query_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
