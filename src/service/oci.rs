//! OCI image layouts on [`ImageService`]: `export_oci` writes one
//! (formats.md part B; see `crate::archive` for the exact layout), and
//! `load_layout_dir` loads a layout (or an extracted docker-archive) from a
//! directory. Tars of layouts go through [`ImageService::load_image`],
//! which tells the formats apart by their files.

use super::ImageService;
use crate::archive::LoadReport;
use crate::error::{Error, Result};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

impl ImageService {
    /// Write an OCI image layout tar of `names` (resolved like
    /// [`ImageService::export_image`]) to `out`: configs verbatim, layers
    /// uncompressed, one `index.json` entry per tag.
    pub async fn export_oci(
        &self,
        names: Vec<String>,
        out: impl Write + Send + 'static,
    ) -> Result<()> {
        self.blocking(move |s| crate::archive::save_oci(s.store(), &names, out))
            .await
    }

    /// Load the OCI image layout (or extracted docker-archive) in the
    /// directory `path`, as [`ImageService::load_image`] loads its tar.
    /// The directory is streamed as a tar; symlinks are kept as links and
    /// must stay inside it.
    pub async fn load_layout_dir(&self, path: impl AsRef<Path>) -> Result<LoadReport> {
        let dir = path.as_ref().to_path_buf();
        self.blocking(move |s| {
            let meta = std::fs::metadata(&dir).map_err(|e| {
                Error::invalid(format!("cannot read layout directory {}: {e}", dir.display()))
            })?;
            if !meta.is_dir() {
                return Err(Error::invalid(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            let has = |n: &str| dir.join(n).symlink_metadata().is_ok();
            let oci = has("index.json") && has("oci-layout");
            if !has("manifest.json") && !oci {
                return Err(Error::invalid(format!(
                    "{} is not an OCI image layout (no oci-layout and index.json) nor a docker-archive (no manifest.json)",
                    dir.display()
                )));
            }
            let reader = DirTar::spawn(dir)?;
            crate::archive::load(s.store(), &s.actor, reader)
        })
        .await
    }
}

/// A tar of a directory, written by a thread into a pipe. A failed walk
/// ends the stream without the end-of-archive marker and the reader then
/// reports the walk's error, so a partial tree never loads.
struct DirTar {
    pipe: io::PipeReader,
    writer: Option<JoinHandle<io::Result<()>>>,
}

/// The pipe's writing end; fails every write once the walk failed, so the
/// builder's drop cannot append an end marker.
struct Guarded {
    pipe: io::PipeWriter,
    failed: Arc<AtomicBool>,
}

impl Write for Guarded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(io::Error::other("directory walk failed"));
        }
        self.pipe.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.pipe.flush()
    }
}

impl DirTar {
    fn spawn(dir: PathBuf) -> Result<DirTar> {
        let (reader, writer) = io::pipe()?;
        let failed = Arc::new(AtomicBool::new(false));
        let handle = std::thread::Builder::new()
            .name("strata-layout-tar".into())
            .spawn(move || {
                let mut b = tar::Builder::new(Guarded {
                    pipe: writer,
                    failed: failed.clone(),
                });
                b.follow_symlinks(false);
                let r = b.append_dir_all(".", &dir).and_then(|_| b.finish());
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                r
            })?;
        Ok(DirTar {
            pipe: reader,
            writer: Some(handle),
        })
    }
}

impl Read for DirTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(h) = self.writer.take()
        {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("directory walk panicked")),
            }
        }
        Ok(n)
    }
}
