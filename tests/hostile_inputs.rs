//! More untrusted input (issue 7 item 3), beyond tests/hostile_archives.rs:
//! whiteouts out of the root, device nodes and PAX size lies in the outer
//! archive and in layers, duplicate entries, deep and huge JSON, configs
//! with unknown fields, gzip bombs, symlink-then-write-through layers, and
//! hostile Engine-API requests.
//!
//! A refused input must leave the store byte-for-byte as it was: the log
//! head, the full `images(all)` listing, and the files under `blobs/` and
//! `ingest/` (no stray blob, no leftover ingest or staging file).
//!
//! Decisions documented here:
//! - Duplicate archive entries: the last one wins (Go's untar replaces a
//!   path that exists), for `manifest.json` and for layer files alike.
//! - Layers are stored verbatim and only checked lexically at load, so a
//!   layer `x -> /etc` followed by `x/passwd` loads; applying it
//!   (`rootfs::materialize`, used by `create_container`) resolves every
//!   path inside the tree (Docker's chroot semantics): `x/passwd` lands in
//!   the tree's `/etc/passwd`, or the apply fails when the target does not
//!   exist in the tree; nothing outside the store is ever written.
//! - Device nodes in the outer archive are refused (a docker-archive has
//!   only files, directories and links).

mod common;
use common::builder::*;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// One raw tar entry: name, type flag, link target, content.
struct Raw<'a>(&'a str, u8, &'a str, &'a [u8]);

fn header(name: &str, flag: u8, link: &str, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A tar written header by header (names and types the `tar` crate's
/// builder would refuse or rewrite).
fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for Raw(name, flag, link, data) in entries {
        out.extend_from_slice(&header(name, *flag, link, data.len()));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A PAX record `len key=value\n`.
fn pax(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    while format!("{n}{body}").len() != n {
        n += 1;
    }
    format!("{n}{body}").into_bytes()
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

fn good_image() -> Img {
    base(
        vec![layer(&[("etc/hostname", b"box\n")])],
        1_600_000_000,
        &[],
        &["good:1"],
    )
}

fn manifest(config: &str, tags: &[&str], layers: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([{"Config": config, "RepoTags": tags, "Layers": layers}]))
        .unwrap()
}

/// A config (no history) whose rootfs lists the sha256 of each of `layers`.
fn config_for(layers: &[&[u8]]) -> Vec<u8> {
    let ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

/// An archive of one image: config `c.json`, one layer file `l.tar`.
fn one_layer_archive(layer_bytes: &[u8], diff: &[u8]) -> Vec<u8> {
    let cfg = config_for(&[diff]);
    raw_tar(&[
        Raw("c.json", b'0', "", &cfg),
        Raw("l.tar", b'0', "", layer_bytes),
        Raw(
            "manifest.json",
            b'0',
            "",
            &manifest("c.json", &["bad:1"], &["l.tar"]),
        ),
    ])
}

/// Every file under `dir` (relative path -> sha256 of its content).
fn files(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, sha(&std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// What must not change: log head, listing, blobs/ and ingest/ files.
#[derive(Debug, PartialEq)]
struct State {
    head: strata::LogHead,
    listing: Vec<strata::ImageSummary>,
    blobs: BTreeMap<String, String>,
    ingest: BTreeMap<String, String>,
}

async fn state(svc: &strata::ImageService) -> State {
    let root = svc.store().root().to_path_buf();
    State {
        head: svc.store().head().unwrap(),
        listing: svc
            .images(strata::Filters::new(), true, false)
            .await
            .unwrap(),
        blobs: files(&root.join("blobs")),
        ingest: files(&root.join("ingest")),
    }
}

/// Load `bytes` into a store that holds one image; expect an
/// InvalidArgument error whose message is exactly `want` and an unchanged
/// store.
async fn refused(case: &str, bytes: Vec<u8>, want: &str) {
    let (_d, svc) = service();
    load_imgs(&svc, &[&good_image()]).await;
    let before = state(&svc).await;
    assert!(!before.blobs.is_empty() && before.ingest.is_empty());
    let started = Instant::now();
    let err = svc
        .load_image(std::io::Cursor::new(bytes), true)
        .await
        .expect_err(case);
    assert!(started.elapsed() < Duration::from_secs(10), "{case}: slow");
    assert_eq!(
        err.kind(),
        strata::ErrorKind::InvalidArgument,
        "{case}: {err}"
    );
    assert_eq!(err.message(), want, "{case}");
    assert_eq!(state(&svc).await, before, "{case}: the store changed");
    assert_verified(&svc);
}

#[tokio::test]
async fn hostile_inputs_are_refused_and_change_nothing() {
    let cfg = config_for(&[]);
    let ok_manifest = manifest("c.json", &["bad:1"], &[]);
    let wh_layer = raw_tar(&[Raw("../.wh.x", b'0', "", b"")]);
    let wh_layer2 = raw_tar(&[Raw("a/../../.wh.etc", b'0', "", b"")]);
    let deep = "[".repeat(100_000).into_bytes();
    let deep_junk = [&br#"[{"Config":"c.json","Junk":"#[..], &deep].concat();
    let deep_obj = r#"{"a":"#.repeat(100_000).into_bytes();
    let good_layer = layer(&[("f", b"data")]);

    // PAX `size` records that lie, in the outer archive...
    let mut pax_big = Vec::new();
    let rec = pax("size", "100000");
    pax_big.extend_from_slice(&header("PaxHeaders/m", b'x', "", rec.len()));
    pax_big.extend_from_slice(&rec);
    pax_big.resize(pax_big.len().div_ceil(512) * 512, 0);
    let mut pax_small = pax_big.clone();
    pax_big.extend_from_slice(&raw_tar(&[Raw("manifest.json", b'0', "", &ok_manifest)]));
    let rec = pax("size", "3");
    pax_small.clear();
    pax_small.extend_from_slice(&header("PaxHeaders/m", b'x', "", rec.len()));
    pax_small.extend_from_slice(&rec);
    pax_small.resize(pax_small.len().div_ceil(512) * 512, 0);
    pax_small.extend_from_slice(&raw_tar(&[Raw("manifest.json", b'0', "", &ok_manifest)]));
    // ...and in a layer (the DiffID is of the lying bytes, so only the
    // tar check can refuse it).
    let mut pax_layer = Vec::new();
    let rec = pax("size", "1000000");
    pax_layer.extend_from_slice(&header("PaxHeaders/f", b'x', "", rec.len()));
    pax_layer.extend_from_slice(&rec);
    pax_layer.resize(pax_layer.len().div_ceil(512) * 512, 0);
    pax_layer.extend_from_slice(&raw_tar(&[Raw("f", b'0', "", b"data")]));

    let tampered_layer = layer(&[("f", b"EVIL")]);

    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "whiteout outside the layer root",
            one_layer_archive(&wh_layer, &wh_layer),
            "layer 0 (l.tar): entry \"../.wh.x\" is outside of the layer root".into(),
        ),
        (
            "whiteout climbing out through a/..",
            one_layer_archive(&wh_layer2, &wh_layer2),
            "layer 0 (l.tar): entry \"a/../../.wh.etc\" is outside of the layer root".into(),
        ),
        (
            "whiteout outside the archive",
            raw_tar(&[Raw("../.wh.x", b'0', "", b"")]),
            "archive entry \"../.wh.x\" is outside of the archive".into(),
        ),
        (
            "character device in the archive",
            raw_tar(&[
                Raw("c.json", b'0', "", &cfg),
                Raw("null", b'3', "", b""),
                Raw("manifest.json", b'0', "", &ok_manifest),
            ]),
            "archive entry \"null\" has unsupported type Char".into(),
        ),
        (
            "block device in the archive",
            raw_tar(&[Raw("sda", b'4', "", b"")]),
            "archive entry \"sda\" has unsupported type Block".into(),
        ),
        (
            "fifo in the archive",
            raw_tar(&[Raw("p", b'6', "", b"")]),
            "archive entry \"p\" has unsupported type Fifo".into(),
        ),
        ("pax size larger than the data", pax_big, "Error processing tar file(exit status 1): archive/tar: invalid tar header (unexpected EOF during skip)".into()),
        (
            "pax size smaller than the data",
            pax_small,
            "invalid manifest.json: EOF while parsing a string at line 1 column 3".into(),
        ),
        (
            "pax size lie inside a layer",
            one_layer_archive(&pax_layer, &pax_layer),
            "layer 0 (l.tar): invalid tar stream: unexpected EOF during skip".into(),
        ),
        (
            "duplicate layer entries: the last (tampered) one wins",
            raw_tar(&[
                Raw("c.json", b'0', "", &config_for(&[&good_layer])),
                Raw("l.tar", b'0', "", &good_layer),
                Raw("l.tar", b'0', "", &tampered_layer),
                Raw(
                    "manifest.json",
                    b'0',
                    "",
                    &manifest("c.json", &["bad:1"], &["l.tar"]),
                ),
            ]),
            format!(
                "invalid diffID for layer 0: expected {:?}, got {:?}",
                sha(&good_layer),
                sha(&tampered_layer)
            ),
        ),
        (
            "duplicate manifest.json: the last (broken) one wins",
            raw_tar(&[
                Raw("c.json", b'0', "", &cfg),
                Raw("manifest.json", b'0', "", &ok_manifest),
                Raw("manifest.json", b'0', "", b"{"),
            ]),
            "invalid manifest.json: invalid type: map, expected a sequence at line 1 column 0".into(),
        ),
        (
            "manifest.json nested 100000 deep",
            raw_tar(&[Raw("manifest.json", b'0', "", &deep)]),
            "invalid manifest.json: invalid type: sequence, expected a string at line 1 column 2"
                .into(),
        ),
        (
            "manifest.json nested 100000 deep in an ignored field",
            raw_tar(&[Raw("manifest.json", b'0', "", &deep_junk)]),
            "invalid manifest.json: EOF while parsing a list at line 1 column 100027".into(),
        ),
        (
            "config nested 100000 deep (arrays)",
            raw_tar(&[
                Raw("c.json", b'0', "", &deep),
                Raw("manifest.json", b'0', "", &ok_manifest),
            ]),
            "invalid character '[' exceeded max depth".into(),
        ),
        (
            "config nested 100000 deep (objects)",
            raw_tar(&[
                Raw("c.json", b'0', "", &deep_obj),
                Raw("manifest.json", b'0', "", &ok_manifest),
            ]),
            "invalid character '{' exceeded max depth".into(),
        ),
    ];
    for (case, bytes, want) in cases {
        refused(case, bytes, &want).await;
    }
}

#[tokio::test]
async fn duplicate_entries_keep_the_last_one() {
    let good_layer = layer(&[("f", b"data")]);
    let other_layer = layer(&[("f", b"EVIL")]);
    let cfg = config_for(&[&good_layer]);
    let (_d, svc) = service();
    // Two manifest.json: the second names other tags.
    let report = svc
        .load_image(
            std::io::Cursor::new(raw_tar(&[
                Raw("c.json", b'0', "", &cfg),
                Raw("l.tar", b'0', "", &good_layer),
                Raw(
                    "manifest.json",
                    b'0',
                    "",
                    &manifest("c.json", &["hostile/first:1"], &["l.tar"]),
                ),
                Raw(
                    "manifest.json",
                    b'0',
                    "",
                    &manifest("c.json", &["hostile/second:1"], &["l.tar"]),
                ),
            ])),
            true,
        )
        .await
        .unwrap();
    assert_eq!(report.lines, ["Loaded image: hostile/second:1"]);
    assert_eq!(report.images, [sha(&cfg)]);
    // Two layer files of one name (the first large, so it is staged on
    // disk): the last one is the layer.
    let big = layer(&[("big", &vec![7u8; 3 << 20])]);
    let report = svc
        .load_image(
            std::io::Cursor::new(raw_tar(&[
                Raw("l.tar", b'0', "", &big),
                Raw("l.tar", b'0', "", &other_layer),
                Raw("l.tar", b'0', "", &good_layer),
                Raw("c.json", b'0', "", b"{}"),
                Raw("c.json", b'0', "", &cfg),
                Raw(
                    "manifest.json",
                    b'0',
                    "",
                    &manifest("c.json", &["hostile/third:1"], &["l.tar"]),
                ),
            ])),
            true,
        )
        .await
        .unwrap();
    assert_eq!(report.lines, ["Loaded image: hostile/third:1"]);
    let root = svc.store().root().to_path_buf();
    let blobs: Vec<String> = files(&root.join("blobs")).into_keys().collect();
    assert_eq!(
        blobs,
        [format!("sha256/{}", &sha(&good_layer)[7..])],
        "only the kept layer is stored"
    );
    assert!(files(&root.join("ingest")).is_empty());
    assert_verified(&svc);
}

/// A config with fields Docker does not know, odd spacing and number
/// spellings, and a 10 MB unknown string: kept verbatim (ID = sha256 of the
/// exact bytes) and saved back byte for byte; a 10 MB manifest.json loads
/// too, quickly.
#[tokio::test]
async fn unknown_fields_and_huge_json_are_kept_verbatim() {
    let l = layer(&[("f", b"data")]);
    let pad = "x".repeat(10 << 20);
    let cfg = format!(
        "{{ \"rootfs\" : {{\"type\":\"layers\",\"diff_ids\":[\"{}\"],\"x-extra\":1.50}},\n\
         \"os\":\"linux\", \"architecture\":\"amd64\",\"zz-unknown\":{{\"n\":[1e2,-0.0,\"\\u00e9\"]}},\
         \"pad\":\"{pad}\"}}",
        sha(&l)
    )
    .into_bytes();
    let id = sha(&cfg);
    let man = format!(
        r#"[{{"Config":"c.json","RepoTags":["hostile/unknown:1"],"Layers":["l.tar"],"Junk":"{pad}"}}]"#
    );
    let (_d, svc) = service();
    let started = Instant::now();
    let report = svc
        .load_image(
            std::io::Cursor::new(raw_tar(&[
                Raw("c.json", b'0', "", &cfg),
                Raw("l.tar", b'0', "", &l),
                Raw("manifest.json", b'0', "", man.as_bytes()),
            ])),
            true,
        )
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "slow load");
    assert_eq!(report.images, std::slice::from_ref(&id));
    assert_eq!(svc.lookup_image("hostile/unknown:1").await.unwrap().id, id);
    let out = tempfile::NamedTempFile::new().unwrap();
    svc.export_image(vec!["hostile/unknown:1".into()], out.reopen().unwrap())
        .await
        .unwrap();
    let saved = std::fs::read(out.path()).unwrap();
    let mut a = tar::Archive::new(&saved[..]);
    let want_name = format!("{}.json", &id[7..]);
    let mut found = None;
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(want_name.as_str()) {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut b).unwrap();
            found = Some(b);
        }
    }
    assert!(
        found.as_deref() == Some(&cfg[..]),
        "config not saved verbatim"
    );
    assert_verified(&svc);
}

/// `x -> /etc` then `x/passwd`: loads (layers are blobs, checked
/// lexically), and applying it writes the tree's own /etc/passwd, never the
/// host's; a symlink to a host directory the tree lacks makes the apply
/// fail, writing nothing anywhere.
#[tokio::test]
async fn symlink_then_write_through_stays_in_the_tree() {
    let host_passwd = std::fs::read("/etc/passwd").ok();
    let canary = tempfile::tempdir().unwrap();
    std::fs::write(canary.path().join("file"), b"canary").unwrap();
    let canary_abs = canary.path().display().to_string();
    let lower = layer(&[("etc/hostname", b"box\n")]);
    let through = raw_tar(&[
        Raw("x", b'2', "/etc", b""),
        Raw("x/passwd", b'0', "", b"root::0:0::/:/bin/sh\n"),
    ]);
    let img = base(
        vec![lower.clone(), through],
        1_600_000_000,
        &[],
        &["hostile/through:1"],
    );
    let (_d, svc) = service();
    load_imgs(&svc, &[&img]).await;
    let cid = svc
        .create_container("hostile/through:1", None)
        .await
        .unwrap();
    let rw = svc.container_rw_path(&cid).await.unwrap();
    assert_eq!(
        std::fs::read(rw.join("etc/passwd")).unwrap(),
        b"root::0:0::/:/bin/sh\n"
    );
    assert_eq!(std::fs::read_link(rw.join("x")).unwrap(), Path::new("/etc"));
    assert_eq!(std::fs::read("/etc/passwd").ok(), host_passwd);

    // Through a symlink to a host directory: the tree has no such path.
    let out = raw_tar(&[
        Raw("x", b'2', &canary_abs, b""),
        Raw("x/pwned", b'0', "", b"x"),
    ]);
    let img2 = base(vec![lower, out], 1_600_000_000, &[], &["hostile/out:1"]);
    load_imgs(&svc, &[&img2]).await;
    let top = svc.map().await.unwrap()[&img2.id()]
        .top_layer
        .clone()
        .unwrap();
    let err = strata::rootfs::materialize(svc.store(), Some(&top)).unwrap_err();
    assert_eq!(
        err.message(),
        format!("applying layer {top}: mkdir \"x\": File exists (os error 17)")
    );
    let left: Vec<String> = files(canary.path()).into_keys().collect();
    assert_eq!(left, ["file"]);
    assert_eq!(
        std::fs::read(canary.path().join("file")).unwrap(),
        b"canary"
    );
    let layers_dir = strata::rootfs::layers_dir(svc.store().root());
    let mut cached: Vec<String> = std::fs::read_dir(&layers_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cached.sort();
    assert!(
        cached.iter().all(|n| !n.starts_with(".tmp-")),
        "a temporary tree was left: {cached:?}"
    );
    // A container on it is created, without a filesystem.
    let cid = svc.create_container("hostile/out:1", None).await.unwrap();
    assert!(svc.container_rw_path(&cid).await.is_err());
    assert_eq!(files(canary.path()).len(), 1);
    assert_verified(&svc);
}

/// `n` gzip members of 1 MiB of zeros after a member holding `head`.
fn zero_bomb(head: &[u8], n: usize) -> Vec<u8> {
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, b).unwrap();
        e.finish().unwrap()
    };
    let mut out = gz(head);
    let member = gz(&vec![0u8; 1 << 20]);
    for _ in 0..n {
        out.extend_from_slice(&member);
    }
    out
}

/// Run `strata load` in a child with `STRATA_MAX_DECOMPRESSED_BYTES` set.
fn cli_load(root: &Path, input: &[u8], limit: &str) -> (i32, String, String) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), input).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .args(["load", "-i"])
        .arg(f.path())
        .env_remove("STRATA_ROOT")
        .env("STRATA_MAX_DECOMPRESSED_BYTES", limit)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Gzip bombs (a layer, the archive itself) stop at the configured bound
/// in a child process, with an error naming the layer or entry, and leave
/// the store as it was.
#[tokio::test]
async fn gzip_bombs_stop_at_the_decompression_bound() {
    // A tar header declaring an 8 GiB file, then zeros: 8 MiB of compressed
    // input would inflate to 8 GiB.
    let huge = header("bomb", b'0', "", 0);
    let mut huge = huge.to_vec();
    huge[124..136].copy_from_slice(format!("{:011o}\0", (1u64 << 33) - 1).as_bytes());
    huge[148..156].copy_from_slice(b"        ");
    let sum: u32 = huge.iter().map(|&b| b as u32).sum();
    huge[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let layer_bomb = zero_bomb(&huge, 8192);
    let fake = b"never hashed";
    let layer_archive = one_layer_archive(&layer_bomb, fake);
    let outer_bomb = {
        let mut head = huge.clone();
        head[..4].copy_from_slice(b"big\0");
        head[148..156].copy_from_slice(b"        ");
        let sum: u32 = head.iter().map(|&b| b as u32).sum();
        head[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        zero_bomb(&head, 8192)
    };
    let cases = [
        (
            "layer bomb",
            layer_archive,
            "Error response from daemon: layer 0 (l.tar): decompressed size exceeds the limit of 4194304 bytes (STRATA_MAX_DECOMPRESSED_BYTES)",
        ),
        (
            "archive bomb",
            outer_bomb,
            "Error response from daemon: archive entry \"big\": decompressed size exceeds the limit of 4194304 bytes (STRATA_MAX_DECOMPRESSED_BYTES)",
        ),
    ];
    for (case, input, want) in cases {
        cli_refused(case, &input, "4194304", want).await;
    }
}

/// `strata load` of `input` with `STRATA_MAX_DECOMPRESSED_BYTES=limit`,
/// into a store that holds one image, fails quickly with exactly `want`
/// on stderr and leaves the store as it was.
async fn cli_refused(case: &str, input: &[u8], limit: &str, want: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    {
        let svc = strata::ImageService::open(&root).unwrap();
        load_imgs(&svc, &[&good_image()]).await;
    }
    let svc = strata::ImageService::open(&root).unwrap();
    let before = state(&svc).await;
    drop(svc);
    let started = Instant::now();
    let (code, stdout, stderr) = cli_load(&root, input, limit);
    assert!(started.elapsed() < Duration::from_secs(10), "{case}: slow");
    assert_eq!(
        (code, stdout.as_str(), stderr.trim_end()),
        (1, "", want),
        "{case}"
    );
    let svc = strata::ImageService::open(&root).unwrap();
    assert_eq!(state(&svc).await, before, "{case}: the store changed");
    assert_verified(&svc);
}

/// An image of `n` gzip layers too large to stay in memory (1.5 MiB of
/// noise each), so that load inflates them side by side; `bad` (layer,
/// wrong DiffID) spoils one of them. Returns the archive and the layers.
fn gzip_layers_archive(n: usize, bad: Option<usize>) -> (Vec<u8>, Vec<Vec<u8>>) {
    let tars: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let data = noise(i as u64 + 40, 3 << 19);
            common::builder::layer(&[(&format!("f{i}"), &data)])
        })
        .collect();
    let gz: Vec<Vec<u8>> = tars
        .iter()
        .map(|t| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, t).unwrap();
            e.finish().unwrap()
        })
        .collect();
    let mut diffs: Vec<&[u8]> = tars.iter().map(Vec::as_slice).collect();
    if let Some(b) = bad {
        diffs[b] = b"something else";
    }
    let cfg = config_for(&diffs);
    let names: Vec<String> = (0..n).map(|i| format!("l{i}.tar")).collect();
    let mut entries = vec![Raw("c.json", b'0', "", &cfg)];
    for (name, bytes) in names.iter().zip(&gz) {
        entries.push(Raw(name, b'0', "", bytes));
    }
    let layers: Vec<&str> = names.iter().map(String::as_str).collect();
    let m = manifest("c.json", &["gz:1"], &layers);
    entries.push(Raw("manifest.json", b'0', "", &m));
    (raw_tar(&entries), tars)
}

/// Several compressed layers are inflated side by side (one per core), and
/// the result is the one of inflating them in manifest order: the same
/// blobs, and for a broken archive the same error, naming the same layer,
/// with nothing left behind.
#[tokio::test]
async fn gzip_layers_inflated_side_by_side_load_as_one_by_one() {
    let (bytes, tars) = gzip_layers_archive(5, None);
    let (_d, svc) = service();
    svc.load_image(std::io::Cursor::new(bytes), true)
        .await
        .unwrap();
    let img = svc.lookup_image("gz:1").await.unwrap();
    let want: Vec<String> = tars.iter().map(|t| sha(t)).collect();
    assert_eq!(img.root_fs.layers, want);
    for (t, d) in tars.iter().zip(&want) {
        let blob = std::fs::read(svc.store().content().path(d)).unwrap();
        assert!(blob == *t, "blob {d} holds other bytes");
    }
    assert!(files(&svc.store().root().join("ingest")).is_empty());
    assert_verified(&svc);

    let (bytes, tars) = gzip_layers_archive(5, Some(3));
    refused(
        "wrong DiffID of layer 3 of 5",
        bytes,
        &format!(
            "invalid diffID for layer 3: expected {:?}, got {:?}",
            sha(b"something else"),
            sha(&tars[3])
        ),
    )
    .await;

    // Four layers of 1.5 MiB under a 4 MiB bound for all of them: each
    // fits alone, the third one takes the archive over it. Inflated
    // ahead, the layers must still count against the archive's bound.
    let (bytes, _) = gzip_layers_archive(4, None);
    cli_refused(
        "four layers over the archive's bound",
        &bytes,
        "4194304",
        "Error response from daemon: layer 2 (l2.tar): the archive's layers decompress \
         to more than 4194304 bytes (STRATA_MAX_DECOMPRESSED_BYTES)",
    )
    .await;
}
