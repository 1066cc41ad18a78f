//! Crash safety, proven by killing work at every crash point.
//!
//! For each workload (a sequence of operations on a prepared store) the test
//! re-runs this binary as a child that performs the workload with
//! `STRATA_TEST_CRASH_AT=N`, aborting at the N-th crash point (every blob
//! write chunk, fsync, rename, directory fsync, transaction commit, and every
//! write and sync redb makes), for at least [`MIN_POINTS`] distinct N per
//! workload (every N when the workload has no more than the cap) — once as a
//! killed process and once as a power loss (database writes since the last
//! sync undone). After each crash the store must open, pass `audit verify`
//! (hash chain, tables == replay, every layer blob present and intact), have
//! no row naming a missing layer, and hold exactly the state after the last
//! operation the child acknowledged, or after the one in flight: never a
//! partial operation.
//!
//! The pull workload pulls from a real `docker-registry` on 127.0.0.1 that
//! stays up across all children; for every tenth crash point the parent also
//! resumes the pulls on the crashed store and checks they complete with the
//! image IDs and final state of a crash-free run.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;
use common::builder::*;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use strata::distribution::PullOptions;
use strata::{Filters, ImageService};

const CHILD_ENV: &str = "STRATA_CRASH_TEST_CHILD";
/// The references a pull child pulls, space separated.
const REFS_ENV: &str = "STRATA_CRASH_TEST_REFS";
/// Distinct crash points every workload must have, and the default plan
/// tries, in each mode.
const MIN_POINTS: u64 = 200;
/// For pull: resume the pulls after every this-many-th crash.
const RESUME_EVERY: usize = 10;

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
    Pull,
}

const ALL: [Workload; 8] = [
    Workload::Load,
    Workload::Tag,
    Workload::Delete,
    Workload::Prune,
    Workload::Gc,
    Workload::Import,
    Workload::Commit,
    Workload::Pull,
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
        Workload::Pull => "pull",
    }
}

fn by_name(s: &str) -> Workload {
    ALL.into_iter().find(|w| name(*w) == s).unwrap()
}

/// Deterministic, poorly compressible bytes (seeds spread by a multiply).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    common::noise(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), len)
}

fn image(i: u64, tags: &[&str]) -> Img {
    sized_image(i, 48 * 1024, tags)
}

/// An image whose blob sizes do not matter to the workload (they only cost
/// the checks time).
fn small_image(i: u64, tags: &[&str]) -> Img {
    sized_image(i, 4096, tags)
}

fn sized_image(i: u64, big: usize, tags: &[&str]) -> Img {
    let big = noise(i, big);
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

/// The images pushed for the pull workload, and the local image holding
/// their shared bottom layer. `a` and `b` share `shared` (which the pulling
/// store already has) and `a1` (which the pull of `a` brings); `c` shares
/// nothing.
fn pull_images(host: &str) -> (Img, Vec<Img>) {
    let shared = layer(&[("base/shared", &noise(500, 4_000))]);
    let a1 = layer(&[("a/one", &noise(501, 4_000))]);
    let img = |layers: Vec<Vec<u8>>, i: i64, repo: &str| {
        base(
            layers,
            1_650_000_000 + i,
            &[("org.example", repo)],
            &[&format!("{host}/crash/{repo}:1")],
        )
    };
    let local = base(vec![shared.clone()], 1_640_000_000, &[], &["local:1"]);
    let pushed = vec![
        img(
            vec![
                shared.clone(),
                a1.clone(),
                layer(&[("a/two", &noise(502, 8_000))]),
            ],
            1,
            "a",
        ),
        img(
            vec![
                shared.clone(),
                a1.clone(),
                layer(&[("b/one", &noise(503, 8_000))]),
            ],
            2,
            "b",
        ),
        img(
            vec![
                layer(&[("c/one", &noise(504, 8_000))]),
                layer(&[("c/two", &noise(505, 4_000))]),
                layer(&[("c/three", &noise(506, 3_000))]),
            ],
            3,
            "c",
        ),
        img(
            vec![
                layer(&[("c/one", &noise(504, 8_000))]),
                layer(&[("d/one", &noise(507, 8_000))]),
                layer(&[("d/two", &noise(508, 4_000))]),
                layer(&[("d/three", &noise(509, 4_000))]),
            ],
            4,
            "d",
        ),
        img(
            vec![shared, layer(&[("e/one", &noise(510, 5_000))])],
            5,
            "e",
        ),
        // a1 at the bottom: its blob is there (after a), its layer is not.
        img(vec![a1, layer(&[("f/one", &noise(511, 5_000))])], 6, "f"),
    ];
    (local, pushed)
}

/// Prepare the store; for pull, also push the images from a separate store
/// and return the references the operations pull.
async fn setup(w: Workload, svc: &ImageService, registry: Option<&str>) -> Vec<String> {
    match w {
        Workload::Load | Workload::Import => {}
        Workload::Tag => {
            for i in 0..6 {
                load_imgs(svc, &[&small_image(i, &[&format!("img:{i}")])]).await;
            }
        }
        Workload::Delete => {
            for i in 0..DELETES {
                load_imgs(svc, &[&small_image(i, &[&format!("img:{i}")])]).await;
            }
        }
        Workload::Prune => {
            for family in 0..PRUNE_FAMILIES {
                let b = small_image(family, &[&format!("base:{family}")]);
                let mut imgs = vec![b.clone()];
                let f = format!("f{family}");
                let label = [("family", f.as_str())];
                for i in 0..PRUNE_CHILDREN {
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
            load_imgs(svc, &[&small_image(0, &["base:1"])]).await;
            for i in 0..COMMITS {
                svc.create_container("base:1", Some(&format!("c{i}")))
                    .await
                    .unwrap();
                let rw = svc.container_rw_path(&format!("c{i}")).await.unwrap();
                std::fs::write(rw.join(format!("added-{i}")), noise(90 + i, 8_000)).unwrap();
                std::fs::remove_file(rw.join("data/small")).unwrap();
            }
        }
        Workload::Gc => {
            // Blobs to collect: GC_IMAGES × GC_LAYERS small ones.
            for i in 0..GC_IMAGES {
                let layers = (0..GC_LAYERS)
                    .map(|l| layer(&[("f", &noise(1000 + i * 100 + l, 300))]))
                    .collect();
                let img = base(layers, 1_600_000_000, &[], &[&format!("gone:{i}")]);
                load_imgs(svc, &[&img]).await;
                svc.image_delete(&format!("gone:{i}"), false, true)
                    .await
                    .unwrap();
            }
        }
        Workload::Pull => {
            let host = registry.expect("the pull workload needs a registry");
            let (local, pushed) = pull_images(host);
            load_imgs(svc, &[&local]).await;
            let dir = tempfile::tempdir().unwrap();
            let pusher = ImageService::open(dir.path()).unwrap();
            let mut digests = Vec::new();
            for img in &pushed {
                load_imgs(&pusher, &[img]).await;
                let report = pusher.push_image(&img.tags[0], None, None).await.unwrap();
                digests.push(report.pushed[0].digest.clone());
            }
            // By tag (one layer present, two new), by digest (two layers
            // present by then, one new), by tag with no layer in common,
            // then a tag for an image already pulled by digest, then by
            // digest sharing a layer with an earlier pull, by tag with only
            // one new layer, and by digest with a known blob as a new
            // bottom layer.
            return vec![
                format!("{host}/crash/a:1"),
                format!("{host}/crash/b@{}", digests[1]),
                format!("{host}/crash/c:1"),
                format!("{host}/crash/b:1"),
                format!("{host}/crash/d@{}", digests[3]),
                format!("{host}/crash/e:1"),
                format!("{host}/crash/f@{}", digests[5]),
            ];
        }
    }
    Vec::new()
}

const LOADS: u64 = 6;
const DELETES: u64 = 12;
const PRUNE_FAMILIES: u64 = 9;
const PRUNE_CHILDREN: u64 = 2;
const GC_IMAGES: u64 = 22;
const GC_LAYERS: u64 = 10;
const IMPORTS: u64 = 8;
const COMMITS: u64 = 7;

fn pull_options() -> PullOptions {
    PullOptions {
        retry_delay: Duration::from_millis(20),
        // One download at a time: the same crash point number means the
        // same place in every run.
        max_concurrent_downloads: 1,
        ..PullOptions::default()
    }
}

/// The operations under test; `ack(k)` after the k-th completes. Returns
/// the image IDs pulled (pull only).
async fn operations(
    w: Workload,
    svc: &ImageService,
    refs: &[String],
    mut ack: impl FnMut(usize),
) -> Vec<String> {
    match w {
        Workload::Load => {
            for i in 0..LOADS {
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
            for i in 0..DELETES {
                svc.image_delete(&format!("img:{i}"), false, true)
                    .await
                    .unwrap();
                ack(i as usize + 1);
            }
        }
        Workload::Prune => {
            // The dangling children of one family at a time, then those
            // left, then every unused image (the tagged bases).
            let mut k = 0;
            for family in 0..PRUNE_FAMILIES - 1 {
                let mut labelled = Filters::new();
                labelled.add("label", &format!("family=f{family}"));
                svc.images_prune(labelled).await.unwrap();
                k += 1;
                ack(k);
            }
            svc.images_prune(Filters::new()).await.unwrap();
            ack(k + 1);
            let mut all = Filters::new();
            all.add("dangling", "false");
            svc.images_prune(all).await.unwrap();
            ack(k + 2);
        }
        Workload::Gc => {
            svc.gc(false).await.unwrap();
            ack(1);
        }
        Workload::Commit => {
            for i in 0..COMMITS {
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
                ack(i as usize + 1);
            }
        }
        Workload::Import => {
            for i in 0..IMPORTS {
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
        Workload::Pull => {
            let mut ids = Vec::new();
            for (k, r) in refs.iter().enumerate() {
                let report = svc
                    .pull_image_with(r, pull_options())
                    .await
                    .unwrap_or_else(|e| panic!("pull {r}: {e}"));
                ids.extend(report.images.into_iter().map(|i| i.image_id));
                ack(k + 1);
            }
            return ids;
        }
    }
    Vec::new()
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

/// Rows naming what is not there: an image whose top layer, or a layer
/// whose parent, has no row (a missing blob behind a layer row is audit
/// verify's).
fn dangling_rows(svc: &ImageService) -> Vec<String> {
    svc.store()
        .read(|t| {
            let layers: std::collections::BTreeMap<String, strata::LayerRow> =
                t.layers()?.into_iter().collect();
            let mut out = Vec::new();
            for (id, row) in t.images()? {
                if let Some(top) = &row.top_layer
                    && !layers.contains_key(top)
                {
                    out.push(format!("image {id}: top layer {top} has no row"));
                }
                if t.config(&id)?.is_none() {
                    out.push(format!("image {id}: no config"));
                }
            }
            for (chain, row) in &layers {
                if let Some(p) = &row.parent
                    && !layers.contains_key(p)
                {
                    out.push(format!("layer {chain}: parent {p} has no row"));
                }
            }
            Ok(out)
        })
        .unwrap()
}

/// The child: run the workload's operations on `STRATA_CRASH_TEST_ROOT`.
#[test]
fn crash_child_entry() {
    let Ok(w) = std::env::var(CHILD_ENV) else {
        return;
    };
    let root = PathBuf::from(std::env::var("STRATA_CRASH_TEST_ROOT").unwrap());
    let refs: Vec<String> = std::env::var(REFS_ENV)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    rt().block_on(async {
        let svc = ImageService::open(&root).unwrap();
        let mut out = std::io::stdout().lock();
        operations(by_name(&w), &svc, &refs, |k| {
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

fn run_child(w: Workload, refs: &[String], root: &Path, at: u64, power_loss: bool) -> Outcome {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "crash_child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, name(w))
    .env(REFS_ENV, refs.join(" "))
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
/// exactly `cap` distinct ones (`cap` > 20): the first and last 10, and
/// `cap - 20` spread evenly over the rest.
fn plan(total: u64, cap: u64) -> Vec<u64> {
    if total <= cap {
        return (1..=total).collect();
    }
    let (inner, picks) = (total - 20, cap - 20);
    let mut v: Vec<u64> = (1..=10).chain(total - 9..=total).collect();
    // inner > picks, so the picks are distinct.
    v.extend((0..picks).map(|i| 11 + i * inner / picks));
    v.sort_unstable();
    v
}

#[test]
fn the_plan_tries_exactly_the_cap_in_distinct_points() {
    for (total, cap, want_len) in [
        (5, 200, 5),
        (200, 200, 200),
        (201, 200, 200),
        (219, 200, 200),
        (1000, 200, 200),
        (100_000, 200, 200),
        (250, 30, 30),
    ] {
        let p = plan(total, cap);
        let mut d = p.clone();
        d.dedup();
        assert_eq!((p.len(), d.len()), (want_len, want_len), "{total} {cap}");
        assert_eq!(p.first(), Some(&1), "{total} {cap}");
        assert_eq!(p.last(), Some(&total), "{total} {cap}");
        assert!(p.iter().all(|n| (1..=total).contains(n)), "{total} {cap}");
    }
}

/// The state before the operations and after each of them without
/// crashes, and the image IDs pulled.
fn reference_states(
    w: Workload,
    refs: &[String],
    template: &Path,
    scratch: &Path,
) -> (Vec<String>, Vec<String>) {
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
        let ids = operations(w, &svc, refs, |_| {
            let st = tokio::task::block_in_place(|| handle.block_on(state(&svc)));
            states.push(st);
        })
        .await;
        (states, ids)
    })
}

/// What every crash of one workload is checked against.
struct Expect<'a> {
    w: Workload,
    refs: &'a [String],
    template: &'a Path,
    states: &'a [String],
    pulled_ids: &'a [String],
    total: u64,
}

/// Time spent in children, for the summary.
static CHILD_MICROS: AtomicU64 = AtomicU64::new(0);

/// Crash the workload at point `n`, then check the store. `Ok(true)` when
/// the pulls were also resumed and checked.
fn check_point(
    e: &Expect,
    dir: &Path,
    n: u64,
    power_loss: bool,
    resume: bool,
) -> Result<bool, String> {
    let w = e.w;
    copy_dir(e.template, dir);
    let t = Instant::now();
    let o = run_child(w, e.refs, dir, n, power_loss);
    CHILD_MICROS.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
    let what = format!(
        "{} crash at point {n} of {} (power loss: {power_loss})",
        name(w),
        e.total
    );
    if o.finished {
        return Err(format!("{what}: the child did not crash"));
    }
    let result = rt().block_on(async {
        let svc = ImageService::open(dir).map_err(|e| format!("{what}: the store does not open: {e}"))?;
        match strata::audit::verify(svc.store()) {
            Ok(Ok(_)) => {}
            Ok(Err(p)) => return Err(format!("{what}: audit verify failed: {p}")),
            Err(err) => return Err(format!("{what}: audit verify errored: {err}")),
        }
        let dangling = dangling_rows(&svc);
        if !dangling.is_empty() {
            return Err(format!("{what}: rows name what is not there: {dangling:?}"));
        }
        let st = normalized(w, &state(&svc).await);
        let acked = o.acked;
        let allowed: Vec<String> = e.states[acked..(acked + 2).min(e.states.len())]
            .iter()
            .map(|s| normalized(w, s))
            .collect();
        if !allowed.contains(&st) {
            return Err(format!(
                "{what}: {acked} operations were acknowledged, but the store holds neither their result nor the next one's\n  holds: {st}\n  allowed: {allowed:#?}"
            ));
        }
        if !resume {
            return Ok(false);
        }
        // Resume: every pull again, on the crashed store.
        let ids = operations(w, &svc, e.refs, |_| {}).await;
        if ids != e.pulled_ids {
            return Err(format!(
                "{what}: the resumed pulls yield {ids:?}, a crash-free run {:?}",
                e.pulled_ids
            ));
        }
        let st = state(&svc).await;
        if &st != e.states.last().unwrap() {
            return Err(format!(
                "{what}: after the resumed pulls the store holds\n  {st}\nnot\n  {}",
                e.states.last().unwrap()
            ));
        }
        match strata::audit::verify(svc.store()) {
            Ok(Ok(_)) => Ok(true),
            other => Err(format!("{what}: audit verify after the resumed pulls: {other:?}")),
        }
    });
    std::fs::remove_dir_all(dir).unwrap();
    result
}

#[test]
fn every_crash_point_leaves_a_consistent_store() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let started = Instant::now();
    let cap: u64 = std::env::var("STRATA_CRASH_POINTS_CAP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MIN_POINTS);
    // Children run this many at a time (they mostly wait on each other's
    // process start and on the store's fsyncs).
    let jobs: usize = std::env::var("STRATA_CRASH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .max(1);
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    // A comma-separated subset of the workloads, for a quick look at one.
    let only = std::env::var("STRATA_CRASH_KINDS").ok();
    for w in ALL {
        if let Some(only) = &only
            && !only.split(',').any(|k| k == name(w))
        {
            continue;
        }
        let kind_started = Instant::now();
        let registry = match w {
            Workload::Pull => match registry_harness::plain_registry() {
                Some(r) => Some(r.host.clone()),
                // Only off CI (`have` fails the test under CI).
                None => continue,
            },
            _ => None,
        };
        // tmpfs when there is one: the crashes are simulated (abort, and an
        // undo of unsynced database writes), so real fsyncs only cost time.
        let base_dir = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::tempdir_in("/dev/shm").unwrap(),
            false => tempfile::tempdir().unwrap(),
        };
        let template = base_dir.path().join("template");
        let refs = rt().block_on(async {
            let svc = ImageService::open(&template).unwrap();
            setup(w, &svc, registry.as_deref()).await
        });
        let (states, pulled_ids) =
            reference_states(w, &refs, &template, &base_dir.path().join("reference"));
        let ops = states.len() - 1;
        // Count the crash points of a full run.
        let probe = base_dir.path().join("probe");
        copy_dir(&template, &probe);
        let full = run_child(w, &refs, &probe, u64::MAX, false);
        assert!(
            full.finished,
            "{}: the workload fails without crashes",
            name(w)
        );
        assert_eq!(full.acked, ops, "{}", name(w));
        let total = full.points;
        assert!(
            total >= MIN_POINTS,
            "{}: only {total} crash points in a full run; the workload must have at least {MIN_POINTS}",
            name(w)
        );
        let points = plan(total, cap);
        if cap >= MIN_POINTS {
            assert!(points.len() as u64 >= MIN_POINTS, "{}", name(w));
        }
        let expect = Expect {
            w,
            refs: &refs,
            template: &template,
            states: &states,
            pulled_ids: &pulled_ids,
            total,
        };
        let jobs_list: Vec<(bool, usize, u64)> = [false, true]
            .into_iter()
            .flat_map(|pl| points.iter().enumerate().map(move |(i, n)| (pl, i, *n)))
            .collect();
        let next = AtomicUsize::new(0);
        let resumed = AtomicUsize::new(0);
        let errors = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    loop {
                        let j = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&(power_loss, i, n)) = jobs_list.get(j) else {
                            break;
                        };
                        let resume = matches!(w, Workload::Pull) && i % RESUME_EVERY == 0;
                        let dir = base_dir.path().join(format!("t{n}-{power_loss}"));
                        match check_point(&expect, &dir, n, power_loss, resume) {
                            Ok(true) => {
                                resumed.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(false) => {}
                            Err(msg) => errors.lock().unwrap().push(msg),
                        }
                    }
                });
            }
        });
        let errors = errors.into_inner().unwrap();
        let mut line = format!(
            "{}: {total} crash points, {} crashes checked ({} distinct points in each of kill and power loss), {} inconsistencies",
            name(w),
            jobs_list.len(),
            points.len(),
            errors.len()
        );
        if matches!(w, Workload::Pull) {
            line.push_str(&format!(
                ", {} resumed pulls matched a crash-free pull",
                resumed.into_inner()
            ));
        }
        line.push_str(&format!(
            " [{:.1}s, {:.1}s of it in children]",
            kind_started.elapsed().as_secs_f64(),
            CHILD_MICROS.swap(0, Ordering::Relaxed) as f64 / 1e6
        ));
        eprintln!("{line}");
        summary.push(line);
        failures.extend(errors);
    }
    eprintln!(
        "crash harness summary ({:.1}s):\n{}",
        started.elapsed().as_secs_f64(),
        summary.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} inconsistencies:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
