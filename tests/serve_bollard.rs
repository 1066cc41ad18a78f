//! Every route `strata serve` offers, driven by a real Engine API client
//! (the `bollard` crate, 0.21) over the server's unix socket: exact values
//! on success, exact status codes and Docker's messages on failure, and
//! hostile requests (bad filters, bad references, a client that hangs up in
//! the middle of an upload) that must leave the store unchanged and the
//! server answering.
//!
//! bollard has no `/auth` call and cannot send malformed query values, so
//! those few requests go over raw HTTP/1.1 on the same socket.

#![allow(clippy::type_complexity)] // the tables of named cases

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;

use bollard::errors::Error as BError;
use bollard::models::{ContainerCreateBody, ImageDeleteResponseItem, ImageSummary};
use bollard::query_parameters as qp;
use bollard::{API_DEFAULT_VERSION, Docker, body_full};
use bytes::Bytes;
use common::builder::*;
use common::*;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_stream::StreamExt;

// ---------------------------------------------------------------- harness

struct Server {
    inner: common::serve::InProcess,
    sock: PathBuf,
    svc: strata::ImageService,
    docker: Docker,
}

impl Server {
    async fn start() -> Server {
        let inner = common::serve::InProcess::start().await;
        let (sock, svc) = (inner.sock.clone(), inner.svc.clone());
        let docker =
            Docker::connect_with_unix(sock.to_str().unwrap(), 120, API_DEFAULT_VERSION).unwrap();
        Server {
            inner,
            sock,
            svc,
            docker,
        }
    }

    async fn stop(mut self) {
        let r = self.inner.shutdown().await;
        assert!(r.is_ok(), "{r:?}");
    }

    /// One raw request: (status, body).
    async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let a = serve::request(&self.sock, method, path, headers, body).await;
        (a.status, a.text())
    }

    /// The log head: equal before and after ⇔ the store did not change.
    fn head(&self) -> (u64, [u8; 32]) {
        let h = self.svc.store().head().unwrap();
        (h.next_seq, h.last_hash)
    }

    /// A raw GET's JSON body (for fields bollard's 1.53 models lack).
    async fn get_json(&self, path: &str) -> serde_json::Value {
        let (st, body) = self.raw("GET", path, &[], Vec::new()).await;
        assert_eq!(st, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The server still answers, and the store passes `audit verify`.
    async fn assert_healthy(&self) {
        assert_eq!(self.docker.ping().await.unwrap(), "OK");
        assert_verified(&self.svc);
    }

    async fn ids(&self, all: bool) -> Vec<String> {
        self.docker
            .list_images(Some(qp::ListImagesOptions {
                all,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect()
    }

    /// `POST /images/load` through bollard: the `stream` lines.
    async fn load(&self, bytes: Vec<u8>) -> Vec<String> {
        let s = self.docker.import_image(
            qp::ImportImageOptions {
                quiet: true,
                ..Default::default()
            },
            body_full(Bytes::from(bytes)),
            None,
        );
        let out: Vec<_> = s.collect().await;
        out.into_iter()
            .map(|m| m.unwrap().stream.expect("a stream line"))
            .collect()
    }
}

/// Assert a Docker error response: exact status and message.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(r: Result<T, BError>, status: u16, message: &str) {
    match r {
        Err(BError::DockerResponseServerError {
            status_code,
            message: m,
        }) => assert_eq!((status_code, m.as_str()), (status, message)),
        other => panic!("expected {status} {message:?}, got {other:?}"),
    }
}

fn filters(pairs: &[(&str, &str)]) -> Option<HashMap<String, Vec<String>>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    Some(m)
}

fn short(id: &str) -> &str {
    &id[7..19]
}

fn untagged(s: &str) -> ImageDeleteResponseItem {
    ImageDeleteResponseItem {
        untagged: Some(s.to_string()),
        deleted: None,
    }
}

fn deleted(s: &str) -> ImageDeleteResponseItem {
    ImageDeleteResponseItem {
        untagged: None,
        deleted: Some(s.to_string()),
    }
}

/// Entries of a tar: (path, contents of regular files).
fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (p, data)
        })
        .collect()
}

async fn collect_bytes(s: impl tokio_stream::Stream<Item = Result<Bytes, BError>>) -> Vec<u8> {
    let chunks: Vec<_> = s.collect().await;
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// The first error of a byte stream (for routes that fail before the body).
async fn stream_err(s: impl tokio_stream::Stream<Item = Result<Bytes, BError>>) -> BError {
    let chunks: Vec<_> = s.collect().await;
    for c in chunks {
        if let Err(e) = c {
            return e;
        }
    }
    panic!("the stream did not fail")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The test images: `bl/base:1` (A) ← untagged M ← `bl/child:1`,`bl/child:2` (B),
/// and a dangling, unlabelled C.
struct Set {
    a: Img,
    m: Img,
    b: Img,
    c: Img,
}

fn set() -> Set {
    let a = base(
        vec![layer(&[("etc/a", b"alpha")])],
        1_600_000_000,
        &[("stage", "base")],
        &["bl/base:1"],
    );
    let m = child(&a, None, 1_600_000_050, &[("stage", "mid")], &[]);
    let b = child(
        &m,
        Some(layer(&[("etc/b", b"beta")])),
        1_600_000_100,
        &[("stage", "child")],
        &["bl/child:1", "bl/child:2"],
    );
    let c = base(vec![layer(&[("etc/c", b"gamma")])], 1_600_000_200, &[], &[]);
    Set { a, m, b, c }
}

fn summary(
    img: &Img,
    parent: &str,
    tags: &[&str],
    size: i64,
    labels: &[(&str, &str)],
) -> ImageSummary {
    ImageSummary {
        id: img.id(),
        parent_id: parent.to_string(),
        repo_tags: tags.iter().map(|s| s.to_string()).collect(),
        repo_digests: if tags.first() == Some(&"<none>:<none>") {
            vec!["<none>@<none>".to_string()]
        } else {
            Vec::new()
        },
        created: serde_json::from_slice::<serde_json::Value>(&img.config).unwrap()["created"]
            .as_str()
            .map(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .unwrap()
                    .unix_timestamp()
            })
            .unwrap(),
        size,
        shared_size: -1,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        containers: -1,
        manifests: None,
        descriptor: None,
    }
}

// ---------------------------------------------------------------- system

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_ping_version_info_df() {
    let srv = Server::start().await;
    let d = &srv.docker;
    assert_eq!(d.ping().await.unwrap(), "OK");

    let v = d.version().await.unwrap();
    assert_eq!(v.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(v.api_version.as_deref(), Some("1.41"));
    assert_eq!(v.min_api_version.as_deref(), Some("1.12"));
    assert_eq!(v.os.as_deref(), Some("linux"));
    assert_eq!(v.platform.unwrap().name, "strata");
    // bollard negotiates down to the server's version.
    let neg = srv.docker.clone().negotiate_version().await.unwrap();
    assert_eq!(neg.client_version().to_string(), "1.41");

    let s = Set::new_loaded(&srv).await;
    let info = d.info().await.unwrap();
    assert_eq!(info.images, Some(4));
    assert_eq!(info.containers, Some(0));
    assert_eq!(info.driver.as_deref(), Some("vfs"));
    assert_eq!(info.os_type.as_deref(), Some("linux"));
    assert_eq!(
        info.docker_root_dir.as_deref(),
        Some(srv.svc.store().root().to_str().unwrap())
    );
    assert_eq!(
        info.server_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        info.index_server_address.as_deref(),
        Some("https://index.docker.io/v1/")
    );

    // /system/df: bollard 0.21 reads the API 1.52 shape, so the 1.41 body is
    // checked raw; the bollard call must at least succeed.
    d.df(None::<qp::DataUsageOptions>).await.unwrap();
    let (st, body) = srv.raw("GET", "/v1.41/system/df", &[], Vec::new()).await;
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["LayersSize"], 5 + 4 + 5);
    let mut ids: Vec<&str> = v["Images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![s.a.id(), s.b.id(), s.c.id()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(v["Containers"], serde_json::json!([]));
    assert_eq!(v["Volumes"], serde_json::json!([]));
    assert_eq!(v["BuildCache"], serde_json::Value::Null);
    srv.stop().await;
}

impl Set {
    async fn new_loaded(srv: &Server) -> Set {
        let s = set();
        let lines = srv.load(archive(&[&s.a, &s.m, &s.b, &s.c])).await;
        // Docker's loader prints the tags as it goes, then every image ID
        // of the archive when its last entry has no tag.
        assert_eq!(
            lines,
            [
                "Loaded image: bl/base:1\n".to_string(),
                "Loaded image: bl/child:1\n".to_string(),
                "Loaded image: bl/child:2\n".to_string(),
                format!("Loaded image ID: {}\n", s.a.id()),
                format!("Loaded image ID: {}\n", s.m.id()),
                format!("Loaded image ID: {}\n", s.b.id()),
                format!("Loaded image ID: {}\n", s.c.id()),
            ]
        );
        s
    }
}

// ---------------------------------------------------------------- images

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_list_inspect_history_tag() {
    let srv = Server::start().await;
    let d = &srv.docker;
    let s = Set::new_loaded(&srv).await;
    let (a, m, b, c) = (s.a.id(), s.m.id(), s.b.id(), s.c.id());
    let sa = summary(&s.a, "", &["bl/base:1"], 5, &[("stage", "base")]);
    let sm = summary(&s.m, &a, &["<none>:<none>"], 5, &[("stage", "mid")]);
    let sb = summary(
        &s.b,
        &m,
        &["bl/child:1", "bl/child:2"],
        9,
        &[("stage", "child")],
    );
    let sc = summary(&s.c, "", &["<none>:<none>"], 5, &[]);

    let since_m = [("since", &m[7..])];
    let cases: Vec<(&str, bool, &[(&str, &str)], Vec<&ImageSummary>)> = vec![
        ("default", false, &[], vec![&sc, &sb, &sa]),
        ("all", true, &[], vec![&sc, &sb, &sm, &sa]),
        ("dangling", false, &[("dangling", "true")], vec![&sc]),
        (
            "not dangling",
            false,
            &[("dangling", "false")],
            vec![&sb, &sa],
        ),
        ("label key", false, &[("label", "stage")], vec![&sb, &sa]),
        ("label k=v", false, &[("label", "stage=child")], vec![&sb]),
        ("label all", true, &[("label", "stage=mid")], vec![&sm]),
        ("before", false, &[("before", "bl/child:1")], vec![&sa]),
        ("since", false, &[("since", "bl/base:1")], vec![&sc, &sb]),
        ("since id", true, &since_m, vec![&sc, &sb]),
        (
            "reference glob",
            false,
            &[("reference", "bl/*")],
            vec![&sb, &sa],
        ),
        (
            "label and since",
            false,
            &[("since", "bl/base:1"), ("label", "stage")],
            vec![&sb],
        ),
    ];
    for (name, all, f, want) in &cases {
        let got = d
            .list_images(Some(qp::ListImagesOptions {
                all: *all,
                filters: filters(f),
                ..Default::default()
            }))
            .await
            .unwrap();
        let want: Vec<ImageSummary> = want.iter().map(|s| (*s).clone()).collect();
        assert_eq!(got, want, "{name}");
    }
    // reference keeps only the matching tags.
    let got = d
        .list_images(Some(qp::ListImagesOptions {
            filters: filters(&[("reference", "bl/child:2")]),
            ..Default::default()
        }))
        .await
        .unwrap();
    let mut only2 = sb.clone();
    only2.repo_tags = vec!["bl/child:2".into()];
    assert_eq!(got, [only2]);

    // Filter errors.
    let head = srv.head();
    let bad: &[(&str, &[(&str, &str)], u16, &str)] = &[
        (
            "unknown key",
            &[("bogus", "x")],
            400,
            "Invalid filter 'bogus'",
        ),
        (
            "before unknown",
            &[("before", "nosuch:1")],
            404,
            "No such image: nosuch:1",
        ),
        (
            "since unknown",
            &[("since", "nosuch")],
            404,
            "No such image: nosuch:latest",
        ),
        (
            "dangling value",
            &[("dangling", "maybe")],
            400,
            "Invalid filter 'dangling=[maybe]'",
        ),
    ];
    for (name, f, status, msg) in bad {
        let r = d
            .list_images(Some(qp::ListImagesOptions {
                filters: filters(f),
                ..Default::default()
            }))
            .await;
        match r {
            Err(BError::DockerResponseServerError {
                status_code,
                message,
            }) => assert_eq!((status_code, message.as_str()), (*status, *msg), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(srv.head(), head);

    // Inspect.
    let i = d.inspect_image("bl/child:1").await.unwrap();
    assert_eq!(i.id.as_deref(), Some(b.as_str()));
    assert_eq!(
        srv.get_json("/v1.41/images/bl/child:1/json").await["Parent"],
        m.as_str()
    );
    assert_eq!(
        i.repo_tags,
        Some(vec!["bl/child:1".to_string(), "bl/child:2".to_string()])
    );
    assert_eq!(i.repo_digests, Some(vec![]));
    assert_eq!(i.created.as_deref(), Some("2020-09-13T12:28:20Z"));
    assert_eq!(i.size, Some(9));
    assert_eq!(i.os.as_deref(), Some("linux"));
    assert_eq!(i.architecture.as_deref(), Some("amd64"));
    let cfg = i.config.unwrap();
    assert_eq!(cfg.env, Some(vec!["PATH=/bin".to_string()]));
    assert_eq!(
        cfg.labels,
        Some(HashMap::from([("stage".to_string(), "child".to_string())]))
    );
    let rootfs = i.root_fs.unwrap();
    assert_eq!(rootfs.typ, "layers");
    assert_eq!(
        rootfs.layers,
        Some(vec![sha(&s.a.layers[0]), sha(&s.b.layers[1])])
    );
    // By ID prefix and by full ID.
    assert_eq!(
        d.inspect_image(&c[7..14]).await.unwrap().id,
        Some(c.clone())
    );
    assert_eq!(d.inspect_image(&a).await.unwrap().id, Some(a.clone()));
    assert_err(
        d.inspect_image("nosuch:1").await,
        404,
        "no such image: nosuch:1: No such image: nosuch:1",
    );

    // History: newest first, IDs along the parent chain.
    let h = d.image_history("bl/child:2").await.unwrap();
    let got: Vec<(String, i64, String, Vec<String>, i64)> = h
        .into_iter()
        .map(|e| (e.id, e.created, e.created_by, e.tags, e.size))
        .collect();
    assert_eq!(
        got,
        [
            (
                b.clone(),
                1_600_000_100,
                "step 2".to_string(),
                vec!["bl/child:1".to_string(), "bl/child:2".to_string()],
                4
            ),
            (m.clone(), 1_600_000_050, "step 1".to_string(), vec![], 0),
            (
                a.clone(),
                1_600_000_000,
                "layer 0".to_string(),
                vec!["bl/base:1".to_string()],
                5
            ),
        ]
    );
    assert_err(
        d.image_history("nosuch:1").await,
        404,
        "No such image: nosuch:1",
    );

    // Tag.
    d.tag_image(
        "bl/base:1",
        Some(qp::TagImageOptions {
            repo: Some("bl/new".into()),
            tag: Some("x".into()),
        }),
    )
    .await
    .unwrap();
    d.tag_image(
        &c[7..19],
        Some(qp::TagImageOptions {
            repo: Some("localhost:5000/bl/c:v1".into()),
            tag: None,
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        d.inspect_image(&a).await.unwrap().repo_tags,
        Some(vec!["bl/base:1".to_string(), "bl/new:x".to_string()])
    );
    assert_eq!(
        d.inspect_image("localhost:5000/bl/c:v1").await.unwrap().id,
        Some(c.clone())
    );
    let head = srv.head();
    let tag_errors: &[(&str, &str, Option<&str>, Option<&str>, u16, &str)] = &[
        (
            "no source",
            "nosuch",
            Some("bl/y"),
            None,
            404,
            "No such image: nosuch:latest",
        ),
        (
            "uppercase repo",
            "bl/base:1",
            Some("Bad/Name"),
            None,
            500,
            "invalid reference format: repository name must be lowercase",
        ),
        (
            "bad tag",
            "bl/base:1",
            Some("bl/y"),
            Some("a/b"),
            500,
            "invalid tag format",
        ),
        (
            "digest repo",
            "bl/base:1",
            Some("bl/y@sha256:0000000000000000000000000000000000000000000000000000000000000000"),
            None,
            400,
            "refusing to create a tag with a digest reference",
        ),
        (
            "sha256 repo",
            "bl/base:1",
            Some("sha256"),
            Some("1"),
            400,
            "refusing to create an ambiguous tag using digest algorithm as name",
        ),
    ];
    for (name, src, repo, tag, status, msg) in tag_errors {
        let r = d
            .tag_image(
                src,
                Some(qp::TagImageOptions {
                    repo: repo.map(str::to_string),
                    tag: tag.map(str::to_string),
                }),
            )
            .await;
        match r {
            Err(BError::DockerResponseServerError {
                status_code,
                message,
            }) => assert_eq!((status_code, message.as_str()), (*status, *msg), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(srv.head(), head);
    srv.assert_healthy().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_remove_prune_export() {
    let srv = Server::start().await;
    let d = &srv.docker;
    let s = Set::new_loaded(&srv).await;
    let (a, m, b, c) = (s.a.id(), s.m.id(), s.b.id(), s.c.id());
    let chain_b = sha(format!("{} {}", sha(&s.a.layers[0]), sha(&s.b.layers[1])).as_bytes());
    let rm = |force: bool, noprune: bool| {
        Some(qp::RemoveImageOptions {
            force,
            noprune,
            ..Default::default()
        })
    };

    // Export first: one name, then several.
    let tar = collect_bytes(d.export_image("bl/base:1")).await;
    let entries = tar_entries(&tar);
    let manifest: serde_json::Value = serde_json::from_slice(
        &entries
            .iter()
            .find(|(p, _)| p == "manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let layer_path = manifest[0]["Layers"][0].as_str().unwrap().to_string();
    assert_eq!(
        manifest,
        serde_json::json!([{
            "Config": format!("{}.json", &a[7..]),
            "RepoTags": ["bl/base:1"],
            "Layers": [&layer_path],
        }])
    );
    assert!(layer_path.ends_with("/layer.tar"), "{layer_path}");
    let layer_bytes = &entries.iter().find(|(p, _)| *p == layer_path).unwrap().1;
    assert_eq!(layer_bytes, &s.a.layers[0]);
    let config = &entries
        .iter()
        .find(|(p, _)| *p == format!("{}.json", &a[7..]))
        .unwrap()
        .1;
    assert_eq!(config, &s.a.config);
    let tar = collect_bytes(d.export_images(&["bl/child:1", "bl/base:1"])).await;
    let manifest: serde_json::Value = serde_json::from_slice(
        &tar_entries(&tar)
            .into_iter()
            .find(|(p, _)| p == "manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    let tags: Vec<&serde_json::Value> = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["RepoTags"])
        .collect();
    assert_eq!(
        tags,
        [
            &serde_json::json!(["bl/child:1"]),
            &serde_json::json!(["bl/base:1"])
        ]
    );
    // The export loads back (every image already present).
    let lines = srv.load(tar).await;
    assert_eq!(
        lines,
        ["Loaded image: bl/child:1\n", "Loaded image: bl/base:1\n"]
    );
    let e = stream_err(d.export_image("nosuch:1")).await;
    assert_err::<()>(Err(e), 404, "reference does not exist");
    let e = stream_err(d.export_images(&["bl/base:1", "0123456789ab"])).await;
    assert_err::<()>(Err(e), 404, "No such image: 0123456789ab");

    // Remove: errors first; none changes the store.
    let head = srv.head();
    assert_err(
        d.remove_image("nosuch:1", rm(false, false), None).await,
        404,
        "No such image: nosuch:1",
    );
    assert_err(
        d.remove_image(short(&a), rm(false, false), None).await,
        409,
        &format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            short(&a)
        ),
    );
    assert_err(
        d.remove_image(short(&a), rm(true, false), None).await,
        409,
        &format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            short(&a)
        ),
    );
    assert_err(
        d.remove_image(short(&b), rm(false, false), None).await,
        409,
        &format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(&b)
        ),
    );
    assert_err(
        d.remove_image(" ", rm(false, false), None).await,
        400,
        "image name cannot be blank",
    );
    assert_eq!(srv.head(), head);

    // Untag one of two tags.
    assert_eq!(
        d.remove_image("bl/child:2", rm(false, false), None)
            .await
            .unwrap(),
        [untagged("bl/child:2")]
    );
    // Forced by ID with noprune: the parent M stays.
    d.tag_image(
        &b,
        Some(qp::TagImageOptions {
            repo: Some("other/name".into()),
            tag: Some("1".into()),
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        d.remove_image(&b[7..], rm(true, true), None).await.unwrap(),
        [
            untagged("bl/child:1"),
            untagged("other/name:1"),
            deleted(&b),
            deleted(&chain_b),
        ]
    );
    assert_eq!(srv.ids(true).await, [c.clone(), m.clone(), a.clone()]);

    // Prune: label filter selects M only (C is dangling too).
    let p = d
        .prune_images(Some(qp::PruneImagesOptions {
            filters: filters(&[("label", "stage=mid")]),
        }))
        .await
        .unwrap();
    assert_eq!(p.images_deleted, Some(vec![deleted(&m)]));
    assert_eq!(p.space_reclaimed, Some(0));
    // Nothing matches: null list.
    let p = d
        .prune_images(Some(qp::PruneImagesOptions {
            filters: filters(&[("label", "nope")]),
        }))
        .await
        .unwrap();
    assert_eq!((p.images_deleted, p.space_reclaimed), (None, Some(0)));
    // until in the past (before every image's creation): nothing.
    let p = d
        .prune_images(Some(qp::PruneImagesOptions {
            filters: filters(&[("dangling", "false"), ("until", "1500000000")]),
        }))
        .await
        .unwrap();
    assert_eq!((p.images_deleted, p.space_reclaimed), (None, Some(0)));
    // All unused images without the label `stage`: C (and its layer).
    let p = d
        .prune_images(Some(qp::PruneImagesOptions {
            filters: filters(&[("dangling", "false"), ("label!", "stage")]),
        }))
        .await
        .unwrap();
    assert_eq!(
        p.images_deleted,
        Some(vec![deleted(&c), deleted(&sha(&s.c.layers[0]))])
    );
    assert_eq!(p.space_reclaimed, Some(5));
    let head = srv.head();
    let prune_errors: &[(&str, &[(&str, &str)], u16, &str)] = &[
        (
            "unknown key",
            &[("bogus", "1")],
            400,
            "Invalid filter 'bogus'",
        ),
        (
            "two untils",
            &[("until", "1"), ("until", "2")],
            500,
            "more than one until filter specified",
        ),
    ];
    for (name, f, status, msg) in prune_errors {
        match d
            .prune_images(Some(qp::PruneImagesOptions {
                filters: filters(f),
            }))
            .await
        {
            Err(BError::DockerResponseServerError {
                status_code,
                message,
            }) => assert_eq!((status_code, message.as_str()), (*status, *msg), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(srv.head(), head);

    // The last image: untag, delete, its layer goes.
    assert_eq!(
        d.remove_image("bl/base:1", rm(false, false), None)
            .await
            .unwrap(),
        [
            untagged("bl/base:1"),
            deleted(&a),
            deleted(&sha(&s.a.layers[0]))
        ]
    );
    assert_eq!(srv.ids(true).await, Vec::<String>::new());
    srv.assert_healthy().await;
    srv.stop().await;
}

/// A tar of `files` (path, contents).
fn rootfs_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    layer(files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_create_import() {
    let srv = Server::start().await;
    let d = &srv.docker;
    let tar = rootfs_tar(&[("bin/hello", b"hi there")]);
    let opts = qp::CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some("bl/imported".into()),
        tag: Some("7".into()),
        message: Some("my message".into()),
        changes: vec![
            "CMD [\"/bin/hello\"]".into(),
            "ENV A=1".into(),
            "LABEL k=v".into(),
        ],
        ..Default::default()
    };
    let out: Vec<_> = d
        .create_image(Some(opts), Some(body_full(Bytes::from(tar.clone()))), None)
        .collect()
        .await;
    assert_eq!(out.len(), 1, "{out:?}");
    let id = out[0].as_ref().unwrap().status.clone().unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let i = d.inspect_image("bl/imported:7").await.unwrap();
    assert_eq!(i.id.as_deref(), Some(id.as_str()));
    assert_eq!(i.comment.as_deref(), Some("my message"));
    assert_eq!(
        srv.get_json("/v1.41/images/bl/imported:7/json").await["Parent"],
        ""
    );
    assert_eq!(i.size, Some(8));
    let cfg = i.config.unwrap();
    assert_eq!(cfg.cmd, Some(vec!["/bin/hello".to_string()]));
    assert_eq!(cfg.env, Some(vec!["A=1".to_string()]));
    assert_eq!(
        cfg.labels,
        Some(HashMap::from([("k".to_string(), "v".to_string())]))
    );
    assert_eq!(i.root_fs.unwrap().layers, Some(vec![sha(&tar)]));
    let h = d.image_history(&id).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].comment.as_str(), h[0].size, h[0].tags.clone()),
        ("my message", 8, vec!["bl/imported:7".to_string()])
    );

    // Errors: nothing is stored.
    let head = srv.head();
    let cases: &[(&str, &str, Vec<String>, u16, &str)] = &[
        (
            "uppercase repo",
            "Bad/Name",
            vec![],
            400,
            "invalid reference format: repository name must be lowercase",
        ),
        (
            "digest repo",
            "bl/x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            vec![],
            400,
            "cannot import digest reference",
        ),
        (
            "bad change",
            "bl/x",
            vec!["RUN rm -rf /".into()],
            400,
            "run is not a valid change command",
        ),
    ];
    for (name, repo, changes, status, msg) in cases {
        let out: Vec<_> = d
            .create_image(
                Some(qp::CreateImageOptions {
                    from_src: Some("-".into()),
                    repo: Some(repo.to_string()),
                    changes: changes.clone(),
                    ..Default::default()
                }),
                Some(body_full(Bytes::from(tar.clone()))),
                None,
            )
            .collect()
            .await;
        match &out[..] {
            [
                Err(BError::DockerResponseServerError {
                    status_code,
                    message,
                }),
            ] => assert_eq!((*status_code, message.as_str()), (*status, *msg), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Pull with a bad reference.
    let out: Vec<_> = d
        .create_image(
            Some(qp::CreateImageOptions {
                from_image: Some("Bad".into()),
                tag: Some("1".into()),
                ..Default::default()
            }),
            None,
            None,
        )
        .collect()
        .await;
    match &out[..] {
        [
            Err(BError::DockerResponseServerError {
                status_code,
                message,
            }),
        ] => assert_eq!(
            (*status_code, message.as_str()),
            (
                400,
                "invalid reference format: repository name must be lowercase"
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.head(), head);
    srv.assert_healthy().await;
    srv.stop().await;
}

// ---------------------------------------------------------------- containers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_archive_export_commit() {
    let srv = Server::start().await;
    let d = &srv.docker;
    let s = Set::new_loaded(&srv).await;
    let a = s.a.id();

    let created = d
        .create_container(
            Some(qp::CreateContainerOptions {
                name: Some("blc1".into()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some("bl/base:1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(created.warnings, Vec::<String>::new());
    let cid = created.id.clone();
    assert_eq!(cid.len(), 64, "{cid}");

    // Create errors: nothing stored.
    let head = srv.head();
    let body = |image: &str| ContainerCreateBody {
        image: Some(image.into()),
        ..Default::default()
    };
    let name = |n: &str| {
        Some(qp::CreateContainerOptions {
            name: Some(n.into()),
            ..Default::default()
        })
    };
    assert_err(
        d.create_container(name("blc2"), body("nosuch")).await,
        404,
        "No such image: nosuch:latest",
    );
    assert_err(
        d.create_container(name("x y"), body("bl/base:1")).await,
        400,
        "Invalid container name (x y), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
    assert_eq!(srv.head(), head);

    // List and inspect.
    let none = d
        .list_containers(Some(qp::ListContainersOptions::default()))
        .await
        .unwrap();
    assert_eq!(none.len(), 0, "no container is running");
    let l = d
        .list_containers(Some(qp::ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].id.as_deref(), Some(cid.as_str()));
    assert_eq!(l[0].names, Some(vec!["/blc1".to_string()]));
    assert_eq!(l[0].image.as_deref(), Some("bl/base:1"));
    assert_eq!(l[0].image_id.as_deref(), Some(a.as_str()));
    assert_eq!(l[0].status.as_deref(), Some("Created"));
    let i = d
        .inspect_container("blc1", None::<qp::InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(i.id.as_deref(), Some(cid.as_str()));
    assert_eq!(i.name.as_deref(), Some("/blc1"));
    assert_eq!(i.image.as_deref(), Some(a.as_str()));
    assert_eq!(i.config.unwrap().image.as_deref(), Some("bl/base:1"));
    assert_eq!(
        d.inspect_container(&cid[..10], None::<qp::InspectContainerOptions>)
            .await
            .unwrap()
            .id,
        Some(cid.clone())
    );
    assert_err(
        d.inspect_container("nosuch", None::<qp::InspectContainerOptions>)
            .await,
        404,
        "No such container: nosuch",
    );

    // Archive PUT, HEAD, GET.
    let upload = rootfs_tar(&[("hello.txt", b"hello world"), ("d/x", b"xx")]);
    d.upload_to_container(
        "blc1",
        Some(qp::UploadToContainerOptions {
            path: "/".into(),
            ..Default::default()
        }),
        body_full(Bytes::from(upload.clone())),
    )
    .await
    .unwrap();
    let stat = d
        .get_container_archive_info(
            "blc1",
            Some(qp::ContainerArchiveInfoOptions {
                path: "/hello.txt".into(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (stat.name.as_str(), stat.size, stat.file_mode),
        ("hello.txt", 11, 0o644)
    );
    let got = collect_bytes(d.download_from_container(
        "blc1",
        Some(qp::DownloadFromContainerOptions {
            path: "/hello.txt".into(),
        }),
    ))
    .await;
    assert_eq!(
        tar_entries(&got),
        [("hello.txt".to_string(), b"hello world".to_vec())]
    );
    let got = collect_bytes(d.download_from_container(
        "blc1",
        Some(qp::DownloadFromContainerOptions { path: "/d".into() }),
    ))
    .await;
    assert_eq!(
        tar_entries(&got),
        [
            ("d/".to_string(), Vec::new()),
            ("d/x".to_string(), b"xx".to_vec())
        ]
    );
    let e = stream_err(d.download_from_container(
        "blc1",
        Some(qp::DownloadFromContainerOptions {
            path: "/nope".into(),
        }),
    ))
    .await;
    assert_err::<()>(
        Err(e),
        404,
        "Could not find the file /nope in container blc1",
    );
    assert_err(
        d.upload_to_container(
            "blc1",
            Some(qp::UploadToContainerOptions {
                path: "/hello.txt".into(),
                ..Default::default()
            }),
            body_full(Bytes::from(upload.clone())),
        )
        .await,
        400,
        "extraction point is not a directory",
    );
    assert_err(
        d.upload_to_container(
            "nosuch",
            Some(qp::UploadToContainerOptions {
                path: "/".into(),
                ..Default::default()
            }),
            body_full(Bytes::from(upload.clone())),
        )
        .await,
        404,
        "No such container: nosuch",
    );

    // Export: the image's files plus the uploaded ones.
    let got = collect_bytes(d.export_container("blc1")).await;
    let mut files: Vec<(String, Vec<u8>)> = tar_entries(&got)
        .into_iter()
        .filter(|(p, _)| !p.ends_with('/') && p != "d")
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ("d/x".to_string(), b"xx".to_vec()),
            ("etc/a".to_string(), b"alpha".to_vec()),
            ("hello.txt".to_string(), b"hello world".to_vec()),
        ]
    );
    let e = stream_err(d.export_container("nosuch")).await;
    assert_err::<()>(Err(e), 404, "No such container: nosuch");

    // Commit.
    let r = d
        .commit_container(
            qp::CommitContainerOptions {
                container: Some("blc1".into()),
                repo: Some("bl/committed".into()),
                tag: Some("1".into()),
                comment: Some("a comment".into()),
                author: Some("me <me@example.com>".into()),
                changes: Some("ENV B=2".into()),
                pause: true,
            },
            bollard::models::ContainerConfig::default(),
        )
        .await
        .unwrap();
    let i = d.inspect_image("bl/committed:1").await.unwrap();
    assert_eq!(i.id.as_deref(), Some(r.id.as_str()));
    assert_eq!(
        srv.get_json("/v1.41/images/bl/committed:1/json").await["Parent"],
        a.as_str()
    );
    assert_eq!(i.comment.as_deref(), Some("a comment"));
    assert_eq!(i.author.as_deref(), Some("me <me@example.com>"));
    assert_eq!(
        i.config.unwrap().env,
        Some(vec!["PATH=/bin".to_string(), "B=2".to_string()])
    );
    let layers = i.root_fs.unwrap().layers.unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], sha(&s.a.layers[0]));
    let h = d.image_history("bl/committed:1").await.unwrap();
    assert_eq!(
        h.iter()
            .map(|e| (e.id.clone(), e.comment.clone()))
            .collect::<Vec<_>>(),
        [
            (r.id.clone(), "a comment".to_string()),
            (a.clone(), String::new())
        ]
    );
    let head = srv.head();
    match d
        .commit_container(
            qp::CommitContainerOptions {
                container: Some("nosuch".into()),
                pause: true,
                ..Default::default()
            },
            bollard::models::ContainerConfig::default(),
        )
        .await
    {
        Err(BError::DockerResponseServerError {
            status_code,
            message,
        }) => assert_eq!(
            (status_code, message.as_str()),
            (404, "No such container: nosuch")
        ),
        other => panic!("{other:?}"),
    }
    match d
        .commit_container(
            qp::CommitContainerOptions {
                container: Some("blc1".into()),
                repo: Some("Bad".into()),
                pause: true,
                ..Default::default()
            },
            bollard::models::ContainerConfig::default(),
        )
        .await
    {
        Err(BError::DockerResponseServerError {
            status_code,
            message,
        }) => assert_eq!(
            (status_code, message.as_str()),
            (
                400,
                "invalid reference format: repository name must be lowercase"
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.head(), head);

    // The container holds its image.
    assert_err(
        d.remove_image("bl/base:1", Some(qp::RemoveImageOptions::default()), None)
            .await,
        409,
        &format!(
            "conflict: unable to remove repository reference \"bl/base:1\" (must force) - container {} is using its referenced image {}",
            &cid[..12],
            short(&a)
        ),
    );

    // Remove.
    d.remove_container("blc1", None::<qp::RemoveContainerOptions>)
        .await
        .unwrap();
    assert_err(
        d.inspect_container("blc1", None::<qp::InspectContainerOptions>)
            .await,
        404,
        "No such container: blc1",
    );
    assert_err(
        d.remove_container("blc1", None::<qp::RemoveContainerOptions>)
            .await,
        404,
        "No such container: blc1",
    );
    assert_eq!(d.info().await.unwrap().containers, Some(0));
    srv.assert_healthy().await;
    srv.stop().await;
}

// ---------------------------------------------------------------- events

type Ev = (String, String, String, HashMap<String, String>);

fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Ev {
    (
        kind.to_string(),
        action.to_string(),
        id.to_string(),
        attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn ev_of(m: bollard::models::EventMessage) -> Ev {
    let actor = m.actor.unwrap();
    (
        m.typ.unwrap().to_string(),
        m.action.unwrap(),
        actor.id.unwrap(),
        actor.attributes.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_history_live_and_filters() {
    let srv = Server::start().await;
    let d = &srv.docker;
    let t0 = now_secs();
    let s = Set::new_loaded(&srv).await;
    let (a, b) = (s.a.id(), s.b.id());
    d.tag_image(
        "bl/base:1",
        Some(qp::TagImageOptions {
            repo: Some("bl/ev".into()),
            tag: Some("1".into()),
        }),
    )
    .await
    .unwrap();
    d.remove_image("bl/ev:1", None::<qp::RemoveImageOptions>, None)
        .await
        .unwrap();
    let cid = d
        .create_container(
            Some(qp::CreateContainerOptions {
                name: Some("evc".into()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some("bl/child:1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    d.remove_container("evc", None::<qp::RemoveContainerOptions>)
        .await
        .unwrap();
    let until = (now_secs() + 1).to_string();

    let history = |f: Option<HashMap<String, Vec<String>>>, since: String| {
        let until = until.clone();
        async move {
            let got: Vec<_> = d
                .events(Some(qp::EventsOptions {
                    since: Some(since),
                    until: Some(until),
                    filters: f,
                }))
                .collect()
                .await;
            got.into_iter()
                .map(|m| ev_of(m.unwrap()))
                .collect::<Vec<Ev>>()
        }
    };
    let base_l: &[(&str, &str)] = &[("stage", "base")];
    let tag_ev = ev(
        "image",
        "tag",
        &a,
        &[("name", "bl/ev:1"), ("stage", "base")],
    );
    let untag_ev = ev("image", "untag", &a, &[("name", &a), ("stage", "base")]);
    let _ = base_l;
    assert_eq!(
        history(
            filters(&[("event", "tag"), ("event", "untag")]),
            t0.to_string()
        )
        .await,
        [tag_ev.clone(), untag_ev.clone()]
    );
    // Container events: see `container_events_name_the_image_as_given`.
    assert_eq!(
        history(filters(&[("type", "container")]), "0".into())
            .await
            .iter()
            .map(|e| (e.1.as_str(), e.2.as_str()))
            .collect::<Vec<_>>(),
        [("create", cid.as_str()), ("destroy", cid.as_str())]
    );
    let loads = history(
        filters(&[("event", "load"), ("label", "stage=child")]),
        "0".into(),
    )
    .await;
    assert_eq!(
        loads,
        [ev("image", "load", &b, &[("name", &b), ("stage", "child")])]
    );
    // `image` matches the Actor ID or the `name` attribute (tag stripped),
    // as dockerd's events filter does.
    let by_image: &[(&str, Vec<(&str, &str)>, Vec<Ev>)] = &[
        ("name", vec![("image", "bl/ev:1")], vec![tag_ev.clone()]),
        (
            "name without tag",
            vec![("image", "bl/ev")],
            vec![tag_ev.clone()],
        ),
        (
            "id",
            vec![("image", a.as_str()), ("event", "tag"), ("event", "untag")],
            vec![tag_ev.clone(), untag_ev.clone()],
        ),
        (
            "another name",
            vec![("image", "bl/base:1"), ("event", "tag")],
            vec![],
        ),
    ];
    for (name, f, want) in by_image {
        assert_eq!(&history(filters(f), "0".into()).await, want, "{name}");
    }
    // since after everything: nothing.
    assert_eq!(history(None, until.clone()).await, []);

    // Live: subscribe, act, receive.
    let mut live = Box::pin(d.events(Some(qp::EventsOptions {
        filters: filters(&[("type", "image")]),
        ..Default::default()
    })));
    // bollard sends the request when the stream is first polled: poll it
    // while the tag happens a little later.
    let act = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        d.tag_image(
            &b,
            Some(qp::TagImageOptions {
                repo: Some("bl/live".into()),
                tag: Some("2".into()),
            }),
        )
        .await
        .unwrap();
    };
    let (m, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(10), live.next()),
        act
    );
    let m = m.expect("live event").unwrap().unwrap();
    assert_eq!(
        ev_of(m),
        ev(
            "image",
            "tag",
            &b,
            &[("name", "bl/live:2"), ("stage", "child")]
        )
    );
    drop(live);

    // Errors.
    let err = |since: String, until: String, f| async move {
        let got: Vec<_> = d
            .events(Some(qp::EventsOptions {
                since: Some(since),
                until: Some(until),
                filters: f,
            }))
            .collect()
            .await;
        match got.into_iter().next() {
            Some(Err(BError::DockerResponseServerError {
                status_code,
                message,
            })) => (status_code, message),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        err("20".into(), "10".into(), None).await,
        (
            400,
            "`since` time (20) cannot be after `until` time (10)".to_string()
        )
    );
    // dockerd does not validate the keys of the events filter: an unknown
    // key is ignored (4 loads, tag, untag, create, destroy).
    let everything = history(None, "0".into()).await;
    assert_eq!(everything.len(), 8, "{everything:?}");
    assert_eq!(
        history(filters(&[("bogus", "1")]), "0".into()).await,
        everything
    );
    srv.assert_healthy().await;
    srv.stop().await;
}

// ---------------------------------------------------------------- registry

fn anonymous() -> Option<bollard::auth::DockerCredentials> {
    Some(bollard::auth::DockerCredentials::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_push_pull_search_auth() {
    let (Some(plain), Some(authed)) = (
        registry_harness::plain_registry(),
        registry_harness::auth_registry(),
    ) else {
        return;
    };
    let host = &plain.host;
    let repo = format!("{host}/bl/img");
    let tag = format!("{repo}:1");
    let img = base(
        vec![layer(&[("etc/r", b"registry")])],
        1_650_000_000,
        &[("org.example", "bl")],
        &[&tag],
    );
    let a = Server::start().await;
    a.load(archive(&[&img])).await;

    // Push.
    let out: Vec<_> = a
        .docker
        .push_image(
            &repo,
            Some(qp::PushImageOptions {
                tag: Some("1".into()),
                ..Default::default()
            }),
            anonymous(),
        )
        .collect()
        .await;
    let statuses: Vec<String> = out
        .into_iter()
        .map(|m| m.unwrap().status.unwrap_or_default())
        .collect();
    assert_eq!(
        statuses[0],
        format!("The push refers to repository [{repo}]")
    );
    let digest_line = statuses
        .iter()
        .find(|s| s.starts_with("1: digest: sha256:"))
        .unwrap_or_else(|| panic!("{statuses:?}"));
    let digest = digest_line[11..82].to_string();
    // Pushing an unknown image: the error is in the stream.
    let out: Vec<_> = a
        .docker
        .push_image(
            &format!("{host}/bl/none"),
            Some(qp::PushImageOptions {
                tag: Some("1".into()),
                ..Default::default()
            }),
            anonymous(),
        )
        .collect()
        .await;
    match &out[..] {
        [Ok(first), Err(BError::DockerStreamError { error })] => {
            assert_eq!(
                first.status.as_deref(),
                Some(format!("The push refers to repository [{host}/bl/none]").as_str())
            );
            assert_eq!(
                error,
                &format!("An image does not exist locally with the tag: {host}/bl/none")
            );
        }
        other => panic!("{other:?}"),
    }

    // Pull into a second server.
    let b = Server::start().await;
    let out: Vec<_> = b
        .docker
        .create_image(
            Some(qp::CreateImageOptions {
                from_image: Some(repo.clone()),
                tag: Some("1".into()),
                ..Default::default()
            }),
            None,
            anonymous(),
        )
        .collect()
        .await;
    let statuses: Vec<String> = out
        .into_iter()
        .map(|m| m.unwrap().status.unwrap_or_default())
        .collect();
    assert_eq!(statuses[0], "Pulling from bl/img");
    assert_eq!(
        statuses[statuses.len() - 2..],
        [
            format!("Digest: {digest}"),
            format!("Status: Downloaded newer image for {tag}")
        ]
    );
    let i = b.docker.inspect_image(&tag).await.unwrap();
    assert_eq!(i.id, Some(img.id()));
    assert_eq!(i.repo_digests, Some(vec![format!("{repo}@{digest}")]));
    let head = b.head();
    let out: Vec<_> = b
        .docker
        .create_image(
            Some(qp::CreateImageOptions {
                from_image: Some(repo.clone()),
                tag: Some("nope".into()),
                ..Default::default()
            }),
            None,
            anonymous(),
        )
        .collect()
        .await;
    match &out[..] {
        [
            Err(BError::DockerResponseServerError {
                status_code,
                message,
            }),
        ] => assert_eq!(
            (*status_code, message.as_str()),
            (
                404,
                format!("manifest for {repo}:nope not found: manifest unknown: manifest unknown")
                    .as_str()
            )
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.head(), head);
    // pull/push events.
    let evs: Vec<Ev> = b
        .docker
        .events(Some(qp::EventsOptions {
            since: Some("0".into()),
            until: Some((now_secs() + 1).to_string()),
            filters: filters(&[("event", "pull")]),
        }))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|m| ev_of(m.unwrap()))
        .collect();
    assert_eq!(
        evs,
        [ev(
            "image",
            "pull",
            &tag,
            &[("name", &repo), ("org.example", "bl")]
        )]
    );

    // Search: the 2.8 registry has no v1 search; an unreachable index.
    assert_err(
        a.docker
            .search_images(qp::SearchImagesOptions {
                term: format!("{host}/bl"),
                ..Default::default()
            })
            .await,
        500,
        "Unexpected status code 404",
    );
    let dead = registry_harness::free_port();
    let r = a
        .docker
        .search_images(qp::SearchImagesOptions {
            term: format!("127.0.0.1:{dead}/bl"),
            ..Default::default()
        })
        .await;
    match r {
        Err(BError::DockerResponseServerError {
            status_code,
            message,
        }) => {
            assert_eq!(status_code, 500, "{message}");
            assert!(
                message.contains(&format!("127.0.0.1:{dead}"))
                    && message.contains("connection refused"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_err(
        a.docker
            .search_images(qp::SearchImagesOptions {
                term: format!("{host}/bl"),
                limit: Some(200),
                ..Default::default()
            })
            .await,
        400,
        "Limit 200 is outside the range of [1, 100]",
    );

    // /auth (bollard has no call for it).
    let login = |u: &str, p: &str, h: &str| {
        serde_json::json!({"username": u, "password": p, "serveraddress": h})
            .to_string()
            .into_bytes()
    };
    let json = [("Content-Type", "application/json")];
    assert_eq!(
        a.raw(
            "POST",
            "/v1.41/auth",
            &json,
            login(registry_harness::USER, registry_harness::PASS, &authed.host)
        )
        .await,
        (
            200,
            "{\"IdentityToken\":\"\",\"Status\":\"Login Succeeded\"}\n".to_string()
        )
    );
    assert_eq!(
        a.raw(
            "POST",
            "/v1.41/auth",
            &json,
            login(registry_harness::USER, "wrong", &authed.host)
        )
        .await,
        (
            500,
            format!(
                "{}\n",
                serde_json::json!({"message": format!(
                    "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
                    authed.host
                )})
            )
        )
    );
    a.assert_healthy().await;
    b.assert_healthy().await;
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------- bad requests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_leave_the_store_alone() {
    let srv = Server::start().await;
    let s = Set::new_loaded(&srv).await;
    let head = srv.head();
    let before = srv.ids(true).await;
    let json_err = |m: &str| format!("{}\n", serde_json::json!({ "message": m }));
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "list: malformed filters",
            "GET",
            "/v1.41/images/json?filters=nope",
            500,
            "invalid character 'o' in literal null (expecting 'u')",
        ),
        (
            "list: filters not an object",
            "GET",
            "/v1.41/images/json?filters=%5B1%5D",
            500,
            "json: cannot unmarshal array into Go value of type map[string]map[string]bool",
        ),
        (
            "prune: malformed filters",
            "POST",
            "/v1.41/images/prune?filters=%7Bbogus",
            500,
            "invalid character 'b' looking for beginning of object key string",
        ),
        (
            "prune: unknown key",
            "POST",
            "/v1.41/images/prune?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
            400,
            "Invalid filter 'bogus'",
        ),
        (
            "events: malformed filters",
            "GET",
            "/v1.41/events?since=0&until=1&filters=nope",
            500,
            "invalid character 'o' in literal null (expecting 'u')",
        ),
        (
            "tag: bad repo",
            "POST",
            "/v1.41/images/bl%2Fbase:1/tag?repo=a%2F%2Fb",
            500,
            "invalid reference format",
        ),
        (
            "unknown route",
            "GET",
            "/v1.41/images/bl%2Fbase:1/nothing",
            404,
            "page not found",
        ),
        (
            "delete: blank",
            "DELETE",
            "/v1.41/images/%20",
            400,
            "image name cannot be blank",
        ),
        (
            "create container: not JSON",
            "POST",
            "/v1.41/containers/create",
            400,
            "Content-Type specified () must be 'application/json'",
        ),
    ];
    for (name, method, path, status, msg) in cases {
        let body = if name.starts_with("create container") {
            b"{}".to_vec()
        } else {
            Vec::new()
        };
        let got = srv.raw(method, path, &[], body).await;
        assert_eq!(got, (*status, json_err(msg)), "{name}");
        assert_eq!(srv.head(), head, "{name}");
    }

    // A client hangs up halfway through a load.
    let extra = base(
        vec![layer(&[("big", &vec![7u8; 256 << 10])])],
        1_700_000_000,
        &[],
        &["bl/partial:1"],
    );
    let bytes = archive(&[&extra]);
    {
        let mut st = UnixStream::connect(&srv.sock).await.unwrap();
        let head_lines = format!(
            "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        );
        st.write_all(head_lines.as_bytes()).await.unwrap();
        st.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
        st.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give the aborted load time to unwind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    srv.assert_healthy().await;
    assert_eq!(srv.ids(true).await, before);
    assert_err(
        srv.docker.inspect_image("bl/partial:1").await,
        404,
        "no such image: bl/partial:1: No such image: bl/partial:1",
    );
    // The same upload, whole, works afterwards.
    assert_eq!(srv.load(bytes).await, ["Loaded image: bl/partial:1\n"]);
    assert_eq!(
        srv.docker.inspect_image("bl/partial:1").await.unwrap().id,
        Some(extra.id())
    );
    let _ = s;
    srv.assert_healthy().await;
    srv.stop().await;
}

/// JSON request bodies (`/containers/create`, `/auth`, `/commit`) are read
/// into memory up to 16 MiB; a larger one is refused with 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_json_body_is_refused() {
    let srv = Server::start().await;
    Set::new_loaded(&srv).await;
    let head = srv.head();
    let big = "x".repeat(64 << 20);
    let body = serde_json::json!({"Image": "bl/base:1", "Labels": {"k": big}}).to_string();
    // The server answers and hangs up before the 64 MiB are sent, so the
    // client's writes may fail (EPIPE): write on one task, ignoring that,
    // and read the answer on another, as an HTTP client should.
    let stream = UnixStream::connect(&srv.sock).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let head = format!(
            "POST /v1.41/containers/create?name=big HTTP/1.1\r\nHost: docker\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(body.as_bytes()).await;
    });
    // Until the JSON line after the head (or the server hangs up).
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut rd, &mut buf)
                .await
                .unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            let done = text
                .split_once("\r\n\r\n")
                .is_some_and(|(_, body)| body.ends_with('\n'));
            if n == 0 || done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("no answer within 60 s");
    writer.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\n{\"message\":\"request body is larger than 16777216 bytes\"}\n"),
        "{answer}"
    );
    assert_eq!(srv.head(), head);
    srv.assert_healthy().await;
    srv.stop().await;
}

/// dockerd's container events carry `image` = the image as the client named
/// it (`Config.Image`, here `bl/child:1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_events_name_the_image_as_given() {
    let srv = Server::start().await;
    let d = &srv.docker;
    Set::new_loaded(&srv).await;
    let cid = d
        .create_container(
            Some(qp::CreateContainerOptions {
                name: Some("evc".into()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some("bl/child:1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    d.remove_container("evc", None::<qp::RemoveContainerOptions>)
        .await
        .unwrap();
    let got: Vec<Ev> = d
        .events(Some(qp::EventsOptions {
            since: Some("0".into()),
            until: Some((now_secs() + 1).to_string()),
            filters: filters(&[("type", "container")]),
        }))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|m| ev_of(m.unwrap()))
        .collect();
    let attrs: &[(&str, &str)] = &[("image", "bl/child:1"), ("name", "evc")];
    assert_eq!(
        got,
        [
            ev("container", "create", &cid, attrs),
            ev("container", "destroy", &cid, attrs),
        ]
    );
    srv.stop().await;
}
