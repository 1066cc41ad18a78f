//! Crash safety, proven by killing work at every crash point.
//!
//! For each workload (a sequence of operations on a prepared store) the test
//! re-runs this binary as a child that performs the workload with
//! `STRATA_TEST_CRASH_AT=N`, aborting at the N-th crash point (every blob
//! write chunk, fsync, rename, directory fsync, transaction commit, and every
//! write and sync redb makes), for every N until the workload completes —
//! once as a killed process and once as a power loss (database writes since
//! the last sync undone). After each crash the store must open, pass
//! `audit verify` (hash chain, tables == replay, every blob present and
//! intact), and hold exactly the state after the last operation the child
//! acknowledged, or after the one in flight: never a partial operation.

mod common;
use common::builder::*;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use strata::{Filters, ImageService};

const CHILD_ENV: &str = "STRATA_CRASH_TEST_CHILD";

/// Workloads: a setup (run once, never crashed) and the operations under test.
#[derive(Clone, Copy, Debug)]
enum Workload {
    Load,
    Tag,
    Delete,
    Prune,
    Gc,
    Import,
    Commit,
}

const ALL: [Workload; 7] = [
    Workload::Load,
    Workload::Tag,
    Workload::Delete,
    Workload::Prune,
    Workload::Gc,
    Workload::Import,
    Workload::Commit,
];

fn name(w: Workload) -> &'static str {
    match w {
        Workload::Load => "load",
        Workload::Tag => "tag",
        Workload::Delete => "delete",
        Workload::Prune => "prune",
        Workload::Gc => "gc",
        Workload::Import => "import",
        Workload::Commit => "commit",
    }
}

fn by_name(s: &str) -> Workload {
    ALL.into_iter().find(|w| name(*w) == s).unwrap()
}

/// Deterministic, poorly compressible bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn image(i: u64, tags: &[&str]) -> Img {
    let big = noise(i, 48 * 1024);
    let small = noise(i + 1000, 3000);
    base(
        vec![
            layer(&[("data/big", &big)]),
            layer(&[("data/small", &small)]),
        ],
        1_600_000_000 + i as i64,
        &[],
        tags,
    )
}

async fn setup(w: Workload, svc: &ImageService) {
    match w {
        Workload::Load | Workload::Import => {}
        Workload::Tag | Workload::Delete => {
            for i in 0..6 {
                load_imgs(svc, &[&image(i, &[&format!("img:{i}")])]).await;
            }
        }
        Workload::Prune => {
            for family in 0..5u64 {
                let b = image(family, &[&format!("base:{family}")]);
                let mut imgs = vec![b.clone()];
                let label = [("family", if family == 0 { "a" } else { "b" })];
                for i in 0..16 {
                    let data = noise(50 + family * 100 + i, 2000);
                    let created = 1_700_000_000 + (family * 100 + i) as i64;
                    imgs.push(child(
                        &b,
                        Some(layer(&[("c", &data)])),
                        created,
                        &label,
                        &[],
                    ));
                }
                let refs: Vec<&Img> = imgs.iter().collect();
                load_imgs(svc, &refs).await;
            }
        }
        Workload::Commit => {
            load_imgs(svc, &[&image(0, &["base:1"])]).await;
            for i in 0..3 {
                svc.create_container("base:1", Some(&format!("c{i}")))
                    .await
                    .unwrap();
                let rw = svc.container_rw_path(&format!("c{i}")).await.unwrap();
                std::fs::write(rw.join(format!("added-{i}")), noise(90 + i, 30_000)).unwrap();
                std::fs::remove_file(rw.join("data/small")).unwrap();
            }
        }
        Workload::Gc => {
            for i in 0..40 {
                load_imgs(svc, &[&image(i, &[&format!("gone:{i}")])]).await;
                svc.image_delete(&format!("gone:{i}"), false, true)
                    .await
                    .unwrap();
            }
        }
    }
}

/// The operations under test; `ack(k)` after the k-th completes.
async fn operations(w: Workload, svc: &ImageService, mut ack: impl FnMut(usize)) {
    match w {
        Workload::Load => {
            for i in 0..3 {
                load_imgs(svc, &[&image(10 + i, &[&format!("new:{i}")])]).await;
                ack(i as usize + 1);
            }
        }
        Workload::Tag => {
            for i in 0..12 {
                svc.tag_image(&format!("img:{}", i % 4), "moved", &format!("t{}", i % 5))
                    .await
                    .unwrap();
                ack(i + 1);
            }
        }
        Workload::Delete => {
            for i in 0..6 {
                svc.image_delete(&format!("img:{i}"), false, true)
                    .await
                    .unwrap();
                ack(i + 1);
            }
        }
        Workload::Prune => {
            let mut labelled = Filters::new();
            labelled.add("label", "family=a");
            svc.images_prune(labelled).await.unwrap();
            ack(1);
            svc.images_prune(Filters::new()).await.unwrap();
            ack(2);
            let mut all = Filters::new();
            all.add("dangling", "false");
            svc.images_prune(all).await.unwrap();
            ack(3);
        }
        Workload::Gc => {
            svc.gc(false).await.unwrap();
            ack(1);
        }
        Workload::Commit => {
            for i in 0..3 {
                svc.commit_image(
                    &format!("c{i}"),
                    Some("committed"),
                    Some(&format!("v{i}")),
                    "crash test",
                    "",
                    &["ENV X=1".to_string()],
                )
                .await
                .unwrap();
                ack(i + 1);
            }
        }
        Workload::Import => {
            for i in 0..4u64 {
                let tar = layer(&[("rootfs/file", &noise(70 + i, 20_000))]);
                svc.import_image(
                    std::io::Cursor::new(tar),
                    Some(&format!("imp:{i}")),
                    None,
                    Some("crash test"),
                    &["ENV A=1".to_string()],
                    strata::ImportOptions {
                        created: Some(strata::GoTime::from_unix_nanos_utc(
                            1_700_000_000_000_000_000,
                        )),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
                ack(i as usize + 1);
            }
        }
    }
}

/// What must survive: the full listing, layers (by ChainID) and containers.
async fn state(svc: &ImageService) -> String {
    let images = svc.images(Filters::new(), true, false).await.unwrap();
    let layers: Vec<String> = svc
        .store()
        .read(|t| {
            Ok(t.layers()?
                .into_iter()
                .map(|(c, l)| format!("{c} {}", l.refcount))
                .collect())
        })
        .unwrap();
    serde_json::to_string(&(images, layers)).unwrap()
}

/// For workloads whose results embed the current time (commit), the state
/// with image IDs, ChainIDs and times masked: tags, sizes and the shape of
/// layer reference counts must still match exactly.
fn normalized(w: Workload, st: &str) -> String {
    if !matches!(w, Workload::Commit) {
        return st.to_string();
    }
    let (images, layers): (Vec<serde_json::Value>, Vec<String>) = serde_json::from_str(st).unwrap();
    let mut images: Vec<String> = images
        .into_iter()
        .map(|mut i| {
            for k in ["Id", "ParentId", "Created"] {
                i[k] = serde_json::Value::Null;
            }
            i.to_string()
        })
        .collect();
    images.sort();
    let mut counts: Vec<&str> = layers
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    counts.sort();
    format!("{images:?} {counts:?}")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The child: run the workload's operations on `STRATA_CRASH_TEST_ROOT`.
#[test]
fn crash_child_entry() {
    let Ok(w) = std::env::var(CHILD_ENV) else {
        return;
    };
    let root = PathBuf::from(std::env::var("STRATA_CRASH_TEST_ROOT").unwrap());
    rt().block_on(async {
        let svc = ImageService::open(&root).unwrap();
        let mut out = std::io::stdout().lock();
        operations(by_name(&w), &svc, |k| {
            writeln!(out, "ack {k}").unwrap();
            out.flush().unwrap();
        })
        .await;
        writeln!(out, "points {}", strata::fuzzing::crash_points_passed()).unwrap();
    });
}

struct Outcome {
    finished: bool,
    acked: usize,
    points: u64,
}

fn run_child(w: Workload, root: &Path, at: u64, power_loss: bool) -> Outcome {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "crash_child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, name(w))
    .env("STRATA_CRASH_TEST_ROOT", root)
    .env("STRATA_TEST_CRASH_AT", at.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if power_loss {
        cmd.env("STRATA_TEST_CRASH_MODE", "power-loss");
    }
    let out = cmd.output().unwrap();
    let (mut acked, mut points) = (0, 0);
    for line in out.stdout.lines() {
        let line = line.unwrap();
        // libtest may print `test crash_child_entry ... ` before the first line.
        if let Some((_, k)) = line.split_once("ack ") {
            acked = k.trim().parse().unwrap();
        }
        if let Some((_, p)) = line.split_once("points ") {
            points = p.trim().parse().unwrap();
        }
    }
    Outcome {
        finished: out.status.success(),
        acked,
        points,
    }
}

/// Crash points to try for a workload with `total` points: all of them, or
/// at most `cap` spread evenly (always including the first and last 10).
fn plan(total: u64, cap: u64) -> Vec<u64> {
    if total <= cap {
        return (1..=total).collect();
    }
    let mut v: Vec<u64> = (1..=10).chain(total - 9..=total).collect();
    let step = total as f64 / (cap - 20) as f64;
    v.extend(
        (0..cap - 20)
            .map(|i| 11 + (i as f64 * step) as u64)
            .filter(|n| *n < total - 9),
    );
    v.sort_unstable();
    v.dedup();
    v
}

/// The state before the operations and after each of them, without crashes.
fn reference_states(w: Workload, template: &Path, scratch: &Path) -> Vec<String> {
    copy_dir(template, scratch);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let svc = ImageService::open(scratch).unwrap();
        let mut states = vec![state(&svc).await];
        let handle = tokio::runtime::Handle::current();
        operations(w, &svc, |_| {
            let st = tokio::task::block_in_place(|| handle.block_on(state(&svc)));
            states.push(st);
        })
        .await;
        states
    })
}

#[test]
fn every_crash_point_leaves_a_consistent_store() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cap: u64 = std::env::var("STRATA_CRASH_POINTS_CAP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(130);
    let mut summary = Vec::new();
    for w in ALL {
        // tmpfs when there is one: the crashes are simulated (abort, and an
        // undo of unsynced database writes), so real fsyncs only cost time.
        let base_dir = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::tempdir_in("/dev/shm").unwrap(),
            false => tempfile::tempdir().unwrap(),
        };
        let template = base_dir.path().join("template");
        rt().block_on(async {
            let svc = ImageService::open(&template).unwrap();
            setup(w, &svc).await;
        });
        let states = reference_states(w, &template, &base_dir.path().join("reference"));
        let ops = states.len() - 1;
        // Count the crash points of a full run.
        let probe = base_dir.path().join("probe");
        copy_dir(&template, &probe);
        let full = run_child(w, &probe, u64::MAX, false);
        assert!(
            full.finished,
            "{}: the workload fails without crashes",
            name(w)
        );
        assert_eq!(full.acked, ops, "{}", name(w));
        let total = full.points;
        let mut tried = 0;
        for power_loss in [false, true] {
            for n in plan(total, cap) {
                let dir = base_dir.path().join(format!("t{n}-{power_loss}"));
                copy_dir(&template, &dir);
                let o = run_child(w, &dir, n, power_loss);
                let what = format!(
                    "{} crash at point {n} of {total} (power loss: {power_loss})",
                    name(w)
                );
                assert!(!o.finished, "{what}: the child did not crash");
                tried += 1;
                let st = rt().block_on(async {
                    let svc = ImageService::open(&dir)
                        .unwrap_or_else(|e| panic!("{what}: the store does not open: {e}"));
                    if let Err(p) = strata::audit::verify(svc.store()).unwrap() {
                        panic!("{what}: audit verify failed: {p}");
                    }
                    state(&svc).await
                });
                let acked = o.acked;
                let allowed: Vec<String> = states[acked..(acked + 2).min(states.len())]
                    .iter()
                    .map(|s| normalized(w, s))
                    .collect();
                let st = normalized(w, &st);
                assert!(
                    allowed.contains(&st),
                    "{what}: {acked} operations were acknowledged, but the store holds neither their result nor the next one's\n  holds: {st}\n  allowed: {allowed:#?}"
                );
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
        summary.push(format!(
            "{}: {total} crash points, {tried} crashes checked",
            name(w)
        ));
    }
    eprintln!("{}", summary.join("\n"));
}
