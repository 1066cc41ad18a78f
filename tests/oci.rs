//! OCI image layouts (formats.md part B): `export_oci`, loading layout tars
//! and directories, platform selection, zstd layers, blob verification,
//! and round trips with the real skopeo and umoci when installed (skipped
//! with a note when absent, unless `CI` is set: then they must be there).

mod common;
use common::builder::{Img, base, layer};
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

const M_OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const I_OCI: &str = "application/vnd.oci.image.index.v1+json";
const C_OCI: &str = "application/vnd.oci.image.config.v1+json";
const L_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const L_GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const L_ZST: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const M_DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
const L_DOCKER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const C_DOCKER: &str = "application/vnd.docker.container.image.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CTR_NAME: &str = "io.containerd.image.name";

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(b, 3).unwrap()
}

/// An external tool, or `None` with a note when it is absent outside CI.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{name} is required when CI is set (Debian package {name})");
        }
        eprintln!("note: {name} not installed; skipping its part of this test");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A hand-built OCI layout.
#[derive(Clone)]
struct Layout {
    blobs: BTreeMap<String, Vec<u8>>,
    index: Value,
    oci_layout: Vec<u8>,
    extra: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Copy)]
enum Enc {
    Plain,
    Gzip,
    Zstd,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            blobs: BTreeMap::new(),
            index: json!({"schemaVersion": 2, "manifests": []}),
            oci_layout: br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec(),
            extra: Vec::new(),
        }
    }

    fn blob(&mut self, media_type: &str, bytes: Vec<u8>) -> Value {
        let d = json!({"mediaType": media_type, "digest": sha(&bytes), "size": bytes.len()});
        self.blobs.insert(sha(&bytes)[7..].to_string(), bytes);
        d
    }

    /// Config, layers and an OCI manifest for `config`/`layers`; returns the
    /// manifest's descriptor.
    fn manifest(&mut self, config: &[u8], layers: &[Vec<u8>], enc: Enc) -> Value {
        let c = self.blob(C_OCI, config.to_vec());
        let ls: Vec<Value> = layers
            .iter()
            .map(|l| match enc {
                Enc::Plain => self.blob(L_TAR, l.clone()),
                Enc::Gzip => self.blob(L_GZ, gzip(l)),
                Enc::Zstd => self.blob(L_ZST, zstd(l)),
            })
            .collect();
        let m = json!({"schemaVersion": 2, "mediaType": M_OCI, "config": c, "layers": ls});
        self.blob(M_OCI, serde_json::to_vec(&m).unwrap())
    }

    fn index_blob(&mut self, manifests: Vec<Value>) -> Value {
        let i = json!({"schemaVersion": 2, "mediaType": I_OCI, "manifests": manifests});
        self.blob(I_OCI, serde_json::to_vec(&i).unwrap())
    }

    fn top(&mut self, d: Value) {
        self.index["manifests"].as_array_mut().unwrap().push(d);
    }

    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut f = vec![
            ("oci-layout".to_string(), self.oci_layout.clone()),
            (
                "index.json".to_string(),
                serde_json::to_vec(&self.index).unwrap(),
            ),
        ];
        for (hex, b) in &self.blobs {
            f.push((format!("blobs/sha256/{hex}"), b.clone()));
        }
        f.extend(self.extra.iter().cloned());
        f
    }

    fn tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in self.files() {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn write_dir(&self, dir: &Path) {
        for (name, data) in self.files() {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
    }
}

fn annotated(mut d: Value, pairs: &[(&str, &str)]) -> Value {
    let a: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    d["annotations"] = a.into();
    d
}

fn with_platform(mut d: Value, os: &str, arch: &str) -> Value {
    d["platform"] = json!({"os": os, "architecture": arch});
    d
}

/// A config for `arch` with `layers`.
fn config_for(arch: &str, layers: &[Vec<u8>], label: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Labels": {"which": label}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": label}],
    }))
    .unwrap()
}

fn img(files: &[(&str, &[u8])], tags: &[&str]) -> Img {
    base(vec![layer(files)], 1_700_000_000, &[], tags)
}

async fn load_bytes(
    svc: &strata::ImageService,
    bytes: Vec<u8>,
) -> strata::Result<strata::archive::LoadReport> {
    svc.load_image(Cursor::new(bytes), true).await
}

async fn ids(svc: &strata::ImageService) -> Vec<(String, Vec<String>)> {
    svc.images(strata::Filters::new(), true, false)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            let tags = s.repo_tags.unwrap_or_default();
            (
                s.id,
                tags.into_iter().filter(|t| t != "<none>:<none>").collect(),
            )
        })
        .collect()
}

async fn export(svc: &strata::ImageService, names: &[&str]) -> Vec<u8> {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let f = tmp.reopen().unwrap();
    svc.export_oci(names.iter().map(|s| s.to_string()).collect(), f)
        .await
        .unwrap();
    std::fs::read(tmp.path()).unwrap()
}

/// (name, bytes) of every entry of a tar, directories as empty.
fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut b).unwrap();
            (name, b)
        })
        .collect()
}

fn untar(tar_bytes: &[u8], dir: &Path) {
    tar::Archive::new(tar_bytes).unpack(dir).unwrap();
}

fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

fn diff_ids_of(config: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(config).unwrap();
    v["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn export_writes_exact_deterministic_layout() {
    let (_d, svc) = service();
    load(&svc, "chain-tagged.tar").await;
    let out = export(&svc, &["dev/chain:1"]).await;
    assert_eq!(out, export(&svc, &["dev/chain:1"]).await, "deterministic");
    let ents = entries(&out);
    let get = |n: &str| ents.iter().find(|(k, _)| k == n).unwrap().1.clone();

    let config = get(&format!("blobs/sha256/{}", &CHAIN_ID[7..]));
    assert_eq!(sha(&config), CHAIN_ID, "config stored verbatim");
    let diff_ids = diff_ids_of(&config);
    assert_eq!(diff_ids.len(), 3);
    let layers: Vec<String> = diff_ids
        .iter()
        .map(|d| {
            let b = get(&format!("blobs/sha256/{}", &d[7..]));
            assert_eq!(&sha(&b), d, "layer blob is the uncompressed DiffID");
            format!(
                r#"{{"mediaType":"{L_TAR}","digest":"{d}","size":{}}}"#,
                b.len()
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{M_OCI}","config":{{"mediaType":"{C_OCI}","digest":"{CHAIN_ID}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layers.join(",")
    );
    let mdigest = sha(manifest.as_bytes());
    assert_eq!(
        get(&format!("blobs/sha256/{}", &mdigest[7..])),
        manifest.as_bytes()
    );
    assert_eq!(
        String::from_utf8(get("index.json")).unwrap(),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{I_OCI}","manifests":[{{"mediaType":"{M_OCI}","digest":"{mdigest}","size":{},"annotations":{{"{CTR_NAME}":"docker.io/dev/chain:1","{REF_NAME}":"1"}}}}]}}"#,
            manifest.len()
        )
    );
    assert_eq!(get("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut blob_names: Vec<String> = std::iter::once(CHAIN_ID.to_string())
        .chain(diff_ids.iter().cloned())
        .chain(std::iter::once(mdigest.clone()))
        .map(|d| format!("blobs/sha256/{}", &d[7..]))
        .collect();
    blob_names.sort();
    let mut want = vec!["blobs/".to_string(), "blobs/sha256/".to_string()];
    want.extend(blob_names);
    want.extend(["index.json".to_string(), "oci-layout".to_string()]);
    let names: Vec<String> = ents.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, want);

    // Back into a fresh store: same image, same tag.
    let (_d2, svc2) = service();
    let r = load_bytes(&svc2, out).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: dev/chain:1"]);
    assert_eq!(r.images, [CHAIN_ID]);
    assert_eq!(
        svc2.lookup_image("dev/chain:1")
            .await
            .unwrap()
            .root_fs
            .layers,
        diff_ids
    );
    assert_verified(&svc2);
}

#[tokio::test]
async fn export_by_id_and_several_tags() {
    let (_d, svc) = service();
    let a = img(&[("a", b"1")], &["one:1"]);
    let b = img(&[("b", b"2")], &[]);
    common::builder::load_imgs(&svc, &[&a, &b]).await;
    svc.tag_image("one:1", "example.com/two", "x")
        .await
        .unwrap();
    let out = export(&svc, &["one:1", "example.com/two:x", &b.id()]).await;
    let ents = entries(&out);
    let index: Value =
        serde_json::from_slice(&ents.iter().find(|(n, _)| n == "index.json").unwrap().1).unwrap();
    let anns: Vec<Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.get("annotations").cloned().unwrap_or(Value::Null))
        .collect();
    assert_eq!(
        anns,
        [
            json!({CTR_NAME: "docker.io/library/one:1", REF_NAME: "1"}),
            json!({CTR_NAME: "example.com/two:x", REF_NAME: "x"}),
            Value::Null,
        ]
    );
    let (_d2, svc2) = service();
    let r = load_bytes(&svc2, out).await.unwrap();
    assert_eq!(
        r.lines,
        [
            "Loaded image: one:1",
            "Loaded image: example.com/two:x",
            &format!("Loaded image ID: {}", b.id()),
        ]
    );
    assert_eq!(r.images, [a.id(), b.id()]);
    assert_verified(&svc2);
}

#[tokio::test]
async fn tags_from_annotations() {
    let a = img(&[("a", b"1")], &[]);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        ("bare tag: by ID", vec![(REF_NAME, "1.0")], vec![]),
        (
            "full ref name",
            vec![(REF_NAME, "example.com/app:1.0")],
            vec!["example.com/app:1.0"],
        ),
        (
            "docker.io ref name",
            vec![(REF_NAME, "docker.io/dev/chain:9")],
            vec!["dev/chain:9"],
        ),
        (
            "containerd name",
            vec![(CTR_NAME, "docker.io/library/busybox:1"), (REF_NAME, "1")],
            vec!["busybox:1"],
        ),
        ("no annotations", vec![], vec![]),
    ];
    for (name, pairs, want) in cases {
        let (_d, svc) = service();
        let mut l = Layout::new();
        let m = l.manifest(&a.config, &a.layers, Enc::Gzip);
        l.top(annotated(m, &pairs));
        let r = load_bytes(&svc, l.tar()).await.unwrap();
        let lines: Vec<String> = if want.is_empty() {
            vec![format!("Loaded image ID: {}", a.id())]
        } else {
            want.iter().map(|t| format!("Loaded image: {t}")).collect()
        };
        assert_eq!(r.lines, lines, "{name}");
        assert_eq!(
            ids(&svc).await,
            [(a.id(), want.iter().map(|s| s.to_string()).collect())],
            "{name}"
        );
        assert_verified(&svc);
    }

    // Two descriptors of one image add up; the same blob is ingested once.
    let (_d, svc) = service();
    let mut l = Layout::new();
    let m = l.manifest(&a.config, &a.layers, Enc::Plain);
    l.top(annotated(m.clone(), &[(REF_NAME, "x/y:1")]));
    l.top(annotated(m, &[(CTR_NAME, "docker.io/x/y:2")]));
    let r = load_bytes(&svc, l.tar()).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: x/y:1", "Loaded image: x/y:2"]);
    assert_eq!(r.images, [a.id()]);
    assert_verified(&svc);
}

#[tokio::test]
async fn platform_selection() {
    let amd_l = vec![layer(&[("amd", b"64")])];
    let arm_l = vec![layer(&[("arm", b"64")])];
    let amd_cfg = config_for("amd64", &amd_l, "amd64");
    let arm_cfg = config_for("arm64", &arm_l, "arm64");
    let amd_id = sha(&amd_cfg);
    let host_is_amd64 = cfg!(target_arch = "x86_64");
    if !host_is_amd64 {
        eprintln!("note: host is not amd64; platform_selection expects linux/amd64");
        return;
    }

    // Each case builds a layout; the arm64 layer blob is always left out,
    // so selecting (or even reading) the arm64 image fails.
    type Build = fn(&mut Layout, Value, Value);
    let cases: Vec<(&str, Build)> = vec![
        ("index.json lists both platforms", |l, amd, arm| {
            l.top(annotated(
                with_platform(arm, "linux", "arm64"),
                &[(REF_NAME, "m:1")],
            ));
            l.top(annotated(
                with_platform(amd, "linux", "amd64"),
                &[(REF_NAME, "m:1")],
            ));
        }),
        ("nested index", |l, amd, arm| {
            let i = l.index_blob(vec![
                with_platform(arm, "linux", "arm64"),
                with_platform(amd, "linux", "amd64"),
            ]);
            l.top(annotated(i, &[(REF_NAME, "m:1")]));
        }),
        ("index in an index, explicit platform", |l, amd, arm| {
            let inner = l.index_blob(vec![with_platform(amd, "linux", "amd64")]);
            let outer = l.index_blob(vec![
                with_platform(arm, "linux", "arm64"),
                with_platform(inner, "linux", "amd64"),
            ]);
            l.top(annotated(outer, &[(REF_NAME, "m:1")]));
        }),
        (
            "platform-less entries typed by their config",
            |l, amd, arm| {
                let inner = l.index_blob(vec![amd]);
                let outer = l.index_blob(vec![arm.clone(), inner]);
                // arm's config is read (to learn its platform), its layer is not.
                l.top(annotated(outer, &[(REF_NAME, "m:1")]));
            },
        ),
        ("explicit match first, then platform-less", |l, amd, arm| {
            let outer = l.index_blob(vec![arm, with_platform(amd, "linux", "x86_64")]);
            l.top(annotated(outer, &[(REF_NAME, "m:1")]));
        }),
        (
            "docker manifest list without media type on the entry",
            |l, amd, arm| {
                let list = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                "manifests": [with_platform(arm, "linux", "arm64"), with_platform(amd, "linux", "amd64")]});
                let mut d = l.blob(
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    serde_json::to_vec(&list).unwrap(),
                );
                d.as_object_mut().unwrap().remove("mediaType");
                l.top(annotated(d, &[(REF_NAME, "m:1")]));
            },
        ),
    ];
    for (name, build) in cases {
        let (_d, svc) = service();
        let mut l = Layout::new();
        let amd = l.manifest(&amd_cfg, &amd_l, Enc::Gzip);
        let arm = l.manifest(&arm_cfg, &arm_l, Enc::Gzip);
        l.blobs.remove(&sha(&gzip(&arm_l[0]))[7..]);
        build(&mut l, amd, arm);
        let r = load_bytes(&svc, l.tar())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.lines, ["Loaded image: m:1"], "{name}");
        assert_eq!(
            ids(&svc).await,
            [(amd_id.clone(), vec!["m:1".into()])],
            "{name}"
        );
        assert_verified(&svc);
    }

    // Nothing for linux/amd64: refused, store unchanged.
    let (_d, svc) = service();
    let mut l = Layout::new();
    let arm = l.manifest(&arm_cfg, &arm_l, Enc::Gzip);
    let i = l.index_blob(vec![with_platform(arm.clone(), "linux", "arm64")]);
    l.top(annotated(i, &[(REF_NAME, "m:1")]));
    let err = load_bytes(&svc, l.tar()).await.unwrap_err();
    assert_eq!(
        err.message(),
        "invalid OCI layout: index.json entry \"m:1\": no matching manifest for linux/amd64"
    );
    assert_eq!(ids(&svc).await, []);

    // A top-level manifest without a platform is loaded whatever its arch.
    let mut l = Layout::new();
    let arm = l.manifest(&arm_cfg, &arm_l, Enc::Gzip);
    l.top(arm);
    let r = load_bytes(&svc, l.tar()).await.unwrap();
    assert_eq!(r.lines, [format!("Loaded image ID: {}", sha(&arm_cfg))]);
    assert_verified(&svc);
}

#[tokio::test]
async fn compressions_and_docker_media_types() {
    let ls = vec![layer(&[("a", b"1")]), layer(&[("b", &[7u8; 5000][..])])];
    let cfg = config_for("amd64", &ls, "z");
    for (name, enc) in [
        ("plain", Enc::Plain),
        ("gzip", Enc::Gzip),
        ("zstd", Enc::Zstd),
    ] {
        let (_d, svc) = service();
        let mut l = Layout::new();
        let m = l.manifest(&cfg, &ls, enc);
        l.top(annotated(m, &[(REF_NAME, "z:1")]));
        let r = load_bytes(&svc, l.tar()).await.unwrap();
        assert_eq!(r.lines, ["Loaded image: z:1"], "{name}");
        let inspect = svc.lookup_image("z:1").await.unwrap();
        assert_eq!(inspect.id, sha(&cfg), "{name}");
        assert_eq!(inspect.root_fs.layers, diff_ids_of(&cfg), "{name}");
        assert_verified(&svc);
    }

    // Docker schema2 manifest in an OCI layout; no mediaType anywhere in
    // the manifest (umoci style) typed by content.
    for (name, with_type) in [("docker schema2", true), ("untyped manifest", false)] {
        let (_d, svc) = service();
        let mut l = Layout::new();
        let c = l.blob(C_DOCKER, cfg.clone());
        let layers: Vec<Value> = ls.iter().map(|x| l.blob(L_DOCKER, gzip(x))).collect();
        let mut m = json!({"schemaVersion": 2, "config": c, "layers": layers});
        if with_type {
            m["mediaType"] = M_DOCKER.into();
        }
        let mut d = l.blob(M_DOCKER, serde_json::to_vec(&m).unwrap());
        if !with_type {
            d.as_object_mut().unwrap().remove("mediaType");
        }
        l.top(annotated(d, &[(REF_NAME, "d:1")]));
        let r = load_bytes(&svc, l.tar()).await.unwrap();
        assert_eq!(r.lines, ["Loaded image: d:1"], "{name}");
        assert_eq!(r.images, [sha(&cfg)], "{name}");
        assert_verified(&svc);
    }
}

#[tokio::test]
async fn tampered_layouts_are_refused_and_change_nothing() {
    let ls = vec![layer(&[("a", b"1")]), layer(&[("b", b"22")])];
    let cfg = config_for("amd64", &ls, "t");
    let gz1: &'static str = Box::leak(sha(&gzip(&ls[1])).into_boxed_str());
    let mut good = Layout::new();
    let m = good.manifest(&cfg, &ls, Enc::Gzip);
    let mdigest = m["digest"].as_str().unwrap().to_string();
    good.top(annotated(m.clone(), &[(REF_NAME, "t:1")]));
    let cfg_digest = sha(&cfg);

    let flip = |b: &mut Vec<u8>| {
        let n = b.len() - 1;
        b[n] ^= 0x55;
    };
    type Tamper = Box<dyn Fn(&mut Layout)>;
    let cases: Vec<(&str, Tamper, String)> = vec![
        (
            "layer bytes changed",
            Box::new(move |l: &mut Layout| flip(l.blobs.get_mut(&gz1[7..]).unwrap())),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": layer 1 ({gz1}): blob {gz1} does not match its digest: its content hashes to {}",
                {
                    let mut b = gzip(&ls[1]);
                    flip(&mut b);
                    sha(&b)
                }
            ),
        ),
        (
            "layer truncated",
            Box::new(move |l: &mut Layout| {
                l.blobs.get_mut(&gz1[7..]).unwrap().pop();
            }),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": layer 1 ({gz1}): blob {gz1} has {} bytes, its descriptor says {}",
                gzip(&ls[1]).len() - 1,
                gzip(&ls[1]).len()
            ),
        ),
        (
            "layer missing",
            Box::new(move |l: &mut Layout| {
                l.blobs.remove(&gz1[7..]);
            }),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": layer 1 ({gz1}): blob {gz1} is missing"
            ),
        ),
        (
            "config changed",
            Box::new({
                let c = cfg_digest.clone();
                move |l: &mut Layout| flip(l.blobs.get_mut(&c[7..]).unwrap())
            }),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": config: blob {cfg_digest} does not match its digest: its content hashes to {}",
                {
                    let mut b = cfg.clone();
                    flip(&mut b);
                    sha(&b)
                }
            ),
        ),
        (
            "manifest changed",
            Box::new({
                let md = mdigest.clone();
                move |l: &mut Layout| {
                    let b = l.blobs.get_mut(&md[7..]).unwrap();
                    let n = b.len() - 1;
                    b[n - 1] = b' ';
                }
            }),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": blob {mdigest} does not match its digest: its content hashes to {}",
                {
                    let mut b = good.blobs[&mdigest[7..]].clone();
                    let n = b.len() - 1;
                    b[n - 1] = b' ';
                    sha(&b)
                }
            ),
        ),
        (
            "wrong diff_id",
            Box::new({
                let ls = ls.clone();
                move |l: &mut Layout| {
                    // A consistent manifest whose config names another DiffID.
                    let mut bad = config_for("amd64", &ls, "t");
                    let s = String::from_utf8(bad.clone()).unwrap();
                    let d1 = sha(&ls[1]);
                    bad = s.replace(&d1, &sha(b"other")).into_bytes();
                    let m = l.manifest(&bad, &ls, Enc::Gzip);
                    l.index["manifests"] = json!([annotated(m, &[(REF_NAME, "t:1")])]);
                }
            }),
            format!(
                "invalid diffID for layer 1: expected {:?}, got {:?}",
                sha(b"other"),
                sha(&ls[1])
            ),
        ),
        (
            "layer count mismatch",
            Box::new({
                let ls = ls.clone();
                move |l: &mut Layout| {
                    let bad = config_for("amd64", &ls[..1], "t");
                    let m = l.manifest(&bad, &ls, Enc::Gzip);
                    l.index["manifests"] = json!([annotated(m, &[(REF_NAME, "t:1")])]);
                }
            }),
            "invalid manifest, layers length mismatch: expected 2, got 1".to_string(),
        ),
        (
            "descriptor size lies about the manifest",
            Box::new(|l: &mut Layout| {
                let n = l.index["manifests"][0]["size"].as_u64().unwrap();
                l.index["manifests"][0]["size"] = (n + 1).into();
            }),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": blob {mdigest} has {} bytes, its descriptor says {}",
                good.blobs[&mdigest[7..]].len(),
                good.blobs[&mdigest[7..]].len() + 1
            ),
        ),
        (
            "media type disagrees with the manifest",
            Box::new(|l: &mut Layout| l.index["manifests"][0]["mediaType"] = M_DOCKER.into()),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": {mdigest} has media type \"{M_OCI}\", its descriptor says \"{M_DOCKER}\""
            ),
        ),
        (
            "digest escaping blobs/",
            Box::new(|l: &mut Layout| {
                l.index["manifests"][0]["digest"] = "sha256:../../oci-layout".into()
            }),
            "invalid OCI layout: invalid digest \"sha256:../../oci-layout\"".to_string(),
        ),
        (
            "sha512 digest",
            Box::new(|l: &mut Layout| {
                l.index["manifests"][0]["digest"] = format!("sha512:{}", "0".repeat(128)).into()
            }),
            format!(
                "invalid OCI layout: unsupported digest \"sha512:{}\": only sha256 is supported",
                "0".repeat(128)
            ),
        ),
        (
            "layout version 2",
            Box::new(|l: &mut Layout| l.oci_layout = br#"{"imageLayoutVersion":"2.0.0"}"#.to_vec()),
            "invalid OCI layout: unsupported imageLayoutVersion \"2.0.0\"".to_string(),
        ),
        (
            "encrypted layer",
            Box::new(move |l: &mut Layout| {
                let m: Value = serde_json::from_slice(&l.blobs[&mdigest[7..]]).unwrap();
                let mut m2 = m.clone();
                m2["layers"][0]["mediaType"] = format!("{L_GZ}+encrypted").into();
                let d = l.blob(M_OCI, serde_json::to_vec(&m2).unwrap());
                l.index["manifests"] = json!([annotated(d, &[(REF_NAME, "t:1")])]);
            }),
            format!(
                "invalid OCI layout: index.json entry \"t:1\": layer 0: unsupported media type \"{L_GZ}+encrypted\""
            ),
        ),
        (
            "schema 1",
            Box::new(|l: &mut Layout| {
                let d = l.blob(
                    "application/vnd.docker.distribution.manifest.v1+prettyjws",
                    br#"{"schemaVersion":1}"#.to_vec(),
                );
                l.index["manifests"] = json!([d]);
            }),
            format!(
                "invalid OCI layout: index.json entry {}: schema 1 manifests (application/vnd.docker.distribution.manifest.v1+prettyjws) are not supported",
                sha(br#"{"schemaVersion":1}"#)
            ),
        ),
    ];

    let (_d, svc) = service();
    load(&svc, "chain-tagged.tar").await;
    let before = (svc.store().head().unwrap(), ids(&svc).await);
    for (name, tamper, want) in cases {
        let mut l = good.clone();
        tamper(&mut l);
        let err = load_bytes(&svc, l.tar()).await.unwrap_err();
        assert_eq!(err.message(), want, "{name}");
        assert_eq!(
            (svc.store().head().unwrap(), ids(&svc).await),
            before,
            "{name}: store changed"
        );
        assert_verified(&svc);
    }
    // The untampered layout loads.
    let r = load_bytes(&svc, good.tar()).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: t:1"]);
    assert_verified(&svc);
}

#[tokio::test]
async fn manifest_json_wins_over_index_json() {
    // A Docker 25 style archive: manifest.json pointing into blobs/, plus
    // index.json (naming another tag) and oci-layout.
    let a = img(&[("a", b"1")], &[]);
    let mut l = Layout::new();
    let m = l.manifest(&a.config, &a.layers, Enc::Plain);
    l.top(annotated(m, &[(REF_NAME, "oci:only")]));
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", &a.id()[7..]),
        "RepoTags": ["docker25:1"],
        "Layers": [format!("blobs/sha256/{}", &sha(&a.layers[0])[7..])],
    }]);
    l.extra.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let (_d, svc) = service();
    let r = load_bytes(&svc, l.tar()).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: docker25:1"]);
    assert_eq!(ids(&svc).await, [(a.id(), vec!["docker25:1".into()])]);
    assert_verified(&svc);
}

#[tokio::test]
async fn layout_directories() {
    let a = img(&[("a", b"1")], &[]);
    let mut l = Layout::new();
    let m = l.manifest(&a.config, &a.layers, Enc::Gzip);
    l.top(annotated(m, &[(REF_NAME, "dir/img:1")]));
    let dir = tempfile::tempdir().unwrap();
    l.write_dir(dir.path());

    let (_d, svc) = service();
    let r = svc.load_layout_dir(dir.path()).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: dir/img:1"]);
    assert_eq!(r.images, [a.id()]);
    assert_verified(&svc);

    // A blob that is a symlink inside the layout is followed.
    let gz = sha(&gzip(&a.layers[0]));
    let blobs = dir.path().join("blobs/sha256");
    std::fs::rename(blobs.join(&gz[7..]), dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink("../../moved", blobs.join(&gz[7..])).unwrap();
    let (_d, svc) = service();
    assert_eq!(
        svc.load_layout_dir(dir.path()).await.unwrap().lines,
        ["Loaded image: dir/img:1"]
    );

    // One pointing outside is refused, nothing loaded.
    std::fs::remove_file(blobs.join(&gz[7..])).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", blobs.join(&gz[7..])).unwrap();
    let (_d, svc) = service();
    let err = svc.load_layout_dir(dir.path()).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "archive entry \"blobs/sha256/{}\" links to the absolute path \"/etc/passwd\"",
            &gz[7..]
        )
    );
    assert_eq!(ids(&svc).await, []);

    // Not a layout.
    let empty = tempfile::tempdir().unwrap();
    let err = svc.load_layout_dir(empty.path()).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "{} is not an OCI image layout (no oci-layout and index.json) nor a docker-archive (no manifest.json)",
            empty.path().display()
        )
    );
    // An extracted docker-archive loads too.
    let docker = tempfile::tempdir().unwrap();
    untar(&read_fixture("chain-tagged.tar"), docker.path());
    let r = svc.load_layout_dir(docker.path()).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: dev/chain:1"]);
    assert_verified(&svc);
}

#[tokio::test]
async fn skopeo_reads_what_strata_writes() {
    let Some(skopeo) = tool("skopeo") else { return };
    let (_d, svc) = service();
    load(&svc, "chain-tagged.tar").await;
    let want_diffs = svc.lookup_image(CHAIN_ID).await.unwrap().root_fs.layers;
    let work = tempfile::tempdir().unwrap();
    let oci = work.path().join("strata-oci.tar");
    std::fs::write(&oci, export(&svc, &["dev/chain:1"]).await).unwrap();

    // skopeo inspect: the raw config is ours (same image ID), same layers.
    let raw = Command::new(&skopeo)
        .args(["inspect", "--config", "--raw"])
        .arg(format!("oci-archive:{}", oci.display()))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(sha(&raw.stdout), CHAIN_ID);
    let info: Value = serde_json::from_str(&run(Command::new(&skopeo)
        .arg("inspect")
        .arg(format!("oci-archive:{}:1", oci.display()))))
    .unwrap();
    assert_eq!(info["Layers"], json!(want_diffs));

    // skopeo copy to a docker-archive, loaded back: same ID and DiffIDs.
    let docker = work.path().join("docker.tar");
    run(Command::new(&skopeo)
        .args(["copy", "-q"])
        .arg(format!("oci-archive:{}", oci.display()))
        .arg(format!(
            "docker-archive:{}:dev/chain:copied",
            docker.display()
        )));
    let (_d2, svc2) = service();
    let f = std::fs::File::open(&docker).unwrap();
    let r = svc2.load_image(f, true).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: dev/chain:copied"]);
    assert_eq!(r.images, [CHAIN_ID]);
    assert_eq!(
        svc2.lookup_image(CHAIN_ID).await.unwrap().root_fs.layers,
        want_diffs
    );
    assert_verified(&svc2);
}

#[tokio::test]
async fn strata_reads_what_skopeo_writes() {
    let Some(skopeo) = tool("skopeo") else { return };
    let fixture = common::fixture("chain-tagged.tar");
    let (_d, svc) = service();
    load(&svc, "chain-tagged.tar").await;
    let want_diffs = svc.lookup_image(CHAIN_ID).await.unwrap().root_fs.layers;
    for (name, extra, dest_ref, lines_for) in [
        ("gzip, bare tag", &["--dest-compress"][..], "small-1", None),
        (
            "zstd, full reference",
            &["--dest-compress", "--dest-compress-format", "zstd"][..],
            "docker.io/dev/chain:zst",
            Some("dev/chain:zst"),
        ),
    ] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("layout");
        run(Command::new(&skopeo)
            .args(["copy", "-q"])
            .args(extra)
            .arg(format!("docker-archive:{}", fixture.display()))
            .arg(format!("oci:{}:{dest_ref}", dir.display())));
        // skopeo rewrites the config into OCI form (formats.md §B.4), so
        // the image ID is that of its config; the DiffIDs are the fixture's.
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let mdigest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(dir.join("blobs/sha256").join(&mdigest[7..])).unwrap(),
        )
        .unwrap();
        let config_id = manifest["config"]["digest"].as_str().unwrap().to_string();
        let want_lines = vec![match lines_for {
            Some(t) => format!("Loaded image: {t}"),
            None => format!("Loaded image ID: {config_id}"),
        }];

        let (_d, svc) = service();
        let r = load_bytes(&svc, tar_dir(&dir)).await.unwrap();
        assert_eq!(r.lines, want_lines, "{name}");
        assert_eq!(r.images, std::slice::from_ref(&config_id), "{name}");
        assert_eq!(
            svc.lookup_image(&config_id).await.unwrap().root_fs.layers,
            want_diffs,
            "{name}"
        );
        assert_verified(&svc);

        let (_d, svc) = service();
        let r = svc.load_layout_dir(&dir).await.unwrap();
        assert_eq!(r.lines, want_lines, "{name} (directory)");
        assert_verified(&svc);

        // And strata's own OCI export of it is what skopeo reads back.
        let out = work.path().join("again.tar");
        std::fs::write(&out, export(&svc, &[&config_id]).await).unwrap();
        let raw = Command::new(&skopeo)
            .args(["inspect", "--config", "--raw"])
            .arg(format!("oci-archive:{}", out.display()))
            .output()
            .unwrap();
        assert_eq!(sha(&raw.stdout), config_id, "{name}");
    }
}

#[tokio::test]
async fn umoci_round_trips() {
    let Some(umoci) = tool("umoci") else { return };
    let work = tempfile::tempdir().unwrap();

    // strata → umoci: list, stat, unpack.
    let (_d, svc) = service();
    let a = img(&[("hello.txt", b"from strata")], &["example.com/u:1"]);
    common::builder::load_imgs(&svc, &[&a]).await;
    let layout = work.path().join("from-strata");
    std::fs::create_dir(&layout).unwrap();
    untar(&export(&svc, &["example.com/u:1"]).await, &layout);
    assert_eq!(
        run(Command::new(&umoci).arg("ls").arg("--layout").arg(&layout)),
        "1\n"
    );
    let stat: Value = serde_json::from_str(&run(Command::new(&umoci)
        .args(["stat", "--json", "--image"])
        .arg(format!("{}:1", layout.display()))))
    .unwrap();
    assert_eq!(stat["history"][0]["diff_id"], json!(sha(&a.layers[0])));
    assert_eq!(stat["history"][0]["created_by"], json!("layer 0"));
    let bundle = work.path().join("bundle");
    run(Command::new(&umoci)
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:1", layout.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read(bundle.join("rootfs/hello.txt")).unwrap(),
        b"from strata"
    );

    // umoci → strata: init/new/unpack/repack/config, then load the tar.
    let u = work.path().join("u");
    let image = format!("{}:t1", u.display());
    let ub = work.path().join("ubundle");
    run(Command::new(&umoci).args(["init", "--layout"]).arg(&u));
    run(Command::new(&umoci).args(["new", "--image", &image]));
    run(Command::new(&umoci)
        .args(["unpack", "--rootless", "--image", &image])
        .arg(&ub));
    std::fs::write(ub.join("rootfs/hello"), b"from umoci").unwrap();
    run(Command::new(&umoci)
        .args(["repack", "--image", &image])
        .arg(&ub));
    run(Command::new(&umoci).args([
        "config",
        "--image",
        &image,
        "--config.cmd=/bin/echo",
        "--config.label=origin=umoci",
    ]));
    let manifest_of = |layout: &Path| -> Value {
        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let mdigest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_slice(
            &std::fs::read(layout.join("blobs/sha256").join(&mdigest[7..])).unwrap(),
        )
        .unwrap()
    };
    let manifest = manifest_of(&u);
    let id = manifest["config"]["digest"].as_str().unwrap().to_string();
    let (_d, svc) = service();
    let r = load_bytes(&svc, tar_dir(&u)).await.unwrap();
    assert_eq!(r.lines, [format!("Loaded image ID: {id}")]);
    let inspect = svc.lookup_image(&id).await.unwrap();
    let config: Value = serde_json::from_str(inspect.config.as_ref().unwrap().get()).unwrap();
    assert_eq!(config["Cmd"], json!(["/bin/echo"]));
    assert_eq!(config["Labels"], json!({"origin": "umoci"}));
    let history = svc.image_history(&id).await.unwrap();
    let created_by: Vec<String> = history.iter().map(|h| h.created_by.clone()).collect();
    assert_eq!(created_by, ["umoci config", "umoci repack"]);
    assert_verified(&svc);

    // `umoci insert` (Debian's 0.4.7) writes layers cut short: no padding
    // after the last file, no end-of-archive blocks (GNU tar refuses them
    // too, as would Docker's archive/tar). strata refuses them, clearly.
    let v = work.path().join("v");
    let image = format!("{}:t1", v.display());
    let src = work.path().join("hello");
    std::fs::write(&src, b"hi\n").unwrap();
    run(Command::new(&umoci).args(["init", "--layout"]).arg(&v));
    run(Command::new(&umoci).args(["new", "--image", &image]));
    run(Command::new(&umoci)
        .args(["insert", "--rootless", "--image", &image])
        .arg(&src)
        .arg("/hello"));
    let layer_digest = manifest_of(&v)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(
            &std::fs::read(v.join("blobs/sha256").join(&layer_digest[7..])).unwrap()[..],
        ),
        &mut plain,
    )
    .unwrap();
    assert_eq!(
        plain.len(),
        515,
        "umoci insert's layer: one header and 3 bytes"
    );
    let before = svc.store().head().unwrap();
    let err = load_bytes(&svc, tar_dir(&v)).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "index.json entry \"t1\": layer 0 ({layer_digest}): invalid tar stream: unexpected EOF during skip"
        )
    );
    assert_eq!(svc.store().head().unwrap(), before);
}

/// Large gzip layers (staged on disk, inflated side by side, one per core)
/// of two images sharing two of them load as one by one would, and a
/// broken one fails with the message of the layer walk, in order.
#[tokio::test]
async fn large_gzip_layers_load_as_one_by_one() {
    let ls: Vec<Vec<u8>> = (0..4)
        .map(|i| layer(&[(&format!("f{i}"), &noise(70 + i, 3 << 19)[..])]))
        .collect();
    let a_layers = vec![ls[0].clone(), ls[1].clone(), ls[2].clone()];
    let b_layers = vec![ls[0].clone(), ls[1].clone(), ls[3].clone()];
    let layout = |b_cfg: &[u8]| {
        let mut l = Layout::new();
        let a = l.manifest(&config_for("amd64", &a_layers, "a"), &a_layers, Enc::Gzip);
        l.top(annotated(a, &[(REF_NAME, "a:1")]));
        let b = l.manifest(b_cfg, &b_layers, Enc::Gzip);
        l.top(annotated(b, &[(REF_NAME, "b:1")]));
        l
    };
    let b_cfg = config_for("amd64", &b_layers, "b");

    let (_d, svc) = service();
    let r = load_bytes(&svc, layout(&b_cfg).tar()).await.unwrap();
    assert_eq!(r.lines, ["Loaded image: a:1", "Loaded image: b:1"]);
    for (name, layers) in [("a:1", &a_layers), ("b:1", &b_layers)] {
        let got = svc.lookup_image(name).await.unwrap().root_fs.layers;
        let want: Vec<String> = layers.iter().map(|l| sha(l)).collect();
        assert_eq!(got, want, "{name}");
    }
    for l in &ls {
        let blob = std::fs::read(svc.store().content().path(&sha(l))).unwrap();
        assert!(blob == *l, "blob of {} holds other bytes", sha(l));
    }
    let ingest = svc.store().root().join("ingest");
    assert_eq!(std::fs::read_dir(&ingest).unwrap().count(), 0);
    assert_verified(&svc);

    // Image b's config names another DiffID for its third layer.
    let mut wrong = b_layers.clone();
    wrong[2] = layer(&[("other", b"x")]);
    let (_d, svc) = service();
    let err = load_bytes(&svc, layout(&config_for("amd64", &wrong, "b")).tar())
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "invalid diffID for layer 2: expected {:?}, got {:?}",
            sha(&wrong[2]),
            sha(&ls[3])
        )
    );
    // Image a's third layer is damaged.
    let mut l = layout(&b_cfg);
    let gz2 = sha(&gzip(&ls[2]));
    let blob = l.blobs.get_mut(&gz2[7..]).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 0x55;
    let damaged = sha(blob);
    let err = load_bytes(&svc, l.tar()).await.unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "invalid OCI layout: index.json entry \"a:1\": layer 2 ({gz2}): blob {gz2} does not match its digest: its content hashes to {damaged}"
        )
    );
    assert!(
        svc.images(strata::Filters::new(), true, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        std::fs::read_dir(svc.store().root().join("ingest"))
            .unwrap()
            .count(),
        0
    );
    assert_verified(&svc);
}
