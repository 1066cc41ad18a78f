//! Interop with the real peers: skopeo reads and converts the archives strata
//! saves; a private dockerd 20.10 (tests/common/dockerd.rs) loads them into
//! the same state strata has, and strata loads dockerd's own saves into the
//! same state dockerd has (inspect, history and listing JSON of the Engine
//! API, field for field, except Metadata.LastTagTime).
//!
//! The tools (skopeo, dockerd, /usr/bin/docker) are required under CI (env
//! `CI`); elsewhere a test without them prints a note and passes.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;

use common::builder::{Img, base, child, layer};
use common::*;
use dockerd::{Dockerd, have, run_ok, s, tool};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;
use strata::{Filters, ImageService};

// ---------------------------------------------------------------- helpers

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn fresh() -> (tempfile::TempDir, ImageService) {
    service()
}

fn load_bytes(svc: &ImageService, bytes: &[u8]) -> strata::archive::LoadReport {
    block_on(svc.load_image(std::io::Cursor::new(bytes.to_vec()), true)).unwrap()
}

fn load_fixture(svc: &ImageService, name: &str) {
    load_bytes(svc, &read_fixture(name));
}

/// strata's `docker save` of `names`.
fn save(svc: &ImageService, names: &[&str]) -> Vec<u8> {
    let f = tempfile::NamedTempFile::new().unwrap();
    let w = f.reopen().unwrap();
    block_on(svc.export_image(names.iter().map(|n| n.to_string()).collect(), w)).unwrap();
    std::fs::read(f.path()).unwrap()
}

fn inspect(svc: &ImageService, name: &str) -> Value {
    serde_json::to_value(block_on(svc.lookup_image(name)).unwrap()).unwrap()
}

fn history(svc: &ImageService, name: &str) -> Value {
    serde_json::to_value(block_on(svc.image_history(name)).unwrap()).unwrap()
}

fn sorted_by_id(v: Value) -> Value {
    let mut items = v.as_array().unwrap().clone();
    items.sort_by(|a, b| a["Id"].as_str().cmp(&b["Id"].as_str()));
    Value::Array(items)
}

fn listing(svc: &ImageService, all: bool) -> Value {
    let rows = block_on(svc.images(Filters::new(), all, false)).unwrap();
    sorted_by_id(serde_json::to_value(rows).unwrap())
}

fn all_ids(svc: &ImageService) -> Vec<String> {
    block_on(svc.map()).unwrap().into_keys().collect()
}

/// Inspect JSON without Metadata (LastTagTime legitimately differs).
fn comparable(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("Metadata");
    v
}

fn tar_file(archive: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            return Some(b);
        }
    }
    None
}

/// The archive's manifest.json.
fn manifest(archive: &[u8]) -> Vec<Value> {
    serde_json::from_slice(&tar_file(archive, "manifest.json").expect("no manifest.json")).unwrap()
}

/// IDs of the images in an archive, in manifest order.
fn manifest_ids(archive: &[u8]) -> Vec<String> {
    manifest(archive)
        .iter()
        .map(|m| {
            format!(
                "sha256:{}",
                m["Config"].as_str().unwrap().trim_end_matches(".json")
            )
        })
        .collect()
}

fn lines(out: &str) -> Vec<String> {
    out.lines().map(str::to_string).collect()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// A docker-archive of `imgs` whose layer files are gzip-compressed
/// (docker load accepts compressed layer blobs; DiffIDs stay those of the
/// uncompressed tars).
fn archive_gz(imgs: &[&Img]) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut entries = Vec::new();
    for img in imgs {
        let cfg = format!("{}.json", &img.id()[7..]);
        files.push((cfg.clone(), img.config.clone()));
        let mut paths = Vec::new();
        for l in &img.layers {
            let name = format!("{}.tar.gz", &sha(l)[7..]);
            if !files.iter().any(|(n, _)| n == &name) {
                files.push((name.clone(), gzip(l)));
            }
            paths.push(name);
        }
        let mut m = json!({"Config": cfg, "RepoTags": img.tags, "Layers": paths});
        if img.tags.is_empty() {
            m["RepoTags"] = Value::Null;
        }
        if let Some(p) = &img.parent {
            m["Parent"] = p.clone().into();
        }
        entries.push(m);
    }
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&entries).unwrap(),
    ));
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Synthetic images: two bases sharing a layer, a child with only a config
/// change (empty layer) and a grandchild with a new layer and two tags.
fn synthetic() -> Vec<Img> {
    let shared = layer(&[("etc/os-release", b"ID=interop\n")]);
    let b1 = base(
        vec![
            shared.clone(),
            layer(&[("bin/tool", b"#!/bin/sh\necho hi\n")]),
        ],
        1_600_000_000,
        &[("org.example.base", "one")],
        &["interop/base:1"],
    );
    let c1 = child(
        &b1,
        None,
        1_600_000_100,
        &[("org.example.base", "one"), ("stage", "config-only")],
        &[],
    );
    let c2 = child(
        &c1,
        Some(layer(&[("data/big.txt", &[b'x'; 3000][..])])),
        1_600_000_200,
        &[("stage", "top")],
        &["interop/top:1", "interop/top:latest"],
    );
    let b2 = base(vec![shared], 1_500_000_000, &[], &["interop/other:2"]);
    vec![b1, c1, c2, b2]
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let mut c = Command::new(tool("skopeo").unwrap());
    c.arg("--insecure-policy").args(args);
    run_ok(&mut c, None).stdout
}

fn skopeo_json(args: &[&str]) -> Value {
    serde_json::from_slice(&skopeo(args)).unwrap()
}

fn diff_ids(inspect: &Value) -> Vec<String> {
    inspect["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- skopeo

/// What `skopeo inspect docker-archive:` reports for an image strata holds.
fn expected_skopeo_inspect(svc: &ImageService, id: &str, manifest_digest: &str) -> Value {
    let i = inspect(svc, id);
    json!({
        "Digest": manifest_digest,
        "RepoTags": [],
        "Created": i["Created"],
        "DockerVersion": i["DockerVersion"],
        "Labels": i["Config"]["Labels"],
        "Architecture": i["Architecture"],
        "Os": i["Os"],
        "Layers": i["RootFS"]["Layers"],
        "Env": i["Config"]["Env"],
    })
}

/// The layer files of image `id` in a docker-archive: (digest of the bytes
/// after following symlinks, size of the named entry).
fn archive_layers(archive: &[u8], id: &str) -> Vec<(String, u64)> {
    let entry = manifest(archive)
        .into_iter()
        .find(|m| m["Config"] == format!("{}.json", &id[7..]))
        .unwrap_or_else(|| panic!("{id} not in the archive"));
    entry["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut path = l.as_str().unwrap().to_string();
            let mut size = None;
            let mut a = tar::Archive::new(archive);
            for e in a.entries().unwrap() {
                let e = e.unwrap();
                if e.path().unwrap().to_str() == Some(path.as_str()) {
                    // skopeo reports the size of the entry itself: 0 for a
                    // symlink (as for dockerd's own multi-image saves).
                    size = Some(e.header().size().unwrap());
                    if let Some(target) = e.link_name().unwrap() {
                        // `<v1>/layer.tar -> ../<v1'>/layer.tar`
                        let target = target.to_str().unwrap().trim_start_matches("../");
                        path = target.to_string();
                    }
                    break;
                }
            }
            let bytes = tar_file(archive, &path).unwrap_or_else(|| panic!("{path} missing"));
            (sha(&bytes), size.unwrap())
        })
        .collect()
}

/// skopeo's view of one image of an archive (`reference` selects it) agrees
/// with strata: config digest = image ID, config bytes hash to it, layers =
/// DiffIDs with the sizes of the layer files (docker-archive layers are
/// uncompressed), and the fields of `skopeo inspect`.
fn check_skopeo_view(case: &str, svc: &ImageService, archive: &[u8], reference: &str, id: &str) {
    let raw = skopeo(&["inspect", "--raw", reference]);
    let m: Value = serde_json::from_slice(&raw).unwrap();
    let config = skopeo(&["inspect", "--config", "--raw", reference]);
    assert_eq!(sha(&config), id, "{case}: config bytes");
    let files = archive_layers(archive, id);
    let diffs = diff_ids(&inspect(svc, id));
    assert_eq!(
        files.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        diffs,
        "{case}: layer files in strata's archive"
    );
    let layers: Vec<Value> = files
        .iter()
        .map(|(digest, size)| {
            json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": size,
                "digest": digest,
            })
        })
        .collect();
    assert_eq!(
        m,
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config.len(),
                "digest": id,
            },
            "layers": layers,
        }),
        "{case}: manifest"
    );
    let seen = skopeo_json(&["inspect", reference]);
    assert_eq!(
        seen,
        expected_skopeo_inspect(svc, id, &sha(&raw)),
        "{case}: skopeo inspect"
    );
}

#[test]
fn skopeo_reads_strata_single_image_saves() {
    if !have(&["skopeo"], "skopeo interop") {
        return;
    }
    let (_d, svc) = fresh();
    for f in ["chain-tagged.tar", "imported.tar", "committed.tar"] {
        load_fixture(&svc, f);
    }
    let imgs = synthetic();
    load_bytes(
        &svc,
        &common::builder::archive(&imgs.iter().collect::<Vec<_>>()),
    );
    let dir = tempfile::tempdir().unwrap();
    let short = &IMPORTED_ID[7..19];
    let cases: [(&str, &str, String); 6] = [
        ("chain by tag", "dev/chain:1", CHAIN_ID.into()),
        ("chain by full ID", CHAIN_ID, CHAIN_ID.into()),
        ("imported by short ID", short, IMPORTED_ID.into()),
        ("committed by tag", "dev/committed:1", COMMITTED_ID.into()),
        ("synthetic with labels", "interop/top:1", imgs[2].id()),
        ("synthetic shared layer", "interop/other:2", imgs[3].id()),
    ];
    for (case, name, id) in cases {
        let bytes = save(&svc, &[name]);
        assert_eq!(manifest_ids(&bytes), std::slice::from_ref(&id), "{case}");
        let p = dir.path().join("a.tar");
        std::fs::write(&p, &bytes).unwrap();
        check_skopeo_view(
            case,
            &svc,
            &bytes,
            &format!("docker-archive:{}", s(&p)),
            &id,
        );
    }
}

#[test]
fn skopeo_reads_strata_multi_image_save() {
    if !have(&["skopeo"], "skopeo interop") {
        return;
    }
    let (_d, svc) = fresh();
    load_fixture(&svc, "chain-all.tar");
    let mut names: Vec<String> = all_ids(&svc)
        .into_iter()
        .filter(|id| id != CHAIN_ID)
        .collect();
    assert_eq!(names.len(), 5);
    names.insert(0, "dev/chain:1".into());
    let bytes = save(&svc, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let order = manifest_ids(&bytes);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, all_ids(&svc));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("all.tar");
    std::fs::write(&p, &bytes).unwrap();
    for (i, id) in order.iter().enumerate() {
        let r = format!("docker-archive:{}:@{i}", s(&p));
        check_skopeo_view(&format!("chain-all @{i}"), &svc, &bytes, &r, id);
    }
    let by_tag = format!("docker-archive:{}:dev/chain:1", s(&p));
    let m = skopeo_json(&["inspect", "--raw", &by_tag]);
    assert_eq!(m["config"]["digest"], CHAIN_ID);
}

#[test]
fn skopeo_copies_strata_saves_to_oci_and_back() {
    if !have(&["skopeo"], "skopeo interop") {
        return;
    }
    let (_d, svc) = fresh();
    load_fixture(&svc, "chain-tagged.tar");
    load_fixture(&svc, "committed.tar");
    let imgs = synthetic();
    load_bytes(
        &svc,
        &common::builder::archive(&imgs.iter().collect::<Vec<_>>()),
    );
    let dir = tempfile::tempdir().unwrap();
    for (case, name) in [
        ("chain", "dev/chain:1"),
        ("committed", "dev/committed:1"),
        ("synthetic", "interop/top:1"),
    ] {
        let src = inspect(&svc, name);
        let p = dir.path().join(format!("{case}.tar"));
        std::fs::write(&p, save(&svc, &[name])).unwrap();
        let oci = dir.path().join(format!("{case}-oci"));
        skopeo(&[
            "copy",
            "-q",
            &format!("docker-archive:{}", s(&p)),
            &format!("oci:{}:interop", s(&oci)),
        ]);
        let blob = |digest: &str| {
            std::fs::read(oci.join("blobs/sha256").join(&digest[7..]))
                .unwrap_or_else(|e| panic!("{case}: blob {digest}: {e}"))
        };
        let index: Value =
            serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{case}");
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "interop"
        );
        let m: Value =
            serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap()))
                .unwrap();
        let cfg_bytes = blob(m["config"]["digest"].as_str().unwrap());
        assert_eq!(sha(&cfg_bytes), m["config"]["digest"], "{case}");
        let cfg: Value = serde_json::from_slice(&cfg_bytes).unwrap();
        // The OCI config keeps what strata's image says.
        assert_eq!(cfg["rootfs"]["diff_ids"], src["RootFS"]["Layers"], "{case}");
        assert_eq!(cfg["created"], src["Created"], "{case}");
        assert_eq!(cfg["architecture"], src["Architecture"], "{case}");
        assert_eq!(cfg["os"], src["Os"], "{case}");
        for key in ["Env", "Cmd", "Labels"] {
            assert_eq!(cfg["config"][key], src["Config"][key], "{case}: {key}");
        }
        let hist = history(&svc, name);
        assert_eq!(
            cfg["history"].as_array().unwrap().len(),
            hist.as_array().unwrap().len(),
            "{case}"
        );
        // Every layer blob is a compressed copy of the layer strata has.
        let blobs: Vec<String> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| sha(&gunzip(&blob(l["digest"].as_str().unwrap()))))
            .collect();
        assert_eq!(blobs, diff_ids(&src), "{case}");

        // Back: skopeo writes a docker-archive of its own layout; strata loads it.
        let back = dir.path().join(format!("{case}-back.tar"));
        skopeo(&[
            "copy",
            "-q",
            &format!("oci:{}:interop", s(&oci)),
            &format!("docker-archive:{}:interop/rt:{case}", s(&back)),
        ]);
        let (_d2, svc2) = fresh();
        let report = load_bytes(&svc2, &std::fs::read(&back).unwrap());
        assert_eq!(
            report.lines,
            [format!("Loaded image: interop/rt:{case}")],
            "{case}"
        );
        assert_eq!(report.images, [sha(&cfg_bytes)], "{case}");
        let got = inspect(&svc2, &format!("interop/rt:{case}"));
        assert_eq!(got["RootFS"], src["RootFS"], "{case}");
        assert_eq!(got["Size"], src["Size"], "{case}");
        assert_verified(&svc2);
    }
}

// ---------------------------------------------------------------- dockerd

/// Load `archives` one after the other into the (emptied) dockerd and into a
/// fresh strata store; after each, both print the same lines, and at the end
/// both are in the same state: listing (with and without intermediates), and
/// inspect and history of every image. Returns strata's store.
fn same_state_after_loads(
    d: &Dockerd,
    case: &str,
    archives: &[&[u8]],
) -> (tempfile::TempDir, ImageService) {
    d.reset();
    let (dir, svc) = fresh();
    for (i, archive) in archives.iter().enumerate() {
        let p = d.file("in.tar", archive);
        let out = d.docker(&["load", "-q", "-i", s(&p)]);
        let report = load_bytes(&svc, archive);
        assert_eq!(lines(&out), report.lines, "{case}: load #{i} output");
    }
    let ids = all_ids(&svc);
    assert!(!ids.is_empty(), "{case}");
    assert_eq!(d.all_ids(), ids, "{case}: image IDs");
    assert_eq!(
        sorted_by_id(d.get("/images/json?all=1")),
        listing(&svc, true),
        "{case}: images -a"
    );
    assert_eq!(
        sorted_by_id(d.get("/images/json")),
        listing(&svc, false),
        "{case}: images"
    );
    for id in &ids {
        assert_eq!(
            comparable(d.get(&format!("/images/{id}/json"))),
            comparable(inspect(&svc, id)),
            "{case}: inspect {id}"
        );
        assert_eq!(
            d.get(&format!("/images/{id}/history")),
            history(&svc, id),
            "{case}: history {id}"
        );
    }
    assert_verified(&svc);
    (dir, svc)
}

fn same_state_after_load(
    d: &Dockerd,
    case: &str,
    archive: &[u8],
) -> (tempfile::TempDir, ImageService) {
    same_state_after_loads(d, case, &[archive])
}

/// After a strata save of everything `src` holds, dockerd has what `src` has.
fn same_as_source(case: &str, src: &ImageService, loaded: &ImageService) {
    assert_eq!(all_ids(loaded), all_ids(src), "{case}: IDs");
    assert_eq!(listing(loaded, true), listing(src, true), "{case}: listing");
    for id in all_ids(src) {
        assert_eq!(
            comparable(inspect(loaded, &id)),
            comparable(inspect(src, &id)),
            "{case}: inspect {id}"
        );
        assert_eq!(history(loaded, &id), history(src, &id), "{case}: {id}");
    }
}

#[test]
fn dockerd_loads_strata_saves() {
    let Some((_lock, d)) = dockerd::session("dockerd interop (strata -> dockerd)") else {
        return;
    };
    let imgs = synthetic();
    let refs: Vec<&Img> = imgs.iter().collect();

    // chain-tagged, re-saved by strata under a second tag too.
    let (_a, svc) = fresh();
    load_fixture(&svc, "chain-tagged.tar");
    block_on(svc.tag_image("dev/chain:1", "interop/chain", "resaved")).unwrap();
    let bytes = save(&svc, &["dev/chain:1", "interop/chain:resaved"]);
    let (_x, got) = same_state_after_load(d, "chain-tagged re-saved", &bytes);
    same_as_source("chain-tagged re-saved", &svc, &got);
    assert_eq!(
        d.get(&format!("/images/{CHAIN_ID}/json"))["RepoTags"],
        json!(["dev/chain:1", "interop/chain:resaved"])
    );

    // The same image saved by ID: no tags in the archive.
    let bytes = save(&svc, &[CHAIN_ID]);
    let (_x, got) = same_state_after_load(d, "chain by ID", &bytes);
    assert_eq!(all_ids(&got), [CHAIN_ID]);
    let theirs = d.get(&format!("/images/{CHAIN_ID}/json"));
    assert_eq!(theirs["RepoTags"], json!([]));
    assert_eq!(theirs["RootFS"], inspect(&svc, CHAIN_ID)["RootFS"]);

    // chain-all: six images in one archive, parents carried.
    let (_b, svc) = fresh();
    load_fixture(&svc, "chain-all.tar");
    let mut names: Vec<String> = all_ids(&svc)
        .into_iter()
        .filter(|id| id != CHAIN_ID)
        .collect();
    names.push("dev/chain:1".into());
    let bytes = save(&svc, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let (_x, got) = same_state_after_load(d, "chain-all", &bytes);
    same_as_source("chain-all", &svc, &got);
    assert_eq!(d.all_ids().len(), 6);
    let mut parent = d.get(&format!("/images/{CHAIN_ID}/json"))["Parent"].clone();
    let mut depth = 0;
    while parent != "" {
        depth += 1;
        parent = d.get(&format!("/images/{}/json", parent.as_str().unwrap()))["Parent"].clone();
    }
    assert_eq!(depth, 5, "dockerd's parent chain of dev/chain:1");

    // Synthetic images from tests/common/builder.rs, saved by tags and ID.
    let (_c, svc) = fresh();
    load_bytes(&svc, &common::builder::archive(&refs));
    let bytes = save(
        &svc,
        &[
            "interop/base:1",
            &imgs[1].id(),
            "interop/top",
            "interop/other:2",
        ],
    );
    let (_x, got) = same_state_after_load(d, "synthetic", &bytes);
    same_as_source("synthetic", &svc, &got);
    assert_eq!(
        d.get(&format!("/images/{}/json", imgs[2].id()))["Parent"],
        imgs[1].id()
    );

    // gzip-compressed layer blobs: loaded directly by both, and re-saved by strata.
    let gz = archive_gz(&refs);
    let (_y, svc) = same_state_after_load(d, "gzip layers", &gz);
    let bytes = save(
        &svc,
        &[
            "interop/base:1",
            &imgs[1].id(),
            "interop/top",
            "interop/other:2",
        ],
    );
    let (_x, got) = same_state_after_load(d, "gzip layers re-saved", &bytes);
    same_as_source("gzip layers re-saved", &svc, &got);

    // The whole archive compressed, as `docker load` accepts it.
    let plain = common::builder::archive(&refs);
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    for (case, bytes) in [
        ("gzip archive", gzip(&plain)),
        ("bzip2 archive", bz),
        ("xz archive", xz),
    ] {
        same_state_after_load(d, case, &bytes);
    }

    // A tag that moves to another image on a later load (dockerd prints a
    // rename notice), and an image loaded twice.
    let mut first = imgs[3].clone();
    first.tags = vec!["interop/moving:1".into()];
    let mut second = imgs[0].clone();
    second.tags = vec!["interop/moving:1".into(), "interop/stays:1".into()];
    let a1 = common::builder::archive(&[&first]);
    let a2 = common::builder::archive(&[&second]);
    let a3 = common::builder::archive(&[&first]);
    same_state_after_loads(d, "tag moves between loads", &[&a1, &a2, &a2, &a3]);

    // An archive skopeo wrote (its own layout, symlinked layers, docker.io/ tags).
    if have(&["skopeo"], "skopeo-written archive into dockerd") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("src.tar");
        std::fs::write(&p, read_fixture("chain-tagged.tar")).unwrap();
        let oci = dir.path().join("oci");
        let back = dir.path().join("back.tar");
        skopeo(&[
            "copy",
            "-q",
            &format!("docker-archive:{}", s(&p)),
            &format!("oci:{}:x", s(&oci)),
        ]);
        skopeo(&[
            "copy",
            "-q",
            &format!("oci:{}:x", s(&oci)),
            &format!("docker-archive:{}:interop/skopeo:1", s(&back)),
        ]);
        same_state_after_load(d, "skopeo-written", &std::fs::read(&back).unwrap());
    }
}

/// A rootfs tarball for `docker import` (fixed bytes).
fn rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("etc/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        0o644,
        b"root:x:0:0::/:/bin/hi\n",
        None,
    );
    add("bin/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "bin/hi",
        tar::EntryType::Regular,
        0o755,
        b"#!/bin/hi\nhello\n",
        None,
    );
    add(
        "hello.txt",
        tar::EntryType::Regular,
        0o644,
        b"hello, interop\n",
        None,
    );
    add(
        "link.txt",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("hello.txt"),
    );
    b.into_inner().unwrap()
}

/// A build context: the rootfs files plus the Dockerfiles.
fn build_context() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let files: [(&str, &[u8], u32); 5] = [
        (
            "Dockerfile",
            b"FROM scratch\nCOPY etc /etc\nLABEL org.example.interop=built\nCOPY hi /bin/hi\nENV PATH=/bin GREETING=interop\nCMD [\"/bin/hi\"]\n",
            0o644,
        ),
        (
            "Dockerfile.child",
            b"FROM interop/imp:2\nCOPY hello.txt /added.txt\nLABEL stage=two\n",
            0o644,
        ),
        ("etc/passwd", b"root:x:0:0::/:/bin/hi\n", 0o644),
        ("hi", b"#!/bin/hi\nhello\n", 0o755),
        ("hello.txt", b"hello again\n", 0o644),
    ];
    for (name, data, mode) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// IDs from `top` down its Parent chain in dockerd.
fn chain(d: &Dockerd, top: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut id = d.get(&format!("/images/{top}/json"))["Id"]
        .as_str()
        .unwrap()
        .to_string();
    loop {
        out.push(id.clone());
        let p = d.get(&format!("/images/{id}/json"))["Parent"]
            .as_str()
            .unwrap()
            .to_string();
        if p.is_empty() {
            return out;
        }
        id = p;
    }
}

/// What dockerd said about an image before the store was emptied.
struct Seen {
    inspect: Value,
    history: Value,
}

#[test]
fn strata_loads_dockerd_saves() {
    let Some((_lock, d)) = dockerd::session("dockerd interop (dockerd -> strata)") else {
        return;
    };
    // Make images the ways dockerd makes them without running anything.
    let root = d.file("rootfs.tar", &rootfs());
    d.docker(&["import", s(&root), "interop/imp:1"]);
    d.docker(&[
        "import",
        "-m",
        "imported by interop",
        "-c",
        "ENV A=1 B=two",
        "-c",
        r#"CMD ["/bin/hi"]"#,
        "-c",
        r#"ENTRYPOINT ["/bin/hi", "-x"]"#,
        "-c",
        "LABEL k=v other=label",
        "-c",
        "WORKDIR /w",
        "-c",
        "USER 1:1",
        "-c",
        "EXPOSE 8080/tcp",
        "-c",
        "VOLUME /data",
        s(&root),
        "interop/imp:2",
    ]);
    d.docker(&["tag", "interop/imp:1", "interop/imp:extra"]);
    let ctx = build_context();
    d.docker_stdin(&["build", "-q", "-t", "interop/built:1", "-"], &ctx);
    d.docker_stdin(
        &[
            "build",
            "-q",
            "-f",
            "Dockerfile.child",
            "-t",
            "interop/child:1",
            "-",
        ],
        &ctx,
    );
    let built = chain(d, "interop/built:1");
    assert_eq!(built.len(), 5, "legacy builder: one image per step");
    let child_chain = chain(d, "interop/child:1");
    assert_eq!(child_chain.len(), 3, "two steps on top of interop/imp:2");
    let id_of = |name: &str| {
        d.get(&format!("/images/{name}/json"))["Id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let imp2 = id_of("interop/imp:2");
    assert_eq!(child_chain[2], imp2);

    // Everything dockerd says about its images, before saving.
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for id in d.all_ids() {
        seen.insert(
            id.clone(),
            Seen {
                inspect: d.get(&format!("/images/{id}/json")),
                history: d.get(&format!("/images/{id}/history")),
            },
        );
    }
    assert_eq!(seen.len(), 2 + 5 + 2);

    // (case, names to save, whether the archive holds the whole chain and every tag)
    let mut built_names: Vec<String> = built[1..].to_vec();
    built_names.push("interop/built:1".into());
    let mut child_names: Vec<String> = vec![child_chain[1].clone()];
    child_names.extend(["interop/child:1".to_string(), "interop/imp:2".to_string()]);
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        ("imported, by tag", vec!["interop/imp:1".into()], false),
        (
            "imported with --change",
            vec!["interop/imp:2".into()],
            false,
        ),
        ("by ID", vec![imp2.clone()], false),
        ("repository, three tags", vec!["interop/imp".into()], false),
        ("built top alone", vec!["interop/built:1".into()], false),
        ("built chain, all five", built_names, true),
        ("built on an imported base", child_names, true),
    ];
    let mut saved = Vec::new();
    for (case, names, complete) in cases {
        let mut args = vec!["save"];
        args.extend(names.iter().map(String::as_str));
        saved.push((case, names.clone(), complete, d.docker_bytes(&args)));
    }

    for (case, names, complete, bytes) in &saved {
        let (case, complete) = (*case, *complete);
        // strata loads dockerd's archive as dockerd itself loads it ...
        let (_x, svc) = same_state_after_load(d, case, bytes);
        // ... with the IDs and the JSON the source daemon had.
        let in_archive = manifest_ids(bytes);
        let mut ids = in_archive.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(all_ids(&svc), ids, "{case}");
        for m in manifest(bytes) {
            let id = format!(
                "sha256:{}",
                m["Config"].as_str().unwrap().trim_end_matches(".json")
            );
            let src = &seen[&id];
            let mut want = comparable(src.inspect.clone());
            if !complete {
                let carried = m["RepoTags"].as_array().cloned().unwrap_or_default();
                let kept: Vec<Value> = want["RepoTags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|t| carried.contains(t))
                    .cloned()
                    .collect();
                assert_eq!(kept.len(), carried.len(), "{case}: tags of {id}");
                want["RepoTags"] = kept.into();
                if !in_archive.contains(&want["Parent"].as_str().unwrap().to_string()) {
                    want["Parent"] = "".into();
                }
            }
            assert_eq!(comparable(inspect(&svc, &id)), want, "{case}: {id}");
            if complete {
                assert_eq!(history(&svc, &id), src.history, "{case}: history {id}");
            }
        }
        // A single-image save by strata is byte for byte dockerd's.
        if names.len() == 1 && !names[0].ends_with("/imp") {
            assert!(
                save(&svc, &[names[0].as_str()]) == *bytes,
                "{case}: strata's save of {} differs from dockerd's",
                names[0]
            );
        }
    }
}
