//! Read-only layers: turning a (possibly compressed) layer stream into a
//! blob named by its DiffID, with Docker's DiffSize, in one streaming pass.
//!
//! The stream is decompressed when it starts with a gzip, bzip2, xz or zstd magic
//! number, hashed and written to the content store while its tar headers
//! are read and checked: no entry or hardlink target may climb out of the
//! layer root. After the end-of-archive marker the rest of the stream is
//! drained and hashed too, as Docker does.
//!
//! Decompression is bounded ([`Limits`]): a compressed stream may inflate to
//! at most [`Limits::max_bytes`] (default 64 GiB, env
//! `STRATA_MAX_DECOMPRESSED_BYTES`), and past [`RATIO_FLOOR`] (1 GiB) of
//! output to at most [`Limits::max_ratio`] times the compressed bytes read
//! (default 1000, env `STRATA_MAX_INFLATION_RATIO`; gzip's best ratio is
//! about 1032:1, so this stops gzip bombs of zeros after about 1 GiB and
//! xz/zstd bombs early). Plain streams are not bounded here: they cost
//! what the client sends. Both variables are read once per process.

use crate::content::{ContentStore, Ingest};
use crate::error::{Error, Result};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Default [`Limits::max_bytes`]: 64 GiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 64 << 30;
/// Default [`Limits::max_ratio`].
pub const DEFAULT_MAX_INFLATION_RATIO: u64 = 1000;
/// The inflation-ratio bound applies only past this much output (1 GiB).
pub const RATIO_FLOOR: u64 = 1 << 30;
/// Environment variable overriding [`Limits::max_bytes`].
pub const MAX_BYTES_ENV: &str = "STRATA_MAX_DECOMPRESSED_BYTES";
/// Environment variable overriding [`Limits::max_ratio`] (0 disables it).
pub const MAX_RATIO_ENV: &str = "STRATA_MAX_INFLATION_RATIO";

/// Bounds on what decompression may produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one compressed stream (a layer, an archive) may inflate
    /// to; also the most all layers of one archive may inflate to together.
    pub max_bytes: u64,
    /// Most output bytes per compressed input byte once the output passes
    /// `ratio_floor`; 0 = no ratio bound.
    pub max_ratio: u64,
    /// Output size past which `max_ratio` applies ([`RATIO_FLOOR`]).
    pub ratio_floor: u64,
}

impl Limits {
    /// The process's limits: defaults, overridden by the environment
    /// (read once; unparsable values are ignored with a warning).
    pub fn get() -> Limits {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        *LIMITS.get_or_init(|| {
            let read = |name: &str, default: u64| match std::env::var(name) {
                Ok(v) => v.trim().parse::<u64>().unwrap_or_else(|_| {
                    tracing::warn!("ignoring {name}={v:?}: not a number");
                    default
                }),
                Err(_) => default,
            };
            Limits {
                max_bytes: read(MAX_BYTES_ENV, DEFAULT_MAX_DECOMPRESSED_BYTES),
                max_ratio: read(MAX_RATIO_ENV, DEFAULT_MAX_INFLATION_RATIO),
                ratio_floor: RATIO_FLOOR,
            }
        })
    }
}

/// A decompression budget shared by several streams (all layers of one
/// archive): at most `limit` bytes in total.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit` decompressed bytes.
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Count `n` bytes decompressed elsewhere (a layer inflated ahead of
    /// time), unless they would overrun the budget: then nothing is
    /// counted and the caller decompresses again through the budget, so
    /// that the bound trips where it would have.
    pub(crate) fn try_charge(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }
}

/// Counts the (compressed) bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Why a bounded stream stopped, once it has (shared with its reader's
/// owner, since tar readers may rewrap the I/O error).
pub type Tripped = Arc<Mutex<Option<String>>>;

/// The message of a tripped bound, if any.
pub fn tripped(t: &Tripped) -> Option<String> {
    t.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Decompressed output, checked against the limits as it is produced.
struct Bounded<'b, R> {
    inner: R,
    compressed: Arc<AtomicU64>,
    out: u64,
    limits: Limits,
    budget: Option<&'b Budget>,
    tripped: Tripped,
}

impl<R: Read> Bounded<'_, R> {
    fn trip(&self, msg: String) -> io::Error {
        *self.tripped.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.clone());
        io::Error::other(msg)
    }
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.limits.max_bytes {
            return Err(self.trip(format!(
                "decompressed size exceeds the limit of {} bytes ({MAX_BYTES_ENV})",
                self.limits.max_bytes
            )));
        }
        if self.limits.max_ratio > 0 && self.out > self.limits.ratio_floor {
            let compressed = self.compressed.load(Ordering::Relaxed).max(1);
            if self.out / compressed > self.limits.max_ratio {
                return Err(self.trip(format!(
                    "decompressed data is more than {} times its compressed size \
                     ({} bytes from {compressed}; {MAX_RATIO_ENV})",
                    self.limits.max_ratio, self.out
                )));
            }
        }
        if let Some(b) = self.budget {
            let used = b.used.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            if used > b.limit {
                return Err(self.trip(format!(
                    "the archive's layers decompress to more than {} bytes ({MAX_BYTES_ENV})",
                    b.limit
                )));
            }
        }
        Ok(n)
    }
}

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

/// [`decompressed`], bounded by `limits` (and `budget`, when given) when
/// the stream is compressed. When a bound stops the stream, reads fail and
/// the returned [`Tripped`] holds the message.
pub fn decompressed_bounded<'a, R: Read + 'a>(
    reader: R,
    limits: Limits,
    budget: Option<&'a Budget>,
) -> Result<(Box<dyn Read + 'a>, Tripped)> {
    let tripped: Tripped = Arc::new(Mutex::new(None));
    let count = Arc::new(AtomicU64::new(0));
    let mut buf = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: reader,
            count: count.clone(),
        },
    );
    if detect_compression(buf.fill_buf()?) == Compression::None {
        return Ok((Box::new(buf), tripped));
    }
    let plain = decompressed(buf)?;
    Ok((
        Box::new(Bounded {
            inner: plain,
            compressed: count,
            out: 0,
            limits,
            budget,
            tripped: tripped.clone(),
        }),
        tripped,
    ))
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

/// Copies everything read from `inner` into `out`.
pub(crate) struct Tee<'a, R> {
    pub(crate) inner: R,
    pub(crate) out: &'a mut Ingest,
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

/// Decompress, check, hash and store the layer stream `reader`, within the
/// process's [`Limits`].
pub fn ingest_layer<R: Read>(
    content: &ContentStore,
    reader: R,
    what: &str,
) -> Result<IngestedLayer> {
    ingest_layer_within(content, reader, what, Limits::get(), None, None)
}

/// [`ingest_layer`] with explicit `limits`, and counting against `budget`
/// (the archive's) when given. A tripped bound is an InvalidArgument error
/// naming the layer; nothing is committed. With `expected` (a DiffID), a
/// stream hashing to anything else is refused before it is committed
/// (Docker's `invalid diffID for layer {index}` message, `index` taken
/// from the caller), so a refused load leaves no stray blob.
pub fn ingest_layer_within<R: Read>(
    content: &ContentStore,
    reader: R,
    what: &str,
    limits: Limits,
    budget: Option<&Budget>,
    expected: Option<(usize, &str)>,
) -> Result<IngestedLayer> {
    let (layer, ingest) =
        ingest_layer_uncommitted(content, reader, what, limits, budget, expected)?;
    ingest.commit()?;
    Ok(layer)
}

/// [`ingest_layer_within`] without the commit: the checked layer and its
/// ingest, for a caller that commits the blobs of several layers only once
/// all of them are known to be good (dropping the ingest leaves nothing).
pub fn ingest_layer_uncommitted<R: Read>(
    content: &ContentStore,
    reader: R,
    what: &str,
    limits: Limits,
    budget: Option<&Budget>,
    expected: Option<(usize, &str)>,
) -> Result<(IngestedLayer, Ingest)> {
    let mut ingest = content.ingest()?;
    let (plain, trip) =
        decompressed_bounded(reader, limits, budget).map_err(|e| e.context(what))?;
    let tee = Tee {
        inner: plain,
        out: &mut ingest,
    };
    let scanned = scan_tar(tee, what);
    if let Some(msg) = tripped(&trip) {
        return Err(Error::invalid(format!("{what}: {msg}")));
    }
    let (_, diff_size) = scanned?;
    let diff_id = ingest.digest();
    if let Some((i, want)) = expected
        && diff_id != want
    {
        return Err(Error::invalid(format!(
            "invalid diffID for layer {i}: expected {want:?}, got {diff_id:?}"
        )));
    }
    Ok((IngestedLayer { diff_id, diff_size }, ingest))
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

    /// `n` gzip members of 1 MiB of zeros each (MultiGzDecoder reads them all).
    fn zero_bomb(header: &[u8], n: usize) -> Vec<u8> {
        let gz = |b: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            io::Write::write_all(&mut e, b).unwrap();
            e.finish().unwrap()
        };
        let mut out = gz(header);
        let member = gz(&vec![0u8; 1 << 20]);
        for _ in 0..n {
            out.extend_from_slice(&member);
        }
        out
    }

    #[test]
    fn decompression_bounds_stop_bombs_and_commit_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("bomb").unwrap();
        h.set_size(1 << 40);
        h.set_cksum();
        let bomb = zero_bomb(h.as_bytes(), 64);
        let no_ratio = Limits {
            max_bytes: 8 << 20,
            max_ratio: 0,
            ratio_floor: RATIO_FLOOR,
        };
        let cases = [
            (
                "absolute bound",
                no_ratio,
                None,
                "layer 0: decompressed size exceeds the limit of 8388608 bytes (STRATA_MAX_DECOMPRESSED_BYTES)",
            ),
            (
                "ratio bound past the floor",
                Limits {
                    max_bytes: u64::MAX,
                    max_ratio: 100,
                    ratio_floor: 4 << 20,
                },
                None,
                "layer 0: decompressed data is more than 100 times its compressed size",
            ),
            (
                "archive budget",
                Limits {
                    max_bytes: u64::MAX,
                    ..no_ratio
                },
                Some(Budget::new(2 << 20)),
                "layer 0: the archive's layers decompress to more than 2097152 bytes (STRATA_MAX_DECOMPRESSED_BYTES)",
            ),
        ];
        for (name, limits, budget, want) in cases {
            let err = ingest_layer_within(&cs, &bomb[..], "layer 0", limits, budget.as_ref(), None)
                .unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "{name}"
            );
            assert!(err.message().starts_with(want), "{name}: {err}");
            assert!(cs.list().unwrap().is_empty(), "{name}");
            assert_eq!(
                std::fs::read_dir(dir.path().join("ingest"))
                    .unwrap()
                    .count(),
                0,
                "{name}"
            );
        }
        // Within the bounds a (smaller, honest) stream is fine.
        let mut h2 = tar::Header::new_ustar();
        h2.set_path("ok").unwrap();
        h2.set_size(0);
        h2.set_cksum();
        let ok = zero_bomb(h2.as_bytes(), 2);
        let l = ingest_layer_within(
            &cs,
            &ok[..],
            "layer 0",
            no_ratio,
            Some(&Budget::new(3 << 20)),
            None,
        )
        .unwrap();
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

    #[test]
    fn budget_takes_a_charge_only_when_it_fits() {
        let b = Budget::new(10);
        assert!(b.try_charge(6));
        assert!(!b.try_charge(5), "6 + 5 is over 10");
        assert!(b.try_charge(4), "a refused charge counts nothing");
        assert!(!b.try_charge(1));
        let full = Budget::new(u64::MAX);
        assert!(full.try_charge(u64::MAX));
        assert!(!full.try_charge(1), "no wrap-around past u64::MAX");
    }
}
