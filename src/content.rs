//! Content-addressed blobs under `<root>/blobs/sha256/<hex>`.
//!
//! Writing goes through [`Ingest`]: bytes stream into a private file under
//! `<root>/ingest/` while being hashed; [`Ingest::commit`] fsyncs the file,
//! renames it to its digest's name and fsyncs the directory. Only then may
//! an event that names the blob commit. A crash in between leaves at worst
//! an orphan file in `ingest/` or an unreferenced blob: garbage, never a
//! dangling reference.

use crate::digest::{Hasher, hex_part};
use crate::error::{Error, Result};
use crate::lease::{INGEST_LEASE, Lease, Leases};
use crate::stream_hash::StreamHasher;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The blob directory of a store.
#[derive(Clone, Debug)]
pub struct ContentStore {
    root: PathBuf,
    leases: Leases,
}

impl ContentStore {
    /// Open (creating directories as needed) the content store under `root`.
    pub fn open(root: &Path) -> Result<ContentStore> {
        let cs = ContentStore {
            root: root.to_path_buf(),
            leases: Leases::default(),
        };
        fs::create_dir_all(cs.blob_dir())?;
        fs::create_dir_all(cs.ingest_dir())?;
        Ok(cs)
    }

    /// The content store under `root`, without creating anything (read-only use).
    pub fn at(root: &Path) -> ContentStore {
        ContentStore {
            root: root.to_path_buf(),
            leases: Leases::default(),
        }
    }

    /// A lease: blobs it protects survive gc until it is dropped (or, after
    /// [`Lease::expire_after`], until it expires).
    pub fn lease(&self) -> Lease {
        self.leases.acquire()
    }

    pub(crate) fn leases(&self) -> &Leases {
        &self.leases
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.blob_dir()
    }

    pub(crate) fn ingest_root(&self) -> PathBuf {
        self.ingest_dir()
    }

    /// Put the blob `digest` into `other` (a hard link when both are on one
    /// filesystem, else a copy), durably.
    pub fn link_into(&self, other: &ContentStore, digest: &str) -> Result<()> {
        let dest = other.path(digest);
        if dest.is_file() {
            return Ok(());
        }
        let src = self.path(digest);
        if fs::hard_link(&src, &dest).is_err() {
            let mut w = other.ingest()?;
            io::copy(&mut self.open_blob(digest)?, &mut w)?;
            let (got, _) = w.commit()?;
            if got != digest {
                return Err(Error::corrupt(format!(
                    "blob {digest} is damaged: its content hashes to {got}"
                )));
            }
        }
        File::open(other.blob_dir())?.sync_all()?;
        Ok(())
    }

    /// Re-hash a blob; `Ok(None)` when it matches its name, else what it hashes to.
    pub fn check(&self, digest: &str) -> Result<Option<String>> {
        let mut h = Hasher::new();
        io::copy(&mut self.open_blob(digest)?, &mut h)?;
        let got = h.finish();
        Ok((got != digest).then_some(got))
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &str) -> PathBuf {
        self.blob_dir().join(hex_part(digest))
    }

    /// Whether the blob exists.
    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_file()
    }

    /// Open a blob for reading.
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        File::open(self.path(digest)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::corrupt(format!("blob {digest} is missing from the content store"))
            } else {
                Error::from(e)
            }
        })
    }

    /// Start writing a new blob. Its file, and once committed the blob,
    /// are leased (for [`INGEST_LEASE`] after the commit).
    pub fn ingest(&self) -> Result<Ingest> {
        let lease = self.lease();
        let tmp = lease.create_tracked(
            || {
                tempfile::Builder::new()
                    .prefix("ingest-")
                    .tempfile_in(self.ingest_dir())
            },
            |f| f.path().to_path_buf(),
        )?;
        Ok(Ingest {
            file: Some(tmp),
            hasher: StreamHasher::new(),
            blob_dir: self.blob_dir(),
            lease: Some(lease),
        })
    }

    /// A scratch file in the ingest directory (removed when dropped),
    /// protected from gc by `lease`.
    pub fn staging_file(&self, lease: &Lease) -> Result<tempfile::NamedTempFile> {
        Ok(lease.create_tracked(
            || {
                tempfile::Builder::new()
                    .prefix("staging-")
                    .tempfile_in(self.ingest_dir())
            },
            |f| f.path().to_path_buf(),
        )?)
    }

    /// The partial download of blob `digest`, `<root>/ingest/partial-<hex>`:
    /// opened for reading and writing (created empty if missing, never
    /// truncated) and tracked by `lease` atomically with respect to gc, so it
    /// survives gc while `lease` is live (see `distribution::pull`).
    pub(crate) fn partial_file(&self, lease: &Lease, digest: &str) -> Result<(File, PathBuf)> {
        let hex = hex_part(digest);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!("invalid digest {digest:?}")));
        }
        let path = self.ingest_dir().join(format!("partial-{hex}"));
        let file = lease.create_tracked(
            || {
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
            },
            |_| path.clone(),
        )?;
        Ok((file, path))
    }

    /// Every blob digest present, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.blob_dir())? {
            let name = entry?.file_name();
            if let Some(n) = name.to_str() {
                out.push(format!("sha256:{n}"));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written: hashed as it is written (a large one on a helper
/// thread, see [`StreamHasher`]), removed if dropped uncommitted.
pub struct Ingest {
    file: Option<tempfile::NamedTempFile>,
    hasher: StreamHasher,
    blob_dir: PathBuf,
    lease: Option<Lease>,
}

impl Ingest {
    /// The file being written, until the blob is committed.
    pub(crate) fn file_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// The digest of everything written so far (the hash is kept while
    /// writing; this reads it without a second pass).
    pub fn digest(&mut self) -> String {
        self.hasher.digest()
    }

    /// Make the blob durable under its digest and return `(digest, size)`.
    /// The file is fsynced, renamed into place, and the directory fsynced.
    pub fn commit(mut self) -> Result<(String, u64)> {
        let size = self.hasher.len();
        let digest = self.hasher.digest();
        let tmp = self
            .file
            .take()
            .ok_or_else(|| Error::internal("ingest already committed"))?;
        crate::crash::point("blob-before-fsync");
        tmp.as_file().sync_all()?;
        crate::crash::point("blob-after-fsync");
        let dest = self.blob_dir.join(hex_part(&digest));
        let lease = self
            .lease
            .take()
            .ok_or_else(|| Error::internal("ingest already committed"))?;
        {
            // Protect, then rename, under the lock gc sweeps with.
            let leases = lease.registry().clone();
            let mut r = leases.lock();
            lease.protect_locked(&mut r, &digest);
            lease.untrack_file_locked(&mut r, &tmp.path().to_path_buf());
            tmp.persist(&dest).map_err(|e| Error::from(e.error))?;
        }
        crate::crash::point("blob-after-rename");
        File::open(&self.blob_dir)?.sync_all()?;
        crate::crash::point("blob-after-dir-fsync");
        lease.expire_after(INGEST_LEASE);
        Ok((digest, size))
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("ingest already committed"))?;
        crate::crash::point("blob-write");
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;

    #[test]
    fn ingest_commit_names_blob_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut w = cs.ingest().unwrap();
        w.write_all(b"layer bytes").unwrap();
        let (d, n) = w.commit().unwrap();
        assert_eq!(d, sha256_digest(b"layer bytes"));
        assert_eq!(n, 11);
        assert_eq!(fs::read(cs.path(&d)).unwrap(), b"layer bytes");
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_ingest_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut w = cs.ingest().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        assert!(cs.list().unwrap().is_empty());
    }
}
