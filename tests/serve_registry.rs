//! `strata serve`'s registry routes (pull, push, search, login) against a
//! real Debian `docker-registry` (distribution 2.8) on 127.0.0.1: exact
//! progress streams and errors over raw HTTP, `pull`/`push` events, and the
//! real docker 20.10 CLI (`/usr/bin/docker`) driving the server.
//!
//! Tools that are missing make the tests skip with a note, unless env `CI`
//! is set, where they fail.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;
use registry_harness::*;

use common::builder::*;
use common::*;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain GET to the registry: (status, body).
async fn registry_get(host: &str, path: &str, accept: &str) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, out[split + 4..].to_vec())
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------- server harness

struct Server {
    inner: common::serve::InProcess,
    sock: PathBuf,
    svc: strata::ImageService,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The JSON message stream's lines (each must end in `\r\n`).
    fn lines(&self) -> Vec<String> {
        let t = self.text();
        assert!(t.ends_with("\r\n"), "{t}");
        t[..t.len() - 2].split("\r\n").map(str::to_string).collect()
    }
    #[track_caller]
    fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(
            (self.status, self.text()),
            (
                status,
                format!("{}\n", serde_json::json!({ "message": message }))
            ),
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json")
        );
    }
    #[track_caller]
    fn assert_stream(&self) {
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json")
        );
    }
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

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let a = serve::request(&self.sock, method, path, headers, body.as_bytes().to_vec()).await;
        Resp {
            status: a.status,
            headers: a.headers,
            body: a.body,
        }
    }

    /// As the 20.10 CLI sends pull/push: anonymous `X-Registry-Auth`.
    async fn post_anon(&self, path: &str) -> Resp {
        self.send("POST", path, &[("X-Registry-Auth", "e30=")], "")
            .await
    }

    /// `pull`/`push` events so far: (Action, Actor.ID, Attributes).
    async fn registry_events(&self) -> Vec<(String, String, serde_json::Value)> {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let r = self
            .send(
                "GET",
                &format!(
                    "/v1.41/events?since=0&until={until}&filters=%7B%22event%22%3A%7B%22pull%22%3Atrue%2C%22push%22%3Atrue%7D%7D"
                ),
                &[],
                "",
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["Type"], "image", "{l}");
                assert_eq!(v["status"], v["Action"], "{l}");
                assert_eq!(v["id"], v["Actor"]["ID"], "{l}");
                (
                    v["Action"].as_str().unwrap().to_string(),
                    v["Actor"]["ID"].as_str().unwrap().to_string(),
                    v["Actor"]["Attributes"].clone(),
                )
            })
            .collect()
    }
}

fn two_layer_image(tag: &str, seed: &str) -> Img {
    base(
        vec![
            layer(&[("etc/base", seed.as_bytes()), ("bin/tool", &[7u8; 3000])]),
            layer(&[("app/data", format!("{seed}-top").as_bytes())]),
        ],
        1_650_000_000,
        &[("org.example", seed)],
        &[tag],
    )
}

/// `X-Registry-Auth` for user/password (base64url of the JSON, as the CLI).
fn auth_header(user: &str, pass: &str, server: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(
        serde_json::json!({"username": user, "password": pass, "serveraddress": server})
            .to_string(),
    )
}

// ---------------------------------------------------------------- raw HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_streams_errors_and_events() {
    let Some(reg) = plain_registry() else { return };
    let host = &reg.host;
    let repo = format!("{host}/rt/img");
    let tag = format!("{repo}:1");
    let img = two_layer_image(&tag, "serve-rt");
    let image_id = sha(&img.config);
    let diff = |i: usize| sha(&img.layers[i])[7..19].to_string();

    let a = Server::start().await;
    load_imgs(&a.svc, &[&img]).await;

    // ---- push: exact stream shape.
    let r = a
        .post_anon(&format!("/v1.41/images/{repo}/push?tag=1"))
        .await;
    r.assert_stream();
    let lines = r.lines();
    assert_eq!(
        lines[0],
        format!(r#"{{"status":"The push refers to repository [{repo}]"}}"#)
    );
    let (status_lines, pushing): (Vec<&String>, Vec<&String>) = lines[1..lines.len() - 2]
        .iter()
        .partition(|l| !l.starts_with(r#"{"status":"Pushing","#));
    let mut items: Vec<String> = status_lines.iter().map(|s| s.to_string()).collect();
    items.sort();
    let item =
        |id: &str, s: &str| format!(r#"{{"status":"{s}","progressDetail":{{}},"id":"{id}"}}"#);
    let mut want = vec![
        item(&diff(0), "Preparing"),
        item(&diff(1), "Preparing"),
        item(&diff(0), "Pushed"),
        item(&diff(1), "Pushed"),
    ];
    want.sort();
    assert_eq!(items, want);
    for p in &pushing {
        assert!(
            p.starts_with(r#"{"status":"Pushing","progressDetail":{"current":"#)
                && p.contains(r#""progress":"["#)
                && (p.ends_with(&format!(r#""id":"{}"}}"#, diff(0)))
                    || p.ends_with(&format!(r#""id":"{}"}}"#, diff(1)))),
            "{p}"
        );
    }
    // The manifest the registry now holds is the one the stream reports.
    let (st, manifest) = registry_get(
        host,
        "/v2/rt/img/manifests/1",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
    .await;
    assert_eq!(st, 200);
    let digest = sha(&manifest);
    let size = manifest.len();
    assert_eq!(
        lines[lines.len() - 2..],
        [
            format!(r#"{{"status":"1: digest: {digest} size: {size}"}}"#),
            format!(
                r#"{{"progressDetail":{{}},"aux":{{"Tag":"1","Digest":"{digest}","Size":{size}}}}}"#
            ),
        ]
    );
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let blob = |i: usize| m["layers"][i]["digest"].as_str().unwrap()[7..19].to_string();

    // Push again: every layer exists.
    let r = a
        .post_anon(&format!("/v1.41/images/{repo}/push?tag=1"))
        .await;
    r.assert_stream();
    let lines = r.lines();
    let mut mid = lines[1..lines.len() - 2].to_vec();
    mid.sort();
    let mut want = vec![
        item(&diff(0), "Preparing"),
        item(&diff(1), "Preparing"),
        item(&diff(0), "Layer already exists"),
        item(&diff(1), "Layer already exists"),
    ];
    want.sort();
    assert_eq!(mid, want);

    // ---- push errors.
    // Unknown repository: in-stream, after the first line.
    let r = a
        .post_anon(&format!("/v1.41/images/{host}/nothere/push?tag=1"))
        .await;
    r.assert_stream();
    let msg = format!("An image does not exist locally with the tag: {host}/nothere");
    assert_eq!(
        r.text(),
        format!(
            "{{\"status\":\"The push refers to repository [{host}/nothere]\"}}\r\n{{\"errorDetail\":{{\"message\":\"{msg}\"}},\"error\":\"{msg}\"}}\r\n"
        )
    );
    // No X-Registry-Auth and no auth body.
    a.send("POST", &format!("/v1.41/images/{repo}/push?tag=1"), &[], "")
        .await
        .assert_error(400, "Bad parameters and missing X-Registry-Auth: EOF");

    // ---- pull into a fresh server: exact stream shape.
    let b = Server::start().await;
    let pull_path = format!("/v1.41/images/create?fromImage={host}%2Frt%2Fimg&tag=1");
    let r = b.post_anon(&pull_path).await;
    r.assert_stream();
    let lines = r.lines();
    assert_eq!(lines[0], r#"{"status":"Pulling from rt/img","id":"1"}"#);
    assert_eq!(
        lines[lines.len() - 2..],
        [
            format!(r#"{{"status":"Digest: {digest}"}}"#),
            format!(r#"{{"status":"Status: Downloaded newer image for {tag}"}}"#),
        ]
    );
    for i in 0..2 {
        let id = blob(i);
        let per_layer: Vec<&String> = lines
            .iter()
            .filter(|l| l.ends_with(&format!(r#""id":"{id}"}}"#)))
            .collect();
        let statuses: Vec<String> = per_layer
            .iter()
            .filter(|l| !l.starts_with(r#"{"status":"Downloading","#))
            .filter(|l| !l.starts_with(r#"{"status":"Waiting","#))
            .filter(|l| !l.starts_with(r#"{"status":"Extracting","#))
            .map(|l| l.to_string())
            .collect();
        // Extracting comes between Download complete and Pull complete and
        // ends with current == total.
        let at = |s: &str| per_layer.iter().position(|l| **l == item(&id, s)).unwrap();
        let extracting: Vec<serde_json::Value> = per_layer
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with(r#"{"status":"Extracting","#))
            .map(|(n, l)| {
                assert!(
                    n > at("Download complete") && n < at("Pull complete"),
                    "{l}"
                );
                serde_json::from_str(l).unwrap()
            })
            .collect();
        let last = extracting.last().expect("an Extracting line");
        assert_eq!(
            last["progressDetail"]["current"], last["progressDetail"]["total"],
            "{last}"
        );
        assert_eq!(
            statuses,
            [
                item(&id, "Pulling fs layer"),
                item(&id, "Verifying Checksum"),
                item(&id, "Download complete"),
                item(&id, "Pull complete"),
            ],
            "layer {i}"
        );
        for d in per_layer
            .iter()
            .filter(|l| l.starts_with(r#"{"status":"Downloading","#))
        {
            assert!(
                d.starts_with(r#"{"status":"Downloading","progressDetail":{"current":"#),
                "{d}"
            );
        }
    }
    let inspect = b.svc.lookup_image(&tag).await.unwrap();
    assert_eq!(inspect.id, image_id);
    assert_eq!(inspect.repo_digests, [format!("{repo}@{digest}")]);

    // Pull again, and by digest: up to date, exact bodies.
    let r = b.post_anon(&pull_path).await;
    r.assert_stream();
    assert_eq!(
        r.text(),
        format!(
            "{{\"status\":\"Pulling from rt/img\",\"id\":\"1\"}}\r\n{{\"status\":\"Digest: {digest}\"}}\r\n{{\"status\":\"Status: Image is up to date for {tag}\"}}\r\n"
        )
    );
    let by_digest = format!("{repo}@{digest}");
    let r = b
        .post_anon(&format!(
            "/v1.41/images/create?fromImage={host}%2Frt%2Fimg&tag={}",
            digest.replace(':', "%3A")
        ))
        .await;
    r.assert_stream();
    assert_eq!(
        r.text(),
        format!(
            "{{\"status\":\"Pulling from rt/img\",\"id\":\"{by_digest}\"}}\r\n{{\"status\":\"Digest: {digest}\"}}\r\n{{\"status\":\"Status: Image is up to date for {by_digest}\"}}\r\n"
        )
    );

    // ---- pull errors before the stream: HTTP errors.
    let cases: &[(&str, String, u16, String)] = &[
        (
            "unknown tag",
            format!("/v1.41/images/create?fromImage={host}%2Frt%2Fimg&tag=nope"),
            404,
            format!("manifest for {repo}:nope not found: manifest unknown: manifest unknown"),
        ),
        (
            "unknown repo",
            format!("/v1.41/images/create?fromImage={host}%2Fnonexist&tag=1"),
            404,
            format!("manifest for {host}/nonexist:1 not found: manifest unknown: manifest unknown"),
        ),
        (
            "uppercase",
            "/v1.41/images/create?fromImage=Bad&tag=1".to_string(),
            400,
            "invalid reference format: repository name must be lowercase".to_string(),
        ),
        (
            "bad tag",
            "/v1.41/images/create?fromImage=x&tag=a%2Fb".to_string(),
            400,
            "invalid tag format".to_string(),
        ),
        (
            "bad platform",
            format!("/v1.41/images/create?fromImage={host}%2Frt%2Fimg&tag=1&platform=bogus"),
            400,
            "\"bogus\": unknown operating system or architecture: invalid argument".to_string(),
        ),
    ];
    for (name, path, status, msg) in cases {
        let r = b.post_anon(path).await;
        assert_eq!(
            (r.status, r.text()),
            (
                *status,
                format!("{}\n", serde_json::json!({ "message": msg }))
            ),
            "{name}"
        );
    }

    // ---- events: live from the routes, in order, with labels.
    let attrs = |name: &str| serde_json::json!({"name": name, "org.example": "serve-rt"});
    assert_eq!(
        a.registry_events().await,
        [
            ("push".to_string(), tag.clone(), attrs(&repo)),
            ("push".to_string(), tag.clone(), attrs(&repo)),
        ]
    );
    assert_eq!(
        b.registry_events().await,
        [
            ("pull".to_string(), tag.clone(), attrs(&repo)),
            ("pull".to_string(), tag.clone(), attrs(&repo)),
            ("pull".to_string(), by_digest.clone(), attrs(&repo)),
        ]
    );
    assert_verified(&a.svc);
    assert_verified(&b.svc);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_search_routes() {
    let (Some(plain), Some(authed)) = (plain_registry(), auth_registry()) else {
        return;
    };
    let s = Server::start().await;
    let body = |u: &str, p: &str, host: &str| {
        serde_json::json!({"username": u, "password": p, "serveraddress": host}).to_string()
    };

    // Login.
    let ok = "{\"IdentityToken\":\"\",\"Status\":\"Login Succeeded\"}\n";
    let r = s
        .send("POST", "/v1.41/auth", &[], &body(USER, PASS, &authed.host))
        .await;
    assert_eq!((r.status, r.text()), (200, ok.to_string()));
    let r = s
        .send("POST", "/v1.41/auth", &[], &body("", "", &plain.host))
        .await;
    assert_eq!((r.status, r.text()), (200, ok.to_string()));
    let r = s
        .send(
            "POST",
            "/v1.41/auth",
            &[],
            &body(USER, "wrong", &authed.host),
        )
        .await;
    r.assert_error(
        500,
        &format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            authed.host
        ),
    );
    s.send("POST", "/v1.41/auth", &[], "")
        .await
        .assert_error(500, "EOF");

    // Pull and push with credentials from X-Registry-Auth.
    let repo = format!("{}/sec/img", authed.host);
    let tag = format!("{repo}:1");
    let img = two_layer_image(&tag, "serve-auth");
    load_imgs(&s.svc, &[&img]).await;
    let good = auth_header(USER, PASS, &authed.host);
    let r = s
        .send(
            "POST",
            &format!("/v1.41/images/{repo}/push?tag=1"),
            &[("X-Registry-Auth", &good)],
            "",
        )
        .await;
    r.assert_stream();
    assert!(r.text().contains("\"aux\":{\"Tag\":\"1\""), "{}", r.text());
    // Anonymous push to the htpasswd registry fails in-stream.
    let r = s
        .post_anon(&format!("/v1.41/images/{repo}/push?tag=1"))
        .await;
    r.assert_stream();
    let last = r.lines().pop().unwrap();
    assert!(last.starts_with("{\"errorDetail\":{\"message\":"), "{last}");
    // Legacy form: the auth config as the body, no header.
    let r = s
        .send(
            "POST",
            &format!("/v1.41/images/{repo}/push?tag=1"),
            &[],
            &body(USER, PASS, &authed.host),
        )
        .await;
    r.assert_stream();
    assert!(r.text().contains("\"aux\":{\"Tag\":\"1\""), "{}", r.text());

    // Search: Docker's validation, then the 2.8 registry's missing v1 API.
    let term = format!("{}%2Ftest", plain.host);
    let cases: &[(&str, String, u16, &str)] = &[
        (
            "no v1 search",
            format!("term={term}"),
            500,
            "Unexpected status code 404",
        ),
        (
            "limit syntax",
            format!("term={term}&limit=x"),
            500,
            "strconv.Atoi: parsing \"x\": invalid syntax",
        ),
        (
            "limit range",
            format!("term={term}&limit=200"),
            400,
            "Limit 200 is outside the range of [1, 100]",
        ),
        (
            "unknown filter",
            format!("term={term}&filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D"),
            400,
            "Invalid filter 'bogus'",
        ),
        (
            "bad bool",
            format!("term={term}&filters=%7B%22is-official%22%3A%7B%22maybe%22%3Atrue%7D%7D"),
            400,
            "Invalid filter 'is-official=[maybe]'",
        ),
        (
            "bad stars",
            format!("term={term}&filters=%7B%22stars%22%3A%7B%22lots%22%3Atrue%7D%7D"),
            400,
            "Invalid filter 'stars=lots'",
        ),
    ];
    for (name, q, status, msg) in cases {
        let r = s
            .send("GET", &format!("/v1.41/images/search?{q}"), &[], "")
            .await;
        assert_eq!(
            (r.status, r.text()),
            (
                *status,
                format!("{}\n", serde_json::json!({ "message": msg }))
            ),
            "{name}"
        );
    }
    s.stop().await;
}

// ---------------------------------------------------------------- docker CLI

fn have_docker() -> bool {
    dockerd::have(&[dockerd::DOCKER], "docker CLI against strata serve")
}

struct Cli<'a> {
    sock: &'a Path,
    config: tempfile::TempDir,
}

impl Cli<'_> {
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(dockerd::DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// First line, sorted middle lines, last lines: the parts of a CLI
/// progress transcript that do not depend on layer concurrency.
fn shape(out: &str, tail: usize) -> (String, Vec<String>, Vec<String>) {
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    let n = lines.len();
    assert!(n > tail, "{out}");
    let mut mid: Vec<String> = lines[1..n - tail]
        .iter()
        .filter(|l| !l.ends_with(": Waiting"))
        .cloned()
        .collect();
    mid.sort();
    (lines[0].clone(), mid, lines[n - tail..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_push_pull_login_search() {
    if !have_docker() {
        return;
    }
    let (Some(plain), Some(authed)) = (plain_registry(), auth_registry()) else {
        return;
    };
    let host = &plain.host;
    let repo = format!("{host}/cli/img");
    let tag = format!("{repo}:1");
    let img = two_layer_image(&tag, "serve-cli");
    let diff = |i: usize| sha(&img.layers[i])[7..19].to_string();

    let a = Server::start().await;
    load_imgs(&a.svc, &[&img]).await;
    let cli_a = Cli {
        sock: &a.sock,
        config: tempfile::tempdir().unwrap(),
    };

    // docker push.
    let (rc, out, err) = cli_a.run(&["push", &tag]).await;
    assert_eq!((rc, err.as_str()), (0, ""), "{out}");
    let (_, manifest) = registry_get(
        host,
        "/v2/cli/img/manifests/1",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
    .await;
    let digest = sha(&manifest);
    let mut mid = vec![
        format!("{}: Preparing", diff(0)),
        format!("{}: Preparing", diff(1)),
        format!("{}: Pushed", diff(0)),
        format!("{}: Pushed", diff(1)),
    ];
    mid.sort();
    assert_eq!(
        shape(&out, 1),
        (
            format!("The push refers to repository [{repo}]"),
            mid,
            vec![format!("1: digest: {digest} size: {}", manifest.len())]
        )
    );
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let blob = |i: usize| m["layers"][i]["digest"].as_str().unwrap()[7..19].to_string();

    // docker pull by tag into a fresh server, then again, then by digest.
    let b = Server::start().await;
    let cli_b = Cli {
        sock: &b.sock,
        config: tempfile::tempdir().unwrap(),
    };
    let (rc, out, err) = cli_b.run(&["pull", &tag]).await;
    assert_eq!((rc, err.as_str()), (0, ""), "{out}");
    let mut mid = Vec::new();
    for i in 0..2 {
        for s in [
            "Pulling fs layer",
            "Verifying Checksum",
            "Download complete",
            "Pull complete",
        ] {
            mid.push(format!("{}: {s}", blob(i)));
        }
    }
    mid.sort();
    assert_eq!(
        shape(&out, 3),
        (
            "1: Pulling from cli/img".to_string(),
            mid,
            vec![
                format!("Digest: {digest}"),
                format!("Status: Downloaded newer image for {tag}"),
                tag.clone(),
            ]
        )
    );
    let again = cli_b.run(&["pull", &tag]).await;
    assert_eq!(
        again,
        (
            0,
            format!(
                "1: Pulling from cli/img\nDigest: {digest}\nStatus: Image is up to date for {tag}\n{tag}\n"
            ),
            String::new()
        )
    );
    let by_digest = format!("{repo}@{digest}");
    let (rc, out, err) = cli_b.run(&["pull", &by_digest]).await;
    assert_eq!(
        (rc, out, err),
        (
            0,
            format!(
                "{by_digest}: Pulling from cli/img\nDigest: {digest}\nStatus: Image is up to date for {by_digest}\n{by_digest}\n"
            ),
            String::new()
        )
    );
    // By digest into a third, empty server: downloads.
    let c = Server::start().await;
    let cli_c = Cli {
        sock: &c.sock,
        config: tempfile::tempdir().unwrap(),
    };
    let (rc, out, err) = cli_c.run(&["pull", &by_digest]).await;
    assert_eq!((rc, err.as_str()), (0, ""), "{out}");
    assert!(
        out.ends_with(&format!(
            "Digest: {digest}\nStatus: Downloaded newer image for {by_digest}\n{by_digest}\n"
        )),
        "{out}"
    );
    assert_eq!(
        c.svc.lookup_image(&by_digest).await.unwrap().id,
        sha(&img.config)
    );

    // Pull errors: HTTP error before the stream.
    let (rc, out, err) = cli_b.run(&["pull", &format!("{host}/nonexist:1")]).await;
    assert_eq!(
        (rc, out.as_str(), err),
        (
            1,
            "",
            format!(
                "Error response from daemon: manifest for {host}/nonexist:1 not found: manifest unknown: manifest unknown\n"
            )
        )
    );

    // docker search against a 2.8 registry (no v1 search API).
    let (rc, out, err) = cli_b.run(&["search", &format!("{host}/test")]).await;
    assert_eq!(
        (rc, out.as_str(), err.as_str()),
        (
            1,
            "",
            "Error response from daemon: Unexpected status code 404\n"
        )
    );

    // docker login with htpasswd, then push with the stored credentials.
    let (rc, out, err) = cli_a
        .run(&["login", "-u", USER, "-p", "wrong", &authed.host])
        .await;
    assert_eq!((rc, out.as_str()), (1, ""), "{err}");
    assert!(
        err.ends_with(&format!(
            "Error response from daemon: login attempt to http://{}/v2/ failed with status: 401 Unauthorized\n",
            authed.host
        )),
        "{err}"
    );
    let (rc, out, err) = cli_a
        .run(&["login", "-u", USER, "-p", PASS, &authed.host])
        .await;
    assert_eq!((rc, out.as_str()), (0, "Login Succeeded\n"), "{err}");
    let stored = std::fs::read_to_string(cli_a.config.path().join("config.json")).unwrap();
    assert!(stored.contains(&authed.host), "{stored}");
    let sec = format!("{}/cli/sec:1", authed.host);
    let (rc, _, err) = cli_a.run(&["tag", &tag, &sec]).await;
    assert_eq!((rc, err.as_str()), (0, ""));
    let (rc, out, err) = cli_a.run(&["push", &sec]).await;
    assert_eq!((rc, err.as_str()), (0, ""), "{out}");
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/cli/sec]\n",
            authed.host
        )),
        "{out}"
    );
    // Without credentials the same push fails.
    let cli_anon = Cli {
        sock: &a.sock,
        config: tempfile::tempdir().unwrap(),
    };
    let (rc, _, err) = cli_anon.run(&["push", &sec]).await;
    assert_eq!(rc, 1, "{err}");
    assert!(!err.is_empty());

    a.stop().await;
    b.stop().await;
    c.stop().await;
}
