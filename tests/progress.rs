//! Progress display and push/pull events against a real `docker-registry`:
//! the `strata` CLI's plain lines (stdout not a terminal), its indicatif
//! bars on a pseudo-terminal (`script`), `Extracting` in the pull stream of
//! `POST /images/create`, and the `ImagePushed` event (audit log, verify,
//! `/events`, RepoDigests).

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;
use registry_harness::*;

use bytes::Bytes;
use common::builder::*;
use common::*;
use http_body_util::{BodyExt, Full};
use std::path::Path;
use std::process::Command;
use tokio::net::UnixStream;

/// Deterministic bytes that gzip cannot shrink much (an LCG).
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// A two-layer image: a small layer and one of ~1 MB of noise, so that
/// byte progress (`Downloading`, `Extracting`, `Pushing`) has several steps.
fn image(tag: &str, seed: &str) -> Img {
    base(
        vec![
            layer(&[("etc/seed", seed.as_bytes())]),
            layer(&[("data/blob", &noise(1 << 20, seed.len() as u32 + 7))]),
        ],
        1_650_000_000,
        &[("org.example", seed)],
        &[tag],
    )
}

fn short(digest: &str) -> String {
    digest.trim_start_matches("sha256:")[..12].to_string()
}

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

fn strata(root: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("STRATA_ROOT")
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .output()
        .unwrap();
    Out {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap_or(-1),
    }
}

fn ok(root: &Path, args: &[&str]) -> String {
    let o = strata(root, args);
    assert_eq!(o.code, 0, "strata {args:?} failed: {}", o.stderr);
    o.stdout
}

/// Run strata on a pseudo-terminal (util-linux `script`): what the terminal got.
fn on_tty(root: &Path, args: &[&str]) -> String {
    let mut cmd = format!("{} --root {}", env!("CARGO_BIN_EXE_strata"), root.display());
    for a in args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("STRATA_ROOT")
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "strata {args:?} on a tty: {text}"
    );
    text
}

fn have_script() -> bool {
    dockerd::have(&["script"], "progress bar tests")
}

/// `lines` split into: the lines before the first `<id>: …` line, the
/// `<id>: …` lines, and the lines after them.
fn split_items(lines: &[&str], ids: &[String]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let is_item = |l: &&str| ids.iter().any(|id| l.starts_with(&format!("{id}: ")));
    let first = lines.iter().position(&is_item).unwrap_or(lines.len());
    let last = lines.iter().rposition(is_item).map_or(first, |i| i + 1);
    (
        lines[..first].iter().map(|s| s.to_string()).collect(),
        lines[first..last].iter().map(|s| s.to_string()).collect(),
        lines[last..].iter().map(|s| s.to_string()).collect(),
    )
}

/// The statuses of `id`, in order.
fn of(items: &[String], id: &str) -> Vec<String> {
    let p = format!("{id}: ");
    items
        .iter()
        .filter_map(|l| l.strip_prefix(&p).map(str::to_string))
        .collect()
}

/// Layer blob digests of a pushed manifest, bottom first.
fn manifest_layers(host: &str, path: &str, tag: &str) -> Vec<String> {
    let url = format!("http://{host}/v2/{path}/manifests/{tag}");
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {url}");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn diff_ids(img: &Img) -> Vec<String> {
    let cfg: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
    cfg["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cli_plain_lines_audit_and_tty_bars() {
    let Some(reg) = plain_registry() else { return };
    let host = &reg.host;
    let repo = format!("{host}/progress/cli");
    let tag = format!("{repo}:1");
    let img = image(&tag, "cli-plain");
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("img.tar");
    std::fs::write(&archive_path, archive(&[&img])).unwrap();
    let a = dir.path().join("a");
    assert_eq!(
        ok(&a, &["load", "-i", archive_path.to_str().unwrap()]),
        format!("Loaded image: {tag}\n")
    );

    // ---- push, plain lines: exactly the CLI's non-terminal output.
    let out = ok(&a, &["push", &tag]);
    let layers = manifest_layers(host, "progress/cli", "1");
    let diffs: Vec<String> = diff_ids(&img).iter().map(|d| short(d)).collect();
    let lines: Vec<&str> = out.lines().collect();
    let (head, items, tail) = split_items(&lines, &diffs);
    assert_eq!(
        head,
        [format!("The push refers to repository [{repo}]")],
        "{out}"
    );
    // Preparing top first, then per layer Pushed (uploads run concurrently).
    assert_eq!(
        items[..2],
        [
            format!("{}: Preparing", diffs[1]),
            format!("{}: Preparing", diffs[0])
        ],
        "{out}"
    );
    for d in &diffs {
        assert_eq!(of(&items, d), ["Preparing", "Pushed"], "{d}: {out}");
    }
    assert_eq!(items.len(), 4, "{out}");
    let digest = {
        let t = tail.first().expect("digest line");
        let rest = t.strip_prefix("1: digest: ").expect(t);
        rest.split(' ').next().unwrap().to_string()
    };
    let manifest_size = {
        let url = format!("http://{host}/v2/progress/cli/manifests/1");
        let o = Command::new("curl")
            .args([
                "-sf",
                "-H",
                "Accept: application/vnd.docker.distribution.manifest.v2+json",
                &url,
            ])
            .output()
            .unwrap();
        o.stdout.len()
    };
    assert_eq!(
        tail,
        [format!("1: digest: {digest} size: {manifest_size}")],
        "{out}"
    );

    // ---- the push is an event: audit log, verify, RepoDigests.
    let log = ok(&a, &["audit", "log", "--kind", "image-pushed", "--json"]);
    let recs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1, "{log}");
    assert_eq!(recs[0]["kind"], "image-pushed", "{log}");
    assert_eq!(recs[0]["image"], img.id(), "{log}");
    assert_eq!(recs[0]["subject"], format!("{repo}@{digest}"), "{log}");
    assert_verify_ok(&a);
    let inspect: serde_json::Value = serde_json::from_str(&ok(&a, &["inspect", &tag])).unwrap();
    assert_eq!(
        inspect[0]["RepoDigests"],
        serde_json::json!([format!("{repo}@{digest}")])
    );

    // ---- pull, plain lines.
    let b = dir.path().join("b");
    let out = ok(&b, &["pull", &tag]);
    let blobs: Vec<String> = layers.iter().map(|d| short(d)).collect();
    let lines: Vec<&str> = out.lines().collect();
    let (head, items, tail) = split_items(&lines, &blobs);
    assert_eq!(head, ["1: Pulling from progress/cli"], "{out}");
    assert_eq!(
        items[..2],
        [
            format!("{}: Pulling fs layer", blobs[0]),
            format!("{}: Pulling fs layer", blobs[1])
        ],
        "{out}"
    );
    for d in &blobs {
        assert_eq!(
            of(&items, d),
            [
                "Pulling fs layer",
                "Verifying Checksum",
                "Download complete",
                "Pull complete"
            ],
            "{d}: {out}"
        );
    }
    // Pull complete bottom first, after every download.
    assert_eq!(
        items[items.len() - 2..],
        [
            format!("{}: Pull complete", blobs[0]),
            format!("{}: Pull complete", blobs[1])
        ],
        "{out}"
    );
    assert_eq!(
        tail,
        [
            format!("Digest: {digest}"),
            format!("Status: Downloaded newer image for {tag}"),
            tag.clone(),
        ],
        "{out}"
    );
    assert_verify_ok(&b);
    // Quiet: the reference only.
    let c = dir.path().join("c");
    assert_eq!(ok(&c, &["pull", "-q", &tag]), format!("{tag}\n"));

    // ---- on a terminal: indicatif bars, drawn in place.
    if !have_script() {
        return;
    }
    let d = dir.path().join("d");
    let tty = on_tty(&d, &["pull", &tag]);
    assert_tty_bars(&tty, "pull");
    for b in &blobs {
        assert!(tty.contains(&format!("{b}: Pull complete")), "{tty:?}");
    }
    assert!(tty.contains("1: Pulling from progress/cli"), "{tty:?}");
    assert!(
        tty.contains(&format!("Status: Downloaded newer image for {tag}")),
        "{tty:?}"
    );
    // Status lines come after the bars.
    let last_bar = tty.rfind("Pull complete").unwrap();
    assert!(
        tty.find(&format!("Digest: {digest}")).unwrap() > last_bar,
        "{tty:?}"
    );

    let tty = on_tty(&d, &["push", &tag]);
    assert_tty_bars(&tty, "push");
    for x in &diffs {
        assert!(
            tty.contains(&format!("{x}: Layer already exists")),
            "{tty:?}"
        );
    }
    assert!(
        tty.contains(&format!("1: digest: {digest} size: {manifest_size}")),
        "{tty:?}"
    );

    let e = dir.path().join("e");
    let tty = on_tty(&e, &["load", "-i", archive_path.to_str().unwrap()]);
    assert_tty_bars(&tty, "load");
    assert!(
        tty.contains("Loading [") && tty.contains("1.06 MB/1.06 MB"),
        "{tty:?}"
    );
    assert!(tty.contains(&format!("Loaded image: {tag}")), "{tty:?}");
}

/// `strata audit verify` passes.
fn assert_verify_ok(root: &Path) {
    let verify = ok(root, &["audit", "verify"]);
    assert!(
        verify.starts_with("ok: ")
            && verify.ends_with(
                " events, hash chain intact, tables equal a replay of the log, blobs intact\n"
            ),
        "{verify}"
    );
}

/// indicatif's frames: lines cleared / rewritten with ANSI escapes.
fn assert_tty_bars(tty: &str, what: &str) {
    assert!(
        tty.contains("\u{1b}[2K") || tty.contains("\u{1b}[1A"),
        "{what}: no progress bar frames in {tty:?}"
    );
}

// ---------------------------------------------------------------- API

struct Server {
    inner: common::serve::InProcess,
    sock: std::path::PathBuf,
    svc: strata::ImageService,
}

impl Server {
    async fn start() -> Server {
        let inner = common::serve::InProcess::start().await;
        let (sock, svc) = (inner.sock.clone(), inner.svc.clone());
        Server { inner, sock, svc }
    }

    async fn stop(mut self) {
        let r = self.inner.shutdown().await;
        assert!(r.is_ok(), "{r:?}");
    }

    async fn send(&self, method: &str, path: &str) -> (u16, String) {
        let stream = UnixStream::connect(&self.sock).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "docker")
            .header("X-Registry-Auth", "e30=")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// `push` image events so far: (Actor.ID, Attributes).
    async fn push_events(&self) -> Vec<(String, serde_json::Value)> {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let (status, text) = self
            .send(
                "GET",
                &format!(
                    "/v1.41/events?since=0&until={until}&filters=%7B%22event%22%3A%7B%22push%22%3Atrue%7D%7D"
                ),
            )
            .await;
        assert_eq!(status, 200, "{text}");
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(
                    (&v["Type"], &v["Action"], &v["status"], &v["id"]),
                    (
                        &serde_json::json!("image"),
                        &serde_json::json!("push"),
                        &serde_json::json!("push"),
                        &v["Actor"]["ID"]
                    ),
                    "{l}"
                );
                (
                    v["Actor"]["ID"].as_str().unwrap().to_string(),
                    v["Actor"]["Attributes"].clone(),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_extracting_and_push_event() {
    let Some(reg) = plain_registry() else { return };
    let host = &reg.host;
    let repo = format!("{host}/progress/api");
    let tag = format!("{repo}:1");
    let img = image(&tag, "api-stream");
    let a = Server::start().await;
    load_imgs(&a.svc, &[&img]).await;

    // ---- push over the API: the event comes from the log.
    let (status, text) = a
        .send("POST", &format!("/v1.41/images/{repo}/push?tag=1"))
        .await;
    assert_eq!(status, 200, "{text}");
    let aux = text
        .lines()
        .find(|l| l.contains("\"aux\""))
        .unwrap_or_else(|| panic!("{text}"));
    let aux: serde_json::Value = serde_json::from_str(aux).unwrap();
    let digest = aux["aux"]["Digest"].as_str().unwrap().to_string();
    assert_eq!(
        a.push_events().await,
        [(
            tag.clone(),
            serde_json::json!({"name": repo, "org.example": "api-stream"})
        )]
    );
    let pushed: Vec<strata::EventBody> = a
        .svc
        .store()
        .events(1, u64::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .filter(|b| matches!(b, strata::EventBody::ImagePushed { .. }))
        .collect();
    assert_eq!(
        pushed,
        [strata::EventBody::ImagePushed {
            reference: tag.clone(),
            image: img.id(),
            digest: digest.clone(),
            repository: repo.clone(),
        }]
    );
    assert_eq!(
        a.svc.lookup_image(&tag).await.unwrap().repo_digests,
        [format!("{repo}@{digest}")]
    );
    assert_verified(&a.svc);
    // A second push (layers exist) is another event.
    let (status, text) = a
        .send("POST", &format!("/v1.41/images/{repo}/push?tag=1"))
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(a.push_events().await.len(), 2);
    assert_verified(&a.svc);
    a.stop().await;

    // ---- pull over the API: Extracting between Download complete and Pull complete.
    let layers = manifest_layers(host, "progress/api", "1");
    let b = Server::start().await;
    let (status, text) = b
        .send(
            "POST",
            &format!("/v1.41/images/create?fromImage={host}%2Fprogress%2Fapi&tag=1"),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let msgs: Vec<serde_json::Value> = text
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sizes = blob_sizes(host, "progress/api", &layers);
    for (d, size) in layers.iter().zip(&sizes) {
        let id = short(d);
        let mine: Vec<&serde_json::Value> = msgs.iter().filter(|m| m["id"] == id).collect();
        let statuses: Vec<&str> = mine.iter().map(|m| m["status"].as_str().unwrap()).collect();
        let pos = |s: &str| statuses.iter().position(|x| *x == s).unwrap();
        let first_x = pos("Extracting");
        let last_x = statuses.iter().rposition(|x| *x == "Extracting").unwrap();
        assert!(
            pos("Download complete") < first_x && last_x < pos("Pull complete"),
            "{id}: {statuses:?}"
        );
        assert!(
            statuses[first_x..=last_x]
                .iter()
                .all(|s| *s == "Extracting"),
            "{id}: {statuses:?}"
        );
        // The last one: all bytes, in Docker's wire shape.
        assert_eq!(
            *mine[last_x],
            serde_json::json!({
                "status": "Extracting",
                "progressDetail": {"current": size, "total": size},
                "progress": strata::server::registry::progress_bar(*size, *size),
                "id": id,
            }),
            "{text}"
        );
        // Current grows; the total is the blob size.
        let currents: Vec<u64> = mine[first_x..=last_x]
            .iter()
            .map(|m| {
                assert_eq!(m["progressDetail"]["total"], *size);
                m["progressDetail"]["current"].as_u64().unwrap()
            })
            .collect();
        assert!(currents.windows(2).all(|w| w[0] < w[1]), "{currents:?}");
    }
    // The big layer reports in steps (every 1 % of ~1 MB).
    let big = short(&layers[1]);
    let steps = msgs
        .iter()
        .filter(|m| m["id"] == big && m["status"] == "Extracting")
        .count();
    assert!(steps > 10, "{steps} Extracting messages for {big}");
    assert_verified(&b.svc);
    b.stop().await;
}

/// Sizes of blobs in the registry (HEAD Content-Length).
fn blob_sizes(host: &str, path: &str, digests: &[String]) -> Vec<u64> {
    digests
        .iter()
        .map(|d| {
            let url = format!("http://{host}/v2/{path}/blobs/{d}");
            let o = Command::new("curl").args(["-sfI", &url]).output().unwrap();
            let text = String::from_utf8(o.stdout).unwrap();
            text.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or_else(|| panic!("HEAD {url}: {text}"))
        })
        .collect()
}
