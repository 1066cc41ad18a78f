//! Read-only layers: turning a (possibly compressed) layer stream into a
//! blob named by its DiffID, with Docker's DiffSize, in one streaming pass.
//!
//! The stream is decompressed when it starts with a gzip, bzip2, xz or zstd magic
//! number, hashed and written to the content store while its tar headers
//! are read and checked: no entry or hardlink target may climb out of the
//! layer root. After the end-of-archive marker the rest of the stream is
//! drained and hashed too, as Docker does.

use crate::content::{ContentStore, Ingest};
use crate::error::{Error, Result};
use std::io::{self, BufRead, BufReader, Read};

/// A layer that was written to the content store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestedLayer {
    /// sha256 of the uncompressed stream.
    pub diff_id: String,
    /// Sum of the tar entries' sizes.
    pub diff_size: u64,
}

/// Compression detected from magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain bytes.
    None,
    /// gzip (`1f 8b 08`).
    Gzip,
    /// bzip2 (`42 5a 68`).
    Bzip2,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// zstd (`28 b5 2f fd`; OCI `+zstd` layers, not read by Docker 20.10).
    Zstd,
}

/// Which compression `head` (the first bytes of a stream) announces.
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wrap `reader` in the decompressor its first bytes call for.
pub fn decompressed<'a, R: Read + 'a>(reader: R) -> Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(1 << 20, reader);
    let kind = detect_compression(buf.fill_buf()?);
    Ok(match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buf)),
        Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(buf)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buf)
                .map_err(|e| Error::invalid(format!("zstd stream: {e}")))?,
        ),
    })
}

/// Whether a tar path climbs above its root once cleaned (`a/../../b`).
pub fn escapes_root(path: &[u8]) -> bool {
    escapes_from(0, path)
}

/// Whether `path`, taken from a directory `depth` levels below the root,
/// climbs above the root once cleaned (Docker's lexical `filepath.Join` check).
pub(crate) fn escapes_from(depth: usize, path: &[u8]) -> bool {
    let mut depth = depth as i64;
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

struct Tee<'a, R> {
    inner: R,
    out: &'a mut Ingest,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(self.out, &buf[..n])?;
        Ok(n)
    }
}

/// Check the tar stream `reader` and return its DiffSize; `what` names the
/// layer in errors. Reads the stream to its very end.
pub fn scan_tar<R: Read>(reader: R, what: &str) -> Result<(R, u64)> {
    let mut archive = tar::Archive::new(reader);
    let mut size = 0u64;
    {
        let entries = archive
            .entries()
            .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::invalid(format!("{what}: invalid tar stream: {e}")))?;
            let path = entry.path_bytes();
            if escapes_root(&path) {
                return Err(Error::invalid(format!(
                    "{what}: entry {:?} is outside of the layer root",
                    String::from_utf8_lossy(&path)
                )));
            }
            if entry.header().entry_type().is_hard_link()
                && let Some(target) = entry.link_name_bytes()
                && escapes_root(&target)
            {
                return Err(Error::invalid(format!(
                    "{what}: hardlink {:?} points outside of the layer root: {:?}",
                    String::from_utf8_lossy(&path),
                    String::from_utf8_lossy(&target)
                )));
            }
            size = size.saturating_add(entry.size());
        }
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| Error::invalid(format!("{what}: reading layer: {e}")))?;
    Ok((rest, size))
}

/// Register every layer of a chain (bottom first) that the store does not
/// have yet: one `LayerRegistered` event each, inside the caller's write.
pub(crate) fn register_layers(
    w: &mut crate::store::Writer<'_>,
    layers: &[IngestedLayer],
) -> Result<()> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let chains = crate::digest::chain_ids(&diff_ids);
    for (i, (l, chain)) in layers.iter().zip(&chains).enumerate() {
        if w.tables().layer(chain)?.is_some() {
            continue;
        }
        w.emit(crate::event::EventBody::LayerRegistered {
            diff_id: l.diff_id.clone(),
            parent: i.checked_sub(1).map(|p| chains[p].clone()),
            diff_size: l.diff_size,
        })?;
    }
    Ok(())
}

/// Decompress, check, hash and store the layer stream `reader`.
pub fn ingest_layer<R: Read>(
    content: &ContentStore,
    reader: R,
    what: &str,
) -> Result<IngestedLayer> {
    let mut ingest = content.ingest()?;
    let plain = decompressed(reader).map_err(|e| e.context(what))?;
    let tee = Tee {
        inner: plain,
        out: &mut ingest,
    };
    let (_, diff_size) = scan_tar(tee, what)?;
    let (diff_id, _) = ingest.commit()?;
    Ok(IngestedLayer { diff_id, diff_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn escapes() {
        for (p, want) in [
            ("a/b", false),
            ("/etc/passwd", false),
            ("a/../b", false),
            ("../x", true),
            ("a/../../x", true),
            ("./..", true),
            ("a/./b/..", false),
        ] {
            assert_eq!(escapes_root(p.as_bytes()), want, "{p}");
        }
    }

    #[test]
    fn diff_size_and_id_of_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let plain = tar_with(&[("a.txt", b"hello"), ("b.txt", b"xyz")]);
        let l = ingest_layer(&cs, &plain[..], "layer 0").unwrap();
        assert_eq!(l.diff_size, 8);
        assert_eq!(l.diff_id, crate::digest::sha256_digest(&plain));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        let l2 = ingest_layer(&cs, &gz[..], "layer 0").unwrap();
        assert_eq!(l2, l);
    }

    #[test]
    fn zstd_layer_has_the_same_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let plain = tar_with(&[("a.txt", b"hello"), ("b.txt", b"xyz")]);
        let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
        assert_eq!(detect_compression(&zst), Compression::Zstd);
        let l = ingest_layer(&cs, &zst[..], "layer 0").unwrap();
        assert_eq!(l.diff_id, crate::digest::sha256_digest(&plain));
        assert_eq!(l.diff_size, 8);
    }

    #[test]
    fn empty_stream_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let l = ingest_layer(&cs, &b""[..], "layer 0").unwrap();
        assert_eq!(
            l.diff_id,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(l.diff_size, 0);
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let err = ingest_layer(&cs, &[7u8; 1024][..], "layer 3").unwrap_err();
        assert!(err.message().starts_with("layer 3:"), "{err}");
        assert!(cs.list().unwrap().is_empty());
    }
}
