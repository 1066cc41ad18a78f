//! Leases: what in-flight work protects from garbage collection.
//!
//! Every ingest holds a lease on its temporary file from creation and, once
//! committed, on its blob, until the lease expires. That covers the window
//! between a blob's rename into place and the commit of the event that
//! names it. Longer work (a pull keeping partial downloads) takes an
//! explicit [`Lease`] and protects blobs with it. gc takes the registry
//! lock for its whole sweep, and a blob is protected (under the same lock)
//! before it is renamed into place, so a sweep never deletes a blob that an
//! in-flight operation is about to reference.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How long a committed ingest protects its blob by default.
pub const INGEST_LEASE: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub expires: Option<SystemTime>,
    pub blobs: HashSet<String>,
    pub files: HashSet<PathBuf>,
}

/// All leases of one content store.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    next: u64,
    pub entries: HashMap<u64, Entry>,
}

impl Registry {
    /// Whether `now` is past the entry's expiry.
    pub fn expired(e: &Entry, now: SystemTime) -> bool {
        e.expires.is_some_and(|t| t <= now)
    }
}

/// The registry, shared by a content store and its leases.
#[derive(Debug, Default, Clone)]
pub(crate) struct Leases(Arc<Mutex<Registry>>);

impl Leases {
    pub fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new lease without expiry (until dropped or given one).
    pub fn acquire(&self) -> Lease {
        let mut r = self.lock();
        r.next += 1;
        let id = r.next;
        r.entries.insert(id, Entry::default());
        Lease {
            id,
            leases: self.clone(),
            keep_after_drop: false,
        }
    }
}

/// A hold on blobs and files: gc leaves them alone while it is live.
#[derive(Debug)]
pub struct Lease {
    id: u64,
    leases: Leases,
    keep_after_drop: bool,
}

impl Lease {
    /// Protect blob `digest`.
    pub fn protect(&self, digest: &str) {
        if let Some(e) = self.leases.lock().entries.get_mut(&self.id) {
            e.blobs.insert(digest.to_string());
        }
    }

    /// Protect with the registry already locked (for rename-under-lock).
    pub(crate) fn protect_locked(&self, r: &mut Registry, digest: &str) {
        if let Some(e) = r.entries.get_mut(&self.id) {
            e.blobs.insert(digest.to_string());
        }
    }

    /// Create a file with `make` and track it, atomically with respect to
    /// gc (which sweeps `ingest/` under the same lock).
    pub(crate) fn create_tracked<T>(
        &self,
        make: impl FnOnce() -> std::io::Result<T>,
        path_of: impl FnOnce(&T) -> PathBuf,
    ) -> std::io::Result<T> {
        let mut r = self.leases.lock();
        let made = make()?;
        if let Some(e) = r.entries.get_mut(&self.id) {
            e.files.insert(path_of(&made));
        }
        Ok(made)
    }

    pub(crate) fn untrack_file_locked(&self, r: &mut Registry, path: &PathBuf) {
        if let Some(e) = r.entries.get_mut(&self.id) {
            e.files.remove(path);
        }
    }

    /// Keep protecting until `ttl` from now, even after this handle is dropped.
    pub fn expire_after(mut self, ttl: Duration) {
        if let Some(e) = self.leases.lock().entries.get_mut(&self.id) {
            e.expires = Some(SystemTime::now() + ttl);
        }
        self.keep_after_drop = true;
    }

    pub(crate) fn registry(&self) -> &Leases {
        &self.leases
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.keep_after_drop {
            self.leases.lock().entries.remove(&self.id);
        }
    }
}
