//! Garbage collection: remove blobs no table references and ingest files no
//! live operation owns, as one event.
//!
//! Mark: the DiffIDs of every layer in the tables, read inside a write
//! transaction (so no commit interleaves). Sweep: every file under
//! `blobs/sha256/` and `ingest/`, under the lease registry's lock (so no
//! blob is renamed into place meanwhile), keeping what a live lease holds.

use crate::error::Result;
use crate::event::{Actor, EventBody};
use crate::lease::Registry;
use crate::store::Store;
use serde::Serialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

/// Files and bytes of one cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// How many files.
    pub count: u64,
    /// Their total size.
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// What gc removed (or, in a dry run, would remove), by cause.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Blobs no table references and no lease ever held.
    pub unreferenced: Tally,
    /// Blobs whose only lease has expired.
    pub expired_lease: Tally,
    /// Files in `ingest/` that no live operation owns (left by a crash).
    pub orphan_ingest: Tally,
    /// The blobs removed, sorted.
    pub blobs: Vec<String>,
    /// Whether this was a dry run (nothing removed).
    pub dry_run: bool,
}

impl GcReport {
    /// All bytes reclaimed.
    pub fn total_bytes(&self) -> u64 {
        self.unreferenced.bytes + self.expired_lease.bytes + self.orphan_ingest.bytes
    }
}

/// Run gc on `store`. A real run is recorded as a `BlobsCollected` event.
pub fn collect(store: &Store, actor: &Actor, dry_run: bool) -> Result<GcReport> {
    let content = store.content();
    store.write(actor, |w| {
        let referenced: HashSet<String> = w
            .tables()
            .layers()?
            .into_iter()
            .map(|(_, l)| l.diff_id)
            .collect();
        let registry = content.leases().lock();
        let now = SystemTime::now();
        let (mut live_blobs, mut expired_blobs) = (HashSet::new(), HashSet::new());
        let mut live_files: HashSet<PathBuf> = HashSet::new();
        for e in registry.entries.values() {
            if Registry::expired(e, now) {
                expired_blobs.extend(e.blobs.iter().cloned());
            } else {
                live_blobs.extend(e.blobs.iter().cloned());
                live_files.extend(e.files.iter().cloned());
            }
        }
        let mut report = GcReport {
            dry_run,
            ..Default::default()
        };
        let mut doomed: Vec<PathBuf> = Vec::new();
        for digest in content.list()? {
            if referenced.contains(&digest) || live_blobs.contains(&digest) {
                continue;
            }
            let path = content.path(&digest);
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if expired_blobs.contains(&digest) {
                report.expired_lease.add(size);
            } else {
                report.unreferenced.add(size);
            }
            report.blobs.push(digest);
            doomed.push(path);
        }
        for entry in std::fs::read_dir(content.ingest_root())? {
            let path = entry?.path();
            if live_files.contains(&path) {
                continue;
            }
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            report.orphan_ingest.add(size);
            doomed.push(path);
        }
        if dry_run || doomed.is_empty() {
            return Ok(report);
        }
        // The event commits with this transaction; removing files first is
        // safe: nothing references them, and a crash before the commit only
        // loses the record of a collection, never a referenced blob.
        for path in &doomed {
            crate::crash::point("gc-remove");
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        std::fs::File::open(content.blobs_dir())?.sync_all()?;
        drop(registry);
        w.emit(EventBody::BlobsCollected {
            blobs: report.blobs.clone(),
            bytes: report.total_bytes(),
        })?;
        Ok(report)
    })
}
