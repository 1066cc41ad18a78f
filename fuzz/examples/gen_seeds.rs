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
        "{\"until\":{\"-1h\":true}}\x0010m\n2020-01-02T03\n2020-01-02T03:04:05Z\n0\nxyz",
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

/// Registry answers: challenges (live registry 2.8 and Docker Hub forms),
/// manifests and indexes written by skopeo and strata, token and error
/// bodies (distribution.md §3, §9). Input format: body, NUL, header lines.
fn registry() {
    let challenges = [
        r#"Bearer realm="http://127.0.0.1:5059/token",service="fmt-registry""#,
        r#"Bearer realm="http://127.0.0.1:5059/token",service="fmt-registry",scope="repository:test:pull""#,
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        r#"Bearer realm="https://r/token",error="insufficient_scope",error_description="need \"push\" \\ access""#,
        r#"Basic realm="Registry Realm""#,
        "BASIC realm=unquoted, charset=UTF-8",
    ];
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("ping", b"{}".to_vec()),
        (
            "unauthorized",
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#.to_vec(),
        ),
        (
            "blob-unknown",
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:0123"}]}"#.to_vec(),
        ),
        (
            "manifest-unknown",
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nonexist"}}]}"#.to_vec(),
        ),
        (
            "errors-2",
            br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"},{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#.to_vec(),
        ),
        ("details", br#"{"details":"incorrect username or password"}"#.to_vec()),
        ("errors-empty", br#"{"errors":[]}"#.to_vec()),
        (
            "token",
            br#"{"token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","access_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","expires_in":300,"issued_at":"2026-11-28T21:00:00.123456789Z"}"#.to_vec(),
        ),
        (
            "token-refresh",
            br#"{"access_token":"a","refresh_token":"r","expires_in":30,"scope":"repository:test:pull"}"#.to_vec(),
        ),
    ];
    for (label, body) in &bodies {
        put("registry_response", label, body);
    }
    for (i, c) in challenges.iter().enumerate() {
        let mut data = bodies[i % bodies.len()].1.clone();
        data.push(0);
        data.extend_from_slice(c.as_bytes());
        put("registry_response", "challenge", &data);
    }
    // A multi-platform index (the shape of Docker Hub's busybox list, with
    // the digests of the dockerd fixture's manifest).
    let d = |n: u8| format!("sha256:{}", hex::encode([n; 32]));
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": d(1), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": d(2), "platform": {"architecture": "arm", "os": "linux", "variant": "v5"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": d(3), "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": d(4), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528, "digest": d(5), "platform": {"architecture": "386", "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 527, "digest": d(6), "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1"}}
        ]
    });
    put("registry_response", "list", list.to_string().as_bytes());
    let mut arm_only = list.clone();
    arm_only["manifests"] = serde_json::json!([list["manifests"][1]]);
    let mut data = arm_only.to_string().into_bytes();
    data.extend_from_slice(b"\0linux/arm/v7\nlinux/ARMHF");
    put("registry_response", "list-arm", &data);
    // Manifests and indexes as skopeo and strata write them.
    for (label, layout) in oci_layouts() {
        for (name, data) in tar_entries(&layout) {
            if name == "index.json" || (name.starts_with("blobs/") && data.first() == Some(&b'{')) {
                let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
                if v.get("manifests").is_some() || v.get("layers").is_some() {
                    put("registry_response", &format!("{label}-manifest"), &data);
                }
            }
        }
    }
}

/// Engine API requests the docker 20.10 CLI sends (engine-api.md, live
/// captures): request line, then headers.
fn engine() {
    let auth = "eyJ1c2VybmFtZSI6ImZtdHVzZXIiLCJwYXNzd29yZCI6ImZtdHBhc3MiLCJzZXJ2ZXJhZGRyZXNzIjoiMTI3LjAuMC4xOjUwNTkifQ==";
    let requests = [
        "GET /_ping".to_string(),
        "HEAD /_ping".into(),
        "GET /v1.41/version".into(),
        "GET /v1.11/info".into(),
        "GET /v1.99/info".into(),
        "GET /v1.41/images/json?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D&all=1".into(),
        "GET /v1.40/images/json?filter=busybox&filters=%7B%22reference%22%3A%5B%22dev%2F*%22%5D%7D".into(),
        "GET /v1.41/images/get?names=small%3A1&names=base%3A1".into(),
        "GET /v1.41/images/127.0.0.1:5055/test:1/json".into(),
        "GET /v1.41/images/dev%2Fchain:1/history".into(),
        "DELETE /v1.41/images/dev/chain:1?force=1&noprune=1".into(),
        "DELETE /v1.41/containers/c1?force=1".into(),
        "POST /v1.41/images/dev/chain:1/tag?repo=dev%2Fchain&tag=2".into(),
        "POST /v1.41/images/prune?filters=%7B%22until%22%3A%7B%2224h%22%3Atrue%7D%7D".into(),
        "POST /v1.41/images/load?quiet=1".into(),
        "POST /v1.41/images/create?changes=CMD+%5B%22%2Fbin%2Fsh%22%5D&fromSrc=-&message=my+msg&repo=base%3A1&tag=".into(),
        "POST /v1.41/images/create?fromSrc=-&repo=imp28%3A1&platform=linux%2Farm64&changes=ENV+A%3Db&changes=EXPOSE+80%2Ftcp&changes=LABEL+x%3Dy".into(),
        format!("POST /v1.41/images/create?fromImage=busybox&tag=latest&platform=linux%2Farm%2Fv7\nX-Registry-Auth: {auth}"),
        "POST /v1.41/images/create?fromImage=127.0.0.1%3A5055%2Ftest&tag=sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nX-Registry-Auth: e30=".into(),
        format!("POST /v1.41/images/127.0.0.1:5055/test/push?tag=v1\nX-Registry-Auth: {auth}"),
        "POST /v1.41/commit?container=c1&repo=dev%2Fc&tag=1&author=me&comment=x&changes=WORKDIR+%2Fsrv&changes=USER+nobody&changes=HEALTHCHECK+--interval%3D5s+CMD+true".into(),
        "HEAD /v1.41/containers/c1/archive?path=%2Fetc%2Fhostname".into(),
        "PUT /v1.41/containers/c1/archive?path=%2F&noOverwriteDirNonDir=true".into(),
        "GET /v1.41/containers/c1/export".into(),
        "GET /v1.41/images/search?term=busybox&limit=5".into(),
        "POST /v1.41/auth\nContent-Type: application/json".into(),
        "OPTIONS /v1.41/images/json".into(),
        "GET /v1.41/images/a%2b%zz%2/json?x=%+1&y=a;b=c".into(),
    ];
    for r in requests {
        put("engine_request", "cli", r.as_bytes());
    }
}

/// OCI layouts: strata's own `save --format oci` (export_oci) of the
/// dockerd fixtures, skopeo's `oci-archive` copies of them (gzip, its
/// default, and zstd) and an image umoci made, each a tar.
fn oci_layouts() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for name in ["chain-tagged.tar", "imported.tar"] {
        let dir = tempfile::tempdir().unwrap();
        let svc = strata::ImageService::open(dir.path()).unwrap();
        let bytes = rt.block_on(async {
            let r = svc
                .load_image(Cursor::new(fixture(name)), true)
                .await
                .unwrap();
            let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            struct W(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
            impl Write for W {
                fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                    self.0.lock().unwrap().extend_from_slice(b);
                    Ok(b.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            svc.export_oci(r.images.clone(), W(buf.clone()))
                .await
                .unwrap();
            std::mem::take(&mut *buf.lock().unwrap())
        });
        out.push(("strata".to_string(), bytes));
    }
    let fixture_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dockerd/chain-tagged.tar");
    let work = tempfile::tempdir().unwrap();
    let run = |cmd: &mut std::process::Command| -> bool {
        match cmd.output() {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                eprintln!("{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
                false
            }
            Err(e) => {
                eprintln!("note: {cmd:?} not run: {e}");
                false
            }
        }
    };
    for (label, extra) in [
        ("skopeo", &[][..]),
        (
            "skopeo-zstd",
            &["--dest-compress", "--dest-compress-format", "zstd"][..],
        ),
    ] {
        let dest = work.path().join(format!("{label}.tar"));
        if run(std::process::Command::new("skopeo")
            .args(["copy", "-q"])
            .args(extra)
            .arg(format!("docker-archive:{}", fixture_path.display()))
            .arg(format!("oci-archive:{}:dev/chain:1", dest.display())))
        {
            out.push((label.to_string(), std::fs::read(&dest).unwrap()));
        }
    }
    // umoci: a new image plus one inserted file, as a layout tar.
    let layout = work.path().join("umoci");
    let src = work.path().join("hello.txt");
    std::fs::write(&src, b"from umoci\n").unwrap();
    let ok = run(std::process::Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout))
        && run(std::process::Command::new("umoci")
            .args(["new", "--image"])
            .arg(format!("{}:u1", layout.display())))
        && run(std::process::Command::new("umoci")
            .args(["insert", "--image"])
            .arg(format!("{}:u1", layout.display()))
            .arg(&src)
            .arg("/hello.txt"));
    if ok {
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all(".", &layout).unwrap();
        out.push(("umoci".to_string(), b.into_inner().unwrap()));
    }
    out
}

fn oci() {
    for (label, bytes) in oci_layouts() {
        put("oci_layout", &label, &bytes);
    }
    let whole = oci_layouts().remove(0).1;
    put("oci_layout", "truncated", &whole[..whole.len() / 2]);
    put(
        "oci_layout",
        "bad-version",
        &raw_tar(&[
            ("oci-layout", b'0', "", br#"{"imageLayoutVersion":"2.0.0"}"#),
            (
                "index.json",
                b'0',
                "",
                br#"{"schemaVersion":2,"manifests":[]}"#,
            ),
        ]),
    );
}

/// Layers for `layer_apply`: whiteouts, opaque markers, hardlinks and
/// symlinks, aimed at the lower tree the target builds (a/b.txt,
/// a/sub/c.txt, a/sub/deep/d.txt, e.txt, dir/x, abs -> /a, rel -> a/sub,
/// up -> /) and, through absolute links, at the target's base directory.
fn layers() {
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    for base in strata_fuzz::APPLY_BASES {
        let evil_base = format!("up{base}/evil");
        seeds.push((
            "symlink-base",
            raw_tar(&[("l", b'2', base, b""), ("l/evil", b'0', "", b"x")]),
        ));
        seeds.push((
            "symlink-root",
            raw_tar(&[(evil_base.as_str(), b'0', "", b"x")]),
        ));
    }
    seeds.extend(vec![
        (
            "whiteout",
            raw_tar(&[("a/.wh.b.txt", b'0', "", b""), ("a/.wh.sub", b'0', "", b"")]),
        ),
        (
            "whiteout-readd",
            raw_tar(&[
                ("a/.wh.b.txt", b'0', "", b""),
                ("a/b.txt", b'0', "", b"new"),
            ]),
        ),
        (
            "opaque",
            raw_tar(&[
                ("a/", b'5', "", b""),
                ("a/.wh..wh..opq", b'0', "", b""),
                ("a/new", b'0', "", b"n"),
            ]),
        ),
        (
            "opaque-after",
            raw_tar(&[
                ("a/sub/deep/n", b'0', "", b"n"),
                ("a/.wh..wh..opq", b'0', "", b""),
            ]),
        ),
        (
            "opaque-root",
            raw_tar(&[(".wh..wh..opq", b'0', "", b""), ("top", b'0', "", b"t")]),
        ),
        (
            "aufs-meta",
            raw_tar(&[
                (".wh..wh.plnk/1.2", b'0', "", b"x"),
                (".wh..wh.aufs", b'0', "", b""),
            ]),
        ),
        (
            "hardlink",
            raw_tar(&[("h", b'1', "e.txt", b""), ("a/h2", b'1', "a/b.txt", b"")]),
        ),
        ("hardlink-escape", raw_tar(&[("h", b'1', "../e.txt", b"")])),
        ("hardlink-abs", raw_tar(&[("h", b'1', "/e.txt", b"")])),
        (
            "symlink-into",
            raw_tar(&[("l", b'2', "a/sub", b""), ("l/new.txt", b'0', "", b"x")]),
        ),
        ("symlink-up", raw_tar(&[("l", b'2', "../../etc", b"")])),
        (
            "symlink-abs-lower",
            raw_tar(&[
                ("abs/new", b'0', "", b"x"),
                ("abs/.wh.b.txt", b'0', "", b""),
            ]),
        ),
        (
            "symlink-rel-lower",
            raw_tar(&[
                ("rel/.wh..wh..opq", b'0', "", b""),
                ("rel/x", b'0', "", b"x"),
            ]),
        ),
        (
            "replace-dir",
            raw_tar(&[("a", b'0', "", b"file now"), ("dir", b'2', "/a", b"")]),
        ),
        ("dotdot", raw_tar(&[("a/../../x", b'0', "", b"x")])),
        (
            "abs-name",
            raw_tar(&[
                ("/a/abs-name", b'0', "", b"x"),
                ("./e.txt", b'0', "", b"e2"),
            ]),
        ),
        (
            "fifo-dev",
            raw_tar(&[("f", b'6', "", b""), ("c", b'3', "", b"")]),
        ),
    ]);
    for (label, data) in seeds {
        put("layer_apply", label, &data);
    }
    for (name, data) in tar_entries(&fixture("chain-tagged.tar")) {
        if name.ends_with("layer.tar") {
            put("layer_apply", "dockerd-layer", &data);
        }
    }
}

fn main() {
    // `cargo run --example gen_seeds -- oci layers`: only those generators.
    let generators: &[(&str, fn())] = &[
        ("references", references),
        ("filters", filters),
        ("events", events),
        ("archives_and_layers", archives_and_layers),
        ("json", json),
        ("model", model),
        ("registry", registry),
        ("engine", engine),
        ("oci", oci),
        ("layers", layers),
    ];
    let only: Vec<String> = std::env::args().skip(1).collect();
    for (name, generate) in generators {
        if only.is_empty() || only.iter().any(|o| o == name) {
            generate();
        }
    }
    for (name, _) in strata_fuzz::TARGETS {
        let n = std::fs::read_dir(corpus(name))
            .map(|d| d.count())
            .unwrap_or(0);
        println!("corpus/{name}: {n} files");
    }
}
