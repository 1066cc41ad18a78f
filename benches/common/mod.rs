//! Deterministic workloads for the benchmarks and for `benches/vs-dockerd.sh`
//! (through the `workloads` bench target). No network, no randomness that is
//! not seeded: the same arguments always produce the same bytes.
//!
//! The small-image helpers (`layer`, `base`, `child`, `archive`) come from
//! `tests/common/builder.rs`; the large ones stream to files so that a
//! 1 GiB archive never sits in memory.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

#[path = "../../tests/common/builder.rs"]
mod builder;
pub use builder::*;

/// An env var as a number, else `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where the benchmarks keep workloads and cached stores
/// (`$STRATA_BENCH_DIR`, else `target/strata-bench`).
pub fn bench_dir() -> PathBuf {
    let d = std::env::var_os("STRATA_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/strata-bench"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Incompressible, deterministic bytes (xorshift64*), as a reader of `len`
/// bytes. The stream does not depend on the sizes of the reads.
pub struct Noise {
    state: u64,
    left: u64,
    carry: [u8; 8],
    carried: usize,
}

impl Noise {
    pub fn new(seed: u64, len: u64) -> Noise {
        Noise {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            left: len,
            carry: [0; 8],
            carried: 0,
        }
    }

    fn next(&mut self) -> [u8; 8] {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        let mut i = 0;
        while i < n {
            if self.carried == 0 {
                if n - i >= 8 {
                    let v = self.next();
                    buf[i..i + 8].copy_from_slice(&v);
                    i += 8;
                    continue;
                }
                self.carry = self.next();
                self.carried = 8;
            }
            buf[i] = self.carry[8 - self.carried];
            self.carried -= 1;
            i += 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// W-many: `n` distinct images sharing 1–3 small layers; image `i` has labels
/// `bench.group=<i % 10>` and `bench.i=<i>`, and (when `tagged`) the tag
/// `wmany/img<i>:latest`. `salt` makes a disjoint set (other IDs).
pub fn many_images(n: usize, tagged: bool, salt: &str) -> Vec<Img> {
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|k| {
            let content = format!("shared layer {k}\n").repeat(64);
            layer(&[(&format!("etc/layer{k}"), content.as_bytes())])
        })
        .collect();
    (0..n)
        .map(|i| {
            let nl = 1 + i % 3;
            let group = (i % 10).to_string();
            let idx = format!("{salt}{i}");
            let tag = format!("wmany/img{i}:latest");
            let tags: Vec<&str> = if tagged { vec![&tag] } else { vec![] };
            base(
                layers[..nl].to_vec(),
                1_600_000_000 + i as i64,
                &[("bench.group", &group), ("bench.i", &idx)],
                &tags,
            )
        })
        .collect()
}

/// A chain of `n` images (each a child of the previous, every 5th adding a
/// small layer), only the top one tagged `tag`.
pub fn chain(n: usize, tag: &str) -> Vec<Img> {
    let mut out: Vec<Img> = Vec::with_capacity(n);
    let first = base(vec![layer(&[("chain/0", b"0")])], 1_600_000_000, &[], &[]);
    out.push(first);
    for i in 1..n {
        let l = (i % 5 == 0).then(|| layer(&[(&format!("chain/{i}"), i.to_string().as_bytes())]));
        let tags: Vec<&str> = if i == n - 1 { vec![tag] } else { vec![] };
        let c = child(&out[i - 1], l, 1_600_000_000 + i as i64, &[], &tags);
        out.push(c);
    }
    out
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One layer file written by [`big_archive`]: its path and DiffID.
pub struct LayerFile {
    pub path: PathBuf,
    pub diff_id: String,
}

/// W-big: a docker-archive at `out` of one image (tag `wbig/img:latest`)
/// with `layers` layers each holding one file of incompressible bytes,
/// `total` bytes of file data in all. With `gzip`, the layers in the archive
/// are gzip-compressed (level 1) and also kept as `<out>.layers/<i>.tar.gz`
/// (for the `zcat` reference); otherwise the plain layer tars are removed.
pub fn big_archive(out: &Path, total: u64, layers: usize, gzip: bool, tag: &str) -> Vec<LayerFile> {
    let dir = PathBuf::from(format!("{}.layers", out.display()));
    std::fs::create_dir_all(&dir).unwrap();
    let per = total / layers as u64;
    let mut files = Vec::new();
    for i in 0..layers {
        let path = dir.join(if gzip {
            format!("{i}.tar.gz")
        } else {
            format!("{i}.tar")
        });
        let f = BufWriter::with_capacity(1 << 20, File::create(&path).unwrap());
        let (diff_id, f) = if gzip {
            let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            let (d, gz) = write_noise_layer(gz, i, per);
            (d, gz.finish().unwrap())
        } else {
            write_noise_layer(f, i, per)
        };
        f.into_inner().unwrap().sync_all().unwrap();
        files.push(LayerFile { path, diff_id });
    }
    let diff_ids: Vec<String> = files.iter().map(|l| l.diff_id.clone()).collect();
    let config = config_json(
        &diff_ids,
        &history_for(layers, 1_600_000_000),
        1_600_000_000,
        &[("bench", "wbig")],
    );
    let id = sha(&config);
    let mut b = tar::Builder::new(BufWriter::with_capacity(
        1 << 20,
        File::create(out).unwrap(),
    ));
    let mut paths = Vec::new();
    for l in &files {
        let name = format!("{}/layer.tar", &l.diff_id[7..]);
        b.append_path_with_name(&l.path, &name).unwrap();
        paths.push(name);
    }
    let cfg_name = format!("{}.json", &id[7..]);
    let mut h = tar::Header::new_ustar();
    h.set_size(config.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, &cfg_name, &config[..]).unwrap();
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": paths}]),
    )
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "manifest.json", &manifest[..])
        .unwrap();
    let f = b.into_inner().unwrap().into_inner().unwrap();
    f.sync_all().unwrap();
    if !gzip {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    files
}

fn write_noise_layer<W: Write>(w: W, i: usize, size: u64) -> (String, W) {
    let mut b = tar::Builder::new(HashingWriter {
        inner: w,
        hasher: Sha256::new(),
    });
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    b.append_data(
        &mut h,
        format!("data/blob{i}"),
        Noise::new(i as u64 + 1, size),
    )
    .unwrap();
    let hw = b.into_inner().unwrap();
    (
        format!("sha256:{}", hex::encode(hw.hasher.finalize())),
        hw.inner,
    )
}

/// W-files: a docker-archive at `out` of one image (tag `wfiles/img:latest`)
/// whose single layer holds `n` small files (100 directories, 16–80 bytes each).
pub fn files_archive(out: &Path, n: usize) {
    let mut b = tar::Builder::new(Vec::new());
    for d in 0..100.min(n) {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, format!("files/d{d:02}/"), std::io::empty())
            .unwrap();
    }
    for i in 0..n {
        let data = format!("file {i} {}\n", "x".repeat(i % 64));
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(
            &mut h,
            format!("files/d{:02}/f{i:06}", i % 100),
            data.as_bytes(),
        )
        .unwrap();
    }
    let l = b.into_inner().unwrap();
    let img = base(
        vec![l],
        1_600_000_000,
        &[("bench", "wfiles")],
        &["wfiles/img:latest"],
    );
    let f = BufWriter::new(File::create(out).unwrap());
    write_archive(&[&img], f);
}

/// Run a future on a shared multi-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
    .block_on(f)
}
