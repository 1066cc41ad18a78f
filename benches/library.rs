//! Benchmarks of the library (issue 8). Run: `cargo bench --bench library`.
//!
//! Sizes (env): `STRATA_BENCH_BIG_MIB` (W-big archive, default 1024),
//! `STRATA_BENCH_EVENTS` (replay, default 1,000,000), `STRATA_BENCH_OPEN_IMAGES`
//! (open, default 100,000). A quick run:
//! `STRATA_BENCH_BIG_MIB=64 STRATA_BENCH_EVENTS=100000 STRATA_BENCH_OPEN_IMAGES=10000 cargo bench --bench library`.
//! Workloads and the cached stores (built once, reused by later runs) live
//! in `$STRATA_BENCH_DIR` (default `target/strata-bench`).

mod common;

use common::*;
use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use strata::{Actor, EventBody, Filters, ImageService, ImageSource, Store};

/// The allocator the `strata` binary runs with (see `src/main.rs`), so the
/// figures are the ones its commands see. (Remove these two lines to
/// measure with glibc's malloc.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const LIST_N: usize = 10_000;

/// 10,000 tagged images sharing 1–3 layers, loaded by one archive.
fn svc10k() -> &'static ImageService {
    static S: OnceLock<(tempfile::TempDir, ImageService)> = OnceLock::new();
    &S.get_or_init(|| {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let svc = ImageService::open(dir.path()).unwrap();
        let imgs = many_images(LIST_N, true, "l");
        let refs: Vec<&Img> = imgs.iter().collect();
        let rep = block_on(svc.load_image(std::io::Cursor::new(archive(&refs)), true)).unwrap();
        assert_eq!(rep.images.len(), LIST_N);
        (dir, svc)
    })
    .1
}

mod list_10k {
    use super::*;

    #[divan::bench]
    fn plain(b: Bencher) {
        let svc = svc10k();
        b.bench(|| {
            let l = block_on(svc.images(Filters::new(), false, false)).unwrap();
            assert_eq!(l.len(), LIST_N);
            l
        });
    }

    #[divan::bench]
    fn all(b: Bencher) {
        let svc = svc10k();
        b.bench(|| block_on(svc.images(Filters::new(), true, false)).unwrap());
    }

    #[divan::bench]
    fn label_filter(b: Bencher) {
        let svc = svc10k();
        let f = Filters::from_cli_pairs(["label=bench.group=3"]).unwrap();
        b.bench(|| {
            let l = block_on(svc.images(f.clone(), false, false)).unwrap();
            assert_eq!(l.len(), LIST_N / 10);
            l
        });
    }

    #[divan::bench]
    fn reference_filter(b: Bencher) {
        let svc = svc10k();
        let f = Filters::from_cli_pairs(["reference=wmany/img12*"]).unwrap();
        b.bench(|| block_on(svc.images(f.clone(), false, false)).unwrap());
    }
}

#[divan::bench]
fn inspect_one_of_10k(b: Bencher) {
    let svc = svc10k();
    b.bench(|| block_on(svc.lookup_image("wmany/img4321")).unwrap());
}

#[divan::bench]
fn history_one_of_10k(b: Bencher) {
    let svc = svc10k();
    b.bench(|| block_on(svc.image_history("wmany/img4321")).unwrap());
}

/// A store of 2,000 tagged images for the mutation benchmarks.
fn svc_mut() -> &'static ImageService {
    static S: OnceLock<(tempfile::TempDir, ImageService)> = OnceLock::new();
    &S.get_or_init(|| {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let svc = ImageService::open(dir.path()).unwrap();
        let imgs = many_images(2000, true, "m");
        let refs: Vec<&Img> = imgs.iter().collect();
        block_on(svc.load_image(std::io::Cursor::new(archive(&refs)), true)).unwrap();
        (dir, svc)
    })
    .1
}

/// Tag one image with a new reference (a durable commit each).
#[divan::bench(sample_count = 50)]
fn tag(b: Bencher) {
    let svc = svc_mut();
    let mut n = 0u64;
    b.bench_local(|| {
        n += 1;
        block_on(svc.tag_image("wmany/img7", "bench/tag", &format!("t{n}"))).unwrap()
    });
}

/// Remove one extra reference (untag; the image stays). Durable commit each.
#[divan::bench(sample_count = 50)]
fn untag(b: Bencher) {
    let svc = svc_mut();
    let mut n = 0u64;
    b.with_inputs(|| {
        n += 1;
        let t = format!("u{n}");
        block_on(svc.tag_image("wmany/img8", "bench/untag", &t)).unwrap();
        format!("bench/untag:{t}")
    })
    .bench_local_values(|r| {
        let out = block_on(svc.image_delete(&r, false, true)).unwrap();
        assert_eq!(out.len(), 1);
        out
    });
}

/// `rmi` of the tagged top of a 50-image parent chain, deleting all 50.
#[divan::bench(sample_count = 20)]
fn delete_chain_50(b: Bencher) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let svc = ImageService::open(dir.path()).unwrap();
    let imgs = chain(50, "bench/chain:top");
    let refs: Vec<&Img> = imgs.iter().collect();
    let bytes = archive(&refs);
    b.with_inputs(|| {
        block_on(svc.load_image(std::io::Cursor::new(bytes.clone()), true)).unwrap();
    })
    .bench_local_values(|()| {
        let out = block_on(svc.image_delete("bench/chain:top", false, true)).unwrap();
        let deleted = out
            .iter()
            .filter(|d| matches!(d, strata::DeleteItem::Deleted(id) if id.len() == 71))
            .count();
        assert!(deleted >= 50, "{out:?}");
        out
    });
}

/// `image prune` of 2,000 dangling (untagged) images.
#[divan::bench(sample_count = 5)]
fn prune_2000_dangling(b: Bencher) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let svc = ImageService::open(dir.path()).unwrap();
    let imgs = many_images(2000, false, "p");
    let refs: Vec<&Img> = imgs.iter().collect();
    let bytes = archive(&refs);
    b.with_inputs(|| {
        block_on(svc.load_image(std::io::Cursor::new(bytes.clone()), true)).unwrap();
    })
    .bench_local_values(|()| {
        let r = block_on(svc.images_prune(Filters::new())).unwrap();
        assert!(r.images_deleted.as_ref().unwrap().len() >= 2000);
        r
    });
}

fn tiny_config(i: u64, labels: &[(&str, &str)]) -> Vec<u8> {
    config_json(&[], &[], 1_600_000_000 + i as i64, labels)
}

/// A cached store of `n` images (one tag each), written by batches of
/// events; built once under the bench directory and reused.
fn store_with_images(n: u64) -> PathBuf {
    let dir = bench_dir().join(format!("store-{n}-images"));
    if dir.join("complete").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir).unwrap();
    let actor = Actor::default();
    let mut i = 0;
    while i < n {
        let end = (i + 10_000).min(n);
        store
            .write(&actor, |w| {
                for k in i..end {
                    let g = (k % 10).to_string();
                    let config = tiny_config(k, &[("bench.group", &g)]);
                    let id = sha(&config);
                    w.emit(EventBody::ImageCreated {
                        config,
                        parent: None,
                        source: ImageSource::Load,
                    })?;
                    w.emit(EventBody::ReferenceAdded {
                        reference: format!("docker.io/bench/open{k}:latest"),
                        image: id,
                        tag_time: false,
                    })?;
                }
                Ok(())
            })
            .unwrap();
        i = end;
    }
    drop(store);
    std::fs::write(dir.join("complete"), b"").unwrap();
    dir
}

/// A cached store whose log holds `n` events: cycles of image created,
/// tagged, untagged, deleted (every 10th image is kept, so the final tables
/// hold about n/40 images).
fn store_with_events(n: u64) -> PathBuf {
    let dir = bench_dir().join(format!("store-{n}-events"));
    if dir.join("complete").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir).unwrap();
    let actor = Actor::default();
    let mut emitted = 0u64;
    let mut k = 0u64;
    while emitted < n {
        store
            .write(&actor, |w| {
                let batch_end = (emitted + 50_000).min(n);
                while emitted < batch_end {
                    let config = tiny_config(k, &[("bench.k", &k.to_string())]);
                    let id = sha(&config);
                    let reference = format!("docker.io/bench/replay{k}:latest");
                    let keep = k.is_multiple_of(10);
                    let mut bodies = vec![
                        EventBody::ImageCreated {
                            config,
                            parent: None,
                            source: ImageSource::Load,
                        },
                        EventBody::ReferenceAdded {
                            reference: reference.clone(),
                            image: id.clone(),
                            tag_time: true,
                        },
                    ];
                    if !keep {
                        bodies.push(EventBody::ReferenceRemoved {
                            reference,
                            image: id.clone(),
                        });
                        bodies.push(EventBody::ImageDeleted { id });
                    }
                    for body in bodies {
                        if emitted < batch_end {
                            w.emit(body)?;
                            emitted += 1;
                        }
                    }
                    k += 1;
                }
                Ok(())
            })
            .unwrap();
    }
    drop(store);
    std::fs::write(dir.join("complete"), b"").unwrap();
    dir
}

fn open_images() -> u64 {
    env_u64("STRATA_BENCH_OPEN_IMAGES", 100_000)
}

fn replay_events() -> u64 {
    env_u64("STRATA_BENCH_EVENTS", 1_000_000)
}

mod open {
    use super::*;

    /// Open (and close) a store holding 100,000 images.
    #[divan::bench(sample_count = 20)]
    fn store_100k_images(b: Bencher) {
        let dir = store_with_images(open_images());
        b.bench(|| drop(black_box(Store::open(&dir).unwrap())));
    }

    /// Open a store whose log holds 1,000,000 events (open must not replay).
    #[divan::bench(sample_count = 20)]
    fn store_1m_events(b: Bencher) {
        let dir = store_with_events(replay_events());
        b.bench(|| drop(black_box(Store::open(&dir).unwrap())));
    }
}

mod replay {
    use super::*;

    /// Decode one small image config with Go's semantics (what replaying an
    /// ImageCreated event costs besides the table updates).
    #[divan::bench]
    fn decode_small_config(b: Bencher) {
        let config = tiny_config(7, &[("bench.k", "7")]);
        b.bench(|| strata::ImageConfig::from_json(black_box(&config)).unwrap());
    }

    /// Fold the whole log into fresh in-memory tables and compare with the live ones.
    #[divan::bench(sample_count = 3, sample_size = 1)]
    fn verify_replay_1m(b: Bencher) {
        let n = replay_events();
        let store = Store::open(store_with_events(n)).unwrap();
        b.counter(ItemsCount::new(n)).bench_local(|| {
            assert_eq!(store.verify_replay().unwrap(), None);
        });
    }

    /// Copy the log into a fresh on-disk store and fold it into its tables.
    #[divan::bench(sample_count = 3, sample_size = 1)]
    fn replay_into_1m(b: Bencher) {
        let n = replay_events();
        let store = Store::open(store_with_events(n)).unwrap();
        b.counter(ItemsCount::new(n))
            .with_inputs(|| tempfile::tempdir_in(bench_dir()).unwrap())
            .bench_local_values(|dir| {
                drop(store.replay_into(&dir.path().join("s"), u64::MAX).unwrap());
                dir
            });
    }
}

fn big_mib() -> u64 {
    env_u64("STRATA_BENCH_BIG_MIB", 1024)
}

/// The W-big archive (8 layers of incompressible data), built once.
fn wbig() -> PathBuf {
    let mib = big_mib();
    let p = bench_dir().join(format!("wbig-{mib}m.tar"));
    let done = bench_dir().join(format!("wbig-{mib}m.complete"));
    if !done.exists() {
        big_archive(&p, mib << 20, 8, false, "wbig/img:latest");
        std::fs::write(&done, b"").unwrap();
    }
    p
}

fn load_file(svc: &ImageService, p: &Path) {
    let f = std::fs::File::open(p).unwrap();
    let rep = block_on(svc.load_image(f, true)).unwrap();
    assert_eq!(rep.lines, ["Loaded image: wbig/img:latest"]);
}

mod big {
    use super::*;

    /// `load` of W-big into an empty store (blobs written and fsynced).
    #[divan::bench(sample_count = 3, sample_size = 1)]
    fn load(b: Bencher) {
        let p = wbig();
        let len = std::fs::metadata(&p).unwrap().len();
        b.counter(BytesCount::new(len))
            .with_inputs(|| {
                let dir = tempfile::tempdir_in(bench_dir()).unwrap();
                let svc = ImageService::open(dir.path()).unwrap();
                (dir, svc)
            })
            .bench_local_values(|(dir, svc)| {
                load_file(&svc, &p);
                (dir, svc)
            });
    }

    /// `save` of W-big to a file (not fsynced).
    #[divan::bench(sample_count = 3, sample_size = 1)]
    fn save(b: Bencher) {
        let p = wbig();
        let len = std::fs::metadata(&p).unwrap().len();
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let svc = ImageService::open(dir.path().join("store")).unwrap();
        load_file(&svc, &p);
        let out = dir.path().join("out.tar");
        b.counter(BytesCount::new(len)).bench_local(|| {
            let f =
                std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out).unwrap());
            block_on(svc.export_image(vec!["wbig/img:latest".into()], f)).unwrap();
        });
        assert!(std::fs::metadata(&out).unwrap().len() > len / 2);
    }
}
