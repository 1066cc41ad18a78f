//! Writes the seed corpora under `corpus/<target>/`:
//! `cd fuzz && cargo run --example gen_seeds`. Existing files of the same
//! name are overwritten; seeds are named by content hash, so rerunning adds
//! nothing twice (event seeds change with the wall time and user of the
//! run that made them).
//!
//! Sources: the dockerd 20.10 fixtures in `tests/fixtures/dockerd/`,
//! synthetic archives from `tests/common/builder.rs`, references and filter
//! JSONs from the spec tables (references.md §2–§7, delete-prune-filters.md
//! §3), and events encoded from a real store.

use sha2::{Digest, Sha256};
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use strata_fuzz::builder::{archive, base, child, layer};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/dockerd")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn put(target: &str, label: &str, data: &[u8]) {
    let dir = corpus(target);
    std::fs::create_dir_all(&dir).unwrap();
    let h = hex::encode(Sha256::digest(data));
    std::fs::write(dir.join(format!("{label}-{}", &h[..16])), data).unwrap();
}

/// Entries of a tar (name, bytes).
fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut a = tar::Archive::new(Cursor::new(bytes));
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// A raw tar, header by header, so names the `tar` crate refuses can be written.
fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, flag, link, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = *flag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn references() {
    let hex64 = "a".repeat(64);
    let spec: Vec<String> = vec![
        // references.md §2 grammar and digest errors
        format!("x@sha256:{}", "A".repeat(64)),
        format!("x@md5:{}", "a".repeat(32)),
        format!("x@sha256:{}", "a".repeat(63)),
        format!("x@sha512:{}", "a".repeat(32)),
        "x@sha256:abc".into(),
        // §4 normalisation table
        "busybox".into(),
        "library/busybox".into(),
        "docker.io/busybox".into(),
        "index.docker.io/library/busybox:1".into(),
        "user/app".into(),
        "docker.io/library/foo/bar".into(),
        "localhost/foo".into(),
        "localhost:5000/foo:v1".into(),
        "foo:5000/bar".into(),
        "Docker.io/x".into(),
        "FOO.com/bar".into(),
        "foo:TAG".into(),
        "FOO/bar".into(),
        "Foo".into(),
        "sha256:abc".into(),
        "a:b:c".into(),
        ":tag".into(),
        "-a".into(),
        "a..b".into(),
        "".into(),
        // §5 lookups and §7 tag route
        "nonexist".into(),
        "sha256:6".into(),
        "aaaaaaaaaaaa".into(),
        "0".repeat(64),
        format!("sha384:{}", "0".repeat(64)),
        "6A".into(),
        "sha256:".into(),
        format!("127.0.0.1:5733/t/img:2@sha256:{hex64}"),
        hex64.clone(),
        "a".repeat(238),
        format!("x:{}", "t".repeat(129)),
        format!("sha256:{hex64}"),
        format!("foo@sha256:{hex64}"),
        format!("foo:bar@sha256:{hex64}"),
        "docker.io/foo.com/bar".into(),
        format!("library/{hex64}"),
        "[::1]:5000/foo:bar".into(),
        "a/b/c/d_e__f-g.h:tag_1.2-3".into(),
    ];
    for s in &spec {
        put("reference", "spec", s.as_bytes());
    }
    put("reference", "lines", spec[5..20].join("\n").as_bytes());
}

fn filters() {
    let hex64 = "b".repeat(64);
    let spec: Vec<String> = vec![
        r#"{"dangling":["true"]}"#.into(),
        r#"{"dangling":{"true":true}}"#.into(),
        r#"{"dangling":{"false":true}}"#.into(),
        r#"{"dangling":{"true":false}}"#.into(),
        r#"{"dangling":["0"]}"#.into(),
        r#"{"label":["x"]}"#.into(),
        r#"{"label!":["a"]}"#.into(),
        r#"{"label":{"k=v":true},"label!":{"x":true}}"#.into(),
        r#"{"reference":{"busybox":true}}"#.into(),
        r#"{"reference":{"dev/*:1":true,"busy[a-c]ox":true}}"#.into(),
        r#"{"reference":["*"]}"#.into(),
        r#"{"until":{"10m":true}}"#.into(),
        r#"{"until":["2020-13-01"]}"#.into(),
        r#"{"until":{"1.5h":true,"0":true}}"#.into(),
        r#"{"until":null}"#.into(),
        r#"{"until":["2006-01-02T15:04:05.999999999Z"]}"#.into(),
        r#"{"until":["2006-01-02T15:04+07:00"]}"#.into(),
        r#"{"until":["1600000000.5"]}"#.into(),
        r#"{"before":{"busybox:latest":true},"since":{"sha256:1":true}}"#.into(),
        format!(r#"{{"reference":{{"sha256:{hex64}":true}}}}"#),
        r#"{"dangling":{"true":true}"#.into(),
        r#"nul"#.into(),
        r#"{"k":1}"#.into(),
        r#"[]"#.into(),
        r#"{"a\u00e9":{"\ud800":true}}"#.into(),
        "".into(),
    ];
    for s in &spec {
        put("filters", "spec", s.as_bytes());
    }
    let extras = [
        "{\"reference\":{\"dev/chain:*\":true}}\0dev/chain:1\ndev/chain/x:1\n[\n\\",
        "{\"until\":{\"-1h\":true}}\010m\n2020-01-02T03\n2020-01-02T03:04:05Z\n0\nxyz",
        "\0a[\na*b?\n[^a-c]\n\\*",
    ];
    for s in extras {
        put("filters", "extra", s.as_bytes());
    }
}

fn events() {
    let dir = tempfile::tempdir().unwrap();
    let svc = strata::ImageService::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        svc.load_image(Cursor::new(fixture("chain-tagged.tar")), true)
            .await
            .unwrap();
        svc.load_image(Cursor::new(fixture("committed.tar")), true)
            .await
            .unwrap();
        svc.tag_image("dev/chain:1", "dev/chain", "2")
            .await
            .unwrap();
        let c = svc
            .create_container("dev/chain:1", Some("c1"))
            .await
            .unwrap();
        svc.remove_container(&c).await.unwrap();
        svc.image_delete("dev/chain:2", false, true).await.unwrap();
        svc.image_delete("dev/committed:1", true, true)
            .await
            .unwrap();
        svc.gc(false).await.unwrap();
    });
    let head = svc.store().head().unwrap();
    let envs = svc.store().events(1, head.next_seq - 1).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for env in envs {
        let n = seen.entry(env.body.kind()).or_insert(0);
        *n += 1;
        if *n > 2 {
            continue;
        }
        put("envelope", env.body.kind(), &env.encode().unwrap());
    }
}

fn archives_and_layers() {
    // dockerd 20.10's own archives.
    for name in ["chain-tagged.tar", "imported.tar", "committed.tar"] {
        put("load_archive", "dockerd", &fixture(name));
    }
    put("scan_tar", "dockerd-rootfs", &fixture("rootfs.tar"));
    for (name, data) in tar_entries(&fixture("chain-tagged.tar")) {
        if name.ends_with(".json") && name != "manifest.json" {
            put("image_config", "dockerd", &data);
            put("go_json", "dockerd-config", &data);
        } else if name == "manifest.json" || name == "repositories" {
            put("go_json", "dockerd-manifest", &data);
        } else if name.ends_with("layer.tar") {
            put("scan_tar", "dockerd-layer", &data);
        }
    }
    for name in ["imported.tar", "committed.tar"] {
        for (entry, data) in tar_entries(&fixture(name)) {
            if entry.ends_with(".json") && entry != "manifest.json" {
                put("image_config", "dockerd", &data);
            }
        }
    }
    // Synthetic images.
    let l1 = layer(&[("etc/hostname", b"box\n")]);
    let l2 = layer(&[("a/b.txt", b"bb"), ("a/c.txt", b"")]);
    let a = base(vec![l1.clone()], 1_600_000_000, &[("k", "v")], &["syn/a:1"]);
    let b = child(
        &a,
        Some(l2.clone()),
        1_600_000_100,
        &[],
        &["syn/b:1", "syn/b:2"],
    );
    let c = child(&a, None, 1_600_000_200, &[], &[]);
    put("load_archive", "syn-one", &archive(&[&a]));
    put("load_archive", "syn-chain", &archive(&[&a, &b, &c]));
    put("load_archive", "syn-gz", &gzip(&archive(&[&a])));
    put("image_config", "syn", &a.config);
    put("image_config", "syn", &b.config);
    put("image_config", "syn", &c.config);
    put("scan_tar", "syn", &l1);
    put("scan_tar", "syn", &l2);
    put("scan_tar", "syn-empty", &layer(&[]));
    // Hostile layers and archives (names the tar crate refuses).
    let escaping = raw_tar(&[("../etc/passwd", b'0', "", b"x")]);
    let hardlink = raw_tar(&[("a", b'0', "", b"x"), ("b", b'1', "../../a", b"")]);
    let symlink = raw_tar(&[("s", b'2', "/etc", b""), ("s/x", b'0', "", b"y")]);
    let fine = raw_tar(&[("a/../b", b'0', "", b"z"), ("./c", b'5', "", b"")]);
    for (label, t) in [
        ("escape", &escaping),
        ("hardlink", &hardlink),
        ("symlink", &symlink),
        ("dotdot-inside", &fine),
    ] {
        put("scan_tar", label, t);
    }
    let cfg = base(vec![escaping.clone()], 1_600_000_000, &[], &["bad:1"]);
    put("load_archive", "escape-layer", &archive(&[&cfg]));
    let manifest = br#"[{"Config":"../cfg.json","RepoTags":["bad:1"],"Layers":["/etc/passwd"]}]"#;
    put(
        "load_archive",
        "escape-manifest",
        &raw_tar(&[("manifest.json", b'0', "", manifest)]),
    );
    put(
        "load_archive",
        "symlink-manifest",
        &raw_tar(&[("manifest.json", b'2', "/etc/passwd", b"")]),
    );
    put(
        "load_archive",
        "empty-manifest",
        &raw_tar(&[("manifest.json", b'0', "", b"[]")]),
    );
    let whole = archive(&[&a]);
    put("load_archive", "truncated", &whole[..whole.len() / 2]);
}

fn json() {
    let docs: &[&str] = &[
        "{}",
        "null",
        " [1, -0.5e+3, \"\\u00e9\\n\", true, false, null] ",
        r#"{"a":{"b":[{"c":"\ud83d\ude00"}]}}"#,
        "\"\\ud800\"",
        "[1,]",
        "01",
        "{\"a\" 1}",
        "\"\u{7f}\"",
        r#"{"rootfs":{"type":"layers","diff_ids":[]},"history":[{"empty_layer":true}]}"#,
        r#"{"RootFS":{"Type":"layers"},"Config":{"Cmd":"sh","Entrypoint":["a"]},"created":"2020-01-01T00:00:00.5+01:00"}"#,
        r#"{"rootfs":{"type":"layers","diff_ids":["sha256:x"]},"created":"0001-01-01T00:00:00Z","os.version":"1","os.features":["f"],"id":"i","parent":"p","Size":5}"#,
    ];
    for d in docs {
        put("go_json", "doc", d.as_bytes());
        put("image_config", "doc", d.as_bytes());
    }
}

/// Pseudo-random op streams for the model target (fixed seed).
fn model() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [16usize, 48, 96, 160, 256] {
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x as u8);
        }
        put("store_model", "random", &bytes);
    }
    // All-zero bytes: the first variant (load) over and over; all-ones: the last.
    put("store_model", "zeros", &[0u8; 64]);
    put("store_model", "ones", &[0xffu8; 64]);
}

fn main() {
    references();
    filters();
    events();
    archives_and_layers();
    json();
    model();
    for (name, _) in strata_fuzz::TARGETS {
        let n = std::fs::read_dir(corpus(name))
            .map(|d| d.count())
            .unwrap_or(0);
        println!("corpus/{name}: {n} files");
    }
}
