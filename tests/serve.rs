//! `strata serve` end to end: the server runs in-process on a temporary
//! unix socket and is driven (a) with raw HTTP/1.1, checking exact status
//! codes, headers and bodies, and (b) with the real docker 20.10 CLI
//! (`/usr/bin/docker`) when it is installed.

mod common;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

// ---------------------------------------------------------------- harness

struct Server {
    inner: common::serve::InProcess,
    sock: PathBuf,
    svc: strata::ImageService,
}

impl Server {
    async fn start() -> Server {
        let inner = common::serve::InProcess::start().await;
        let (sock, svc) = (inner.sock.clone(), inner.svc.clone());
        Server { inner, sock, svc }
    }

    async fn stop(mut self) -> PathBuf {
        let r = self.inner.shutdown().await;
        assert!(r.is_ok(), "{r:?}");
        self.sock.clone()
    }

    async fn req(&self, method: &str, path: &str) -> Resp {
        self.send(method, path, &[], Vec::new()).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let a = serve::request(&self.sock, method, path, headers, body).await;
        Resp {
            status: a.status,
            headers: a.headers,
            body: a.body,
        }
    }

    async fn load(&self, fixture_name: &str) -> Resp {
        self.send(
            "POST",
            "/v1.41/images/load?quiet=1",
            &[("Content-Type", "application/x-tar")],
            read_fixture(fixture_name),
        )
        .await
    }
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
    fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).map(|v| v.to_str().unwrap())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    /// Assert an error response: status, JSON content type, exact body.
    #[track_caller]
    fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(
            (self.status, self.text()),
            (
                status,
                format!("{}\n", serde_json::json!({ "message": message }))
            ),
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// Raw bytes on the wire for one request (to see header name casing).
async fn raw_exchange(sock: &Path, request: &str) -> String {
    let mut s = UnixStream::connect(sock).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn chain_short() -> &'static str {
    &CHAIN_ID[7..19]
}

// ---------------------------------------------------------------- raw HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_version_and_routing() {
    let srv = Server::start().await;

    let wire = raw_exchange(
        &srv.sock,
        "HEAD /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head: Vec<&str> = wire.lines().collect();
    assert_eq!(head[0], "HTTP/1.1 200 OK", "{wire}");
    for line in [
        "Api-Version: 1.41",
        "Docker-Experimental: false",
        "Ostype: linux",
        "Cache-Control: no-cache, no-store, must-revalidate",
        "Pragma: no-cache",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Length: 0",
        "Server: strata/0.1.0 (linux)",
    ] {
        assert!(head.contains(&line), "missing {line:?} in {wire}");
    }

    for path in ["/_ping", "/v1.41/_ping", "/v1.12/_ping"] {
        let r = srv.req("GET", path).await;
        assert_eq!((r.status, r.text()), (200, "OK".to_string()), "{path}");
        assert_eq!(r.header("content-length"), Some("2"));
        assert_eq!(r.header("api-version"), Some("1.41"));
    }

    // Version checks: too old is plain text (API < 1.24), too new JSON; no
    // Docker-Experimental header on either.
    let r = srv.req("GET", "/v1.11/version").await;
    assert_eq!(
        (r.status, r.text(), r.header("content-type")),
        (
            400,
            "client version 1.11 is too old. Minimum supported API version is 1.12, please upgrade your client to a newer version\n".to_string(),
            Some("text/plain; charset=utf-8")
        )
    );
    assert_eq!(r.header("docker-experimental"), None);
    assert_eq!(r.header("api-version"), Some("1.41"));
    let r = srv.req("GET", "/v1.99/version").await;
    r.assert_error(
        400,
        "client version 1.99 is too new. Maximum supported API version is 1.41",
    );

    // Unknown path or method: 404 without the version headers.
    for (m, p) in [
        ("GET", "/nope"),
        ("PUT", "/images/json"),
        ("GET", "/v1.41/images"),
    ] {
        let r = srv.req(m, p).await;
        r.assert_error(404, "page not found");
        assert_eq!(r.header("api-version"), None, "{m} {p}");
    }
    let r = srv.req("OPTIONS", "/anything").await;
    assert_eq!((r.status, r.text()), (200, String::new()));

    // /version
    let r = srv.req("GET", "/v1.41/version").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["ApiVersion"], "1.41");
    assert_eq!(v["MinAPIVersion"], "1.12");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Components"][0]["Name"], "Engine");
    assert_eq!(v["Components"][0]["Details"]["ApiVersion"], "1.41");
    assert!(
        r.text()
            .starts_with("{\"Platform\":{\"Name\":\"strata\"},\"Components\":[")
    );

    // Registry routes are served (tests/serve_registry.rs); a pull without a
    // registry answers an HTTP error before any stream, as dockerd does.
    let r = srv
        .req("POST", "/v1.41/images/create?fromImage=UPPER&tag=1")
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("api-version"), Some("1.41"));
    // The container filesystem routes and commit are served: unknown container.
    for (m, p) in [
        ("POST", "/v1.41/commit?container=c1"),
        ("GET", "/v1.41/containers/c1/archive?path=/"),
        ("PUT", "/v1.41/containers/c1/archive?path=/"),
        ("GET", "/v1.41/containers/c1/export"),
    ] {
        srv.req(m, p)
            .await
            .assert_error(404, "No such container: c1");
    }

    // /info on an empty store.
    let r = srv.req("GET", "/v1.41/info").await;
    assert_eq!(r.status, 200);
    let info = r.json();
    assert_eq!(info["Images"], 0);
    assert_eq!(info["Containers"], 0);
    assert_eq!(info["Driver"], "vfs");
    assert_eq!(info["IndexServerAddress"], "https://index.docker.io/v1/");
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    assert_eq!(info["Swarm"]["ControlAvailable"], false);
    assert_eq!(info["OSType"], "linux");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_routes() {
    let srv = Server::start().await;

    // load: JSON message stream, \r\n separated.
    let r = srv.load("chain-all.tar").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    assert!(
        text.starts_with("{\"stream\":\"Loaded image: dev/chain:1\\n\"}\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("\r\n").count(), 7, "{text}");
    for line in text.split_terminator("\r\n") {
        assert!(line.starts_with("{\"stream\":\"Loaded image"), "{line}");
    }
    let r = srv
        .send("POST", "/v1.41/images/load", &[], b"not a tar".to_vec())
        .await;
    assert_eq!(r.status, 200);
    let err: serde_json::Value = serde_json::from_str(r.text().trim_end()).unwrap();
    assert_eq!(err["error"], err["errorDetail"]["message"]);
    assert!(
        r.text().ends_with("\r\n") && r.text().starts_with("{\"errorDetail\""),
        "{}",
        r.text()
    );

    // list: the library's listing, encoded like Go's json.Encoder.
    let want = srv
        .svc
        .images(strata::Filters::new(), false, false)
        .await
        .unwrap();
    let r = srv.req("GET", "/v1.41/images/json").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!("{}\n", serde_json::to_string(&want).unwrap())
    );
    assert_eq!(want.len(), 1);
    assert_eq!(r.json()[0]["RepoTags"], serde_json::json!(["dev/chain:1"]));
    let all = srv.req("GET", "/images/json?all=1").await.json();
    assert_eq!(all.as_array().unwrap().len(), 6);
    let dangling = srv
        .req(
            "GET",
            "/images/json?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D",
        )
        .await;
    assert_eq!(
        (dangling.status, dangling.text()),
        (200, "[]\n".to_string())
    );
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "bad json",
            "/images/json?filters=notjson",
            500,
            "invalid character 'o' in literal null (expecting 'u')",
        ),
        (
            "unknown key",
            "/images/json?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
            400,
            "Invalid filter 'bogus'",
        ),
        (
            "bad dangling",
            "/images/json?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D",
            400,
            "Invalid filter 'dangling=[maybe]'",
        ),
        (
            "before unknown",
            "/images/json?filters=%7B%22before%22%3A%5B%22nosuch%3A1%22%5D%7D",
            404,
            "No such image: nosuch:1",
        ),
        (
            "inspect unknown",
            "/v1.41/images/nosuch:1/json",
            404,
            "no such image: nosuch:1: No such image: nosuch:1",
        ),
        (
            "history unknown",
            "/v1.41/images/nosuch/history",
            404,
            "No such image: nosuch:latest",
        ),
        (
            "save unknown tag",
            "/v1.41/images/get?names=dev%2Fchain%3A9",
            404,
            "reference does not exist",
        ),
        (
            "save bad ref",
            "/v1.41/images/get?names=Bad",
            400,
            "invalid reference format: repository name must be lowercase",
        ),
    ];
    for (name, path, status, msg) in cases {
        let r = srv.req("GET", path).await;
        assert_eq!(r.status, *status, "{name}: {}", r.text());
        r.assert_error(*status, msg);
    }

    // inspect and history by reference, by ID prefix, with a slash in the name.
    let want = srv.svc.lookup_image("dev/chain:1").await.unwrap();
    let want = format!("{}\n", serde_json::to_string(&want).unwrap());
    for path in [
        "/v1.41/images/dev/chain:1/json",
        &format!("/images/{}/json", chain_short()),
        &format!("/images/{CHAIN_ID}/json"),
    ] {
        let r = srv.req("GET", path).await;
        assert_eq!((r.status, r.text()), (200, want.clone()), "{path}");
    }
    let inspect = srv.req("GET", "/images/dev/chain:1/json").await.json();
    assert_eq!(inspect["Id"], CHAIN_ID);
    assert_eq!(inspect["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
    let golden: serde_json::Value =
        serde_json::from_slice(&read_fixture("dev_chain_1.inspect.json")).unwrap();
    let golden = if golden.is_array() {
        golden[0].clone()
    } else {
        golden
    };
    for key in [
        "Id", "RepoTags", "Parent", "Created", "Config", "RootFS", "Size",
    ] {
        assert_eq!(inspect[key], golden[key], "{key}");
    }
    let hist = srv.req("GET", "/v1.41/images/dev/chain:1/history").await;
    let want = srv.svc.image_history("dev/chain:1").await.unwrap();
    assert_eq!(
        hist.text(),
        format!("{}\n", serde_json::to_string(&want).unwrap())
    );
    assert_eq!(hist.json()[0]["Id"], CHAIN_ID);
    assert_eq!(hist.json()[0]["Tags"], serde_json::json!(["dev/chain:1"]));

    // tag: 201 with an empty body; the route's own status codes.
    let r = srv
        .req(
            "POST",
            "/v1.41/images/dev/chain:1/tag?repo=127.0.0.1%3A5055%2Ftest&tag=1",
        )
        .await;
    assert_eq!(
        (r.status, r.text(), r.header("content-length")),
        (201, String::new(), Some("0"))
    );
    let r = srv
        .req(
            "POST",
            "/v1.41/images/dev/chain:1/tag?repo=serve%2Fx%3Abar&tag=baz",
        )
        .await;
    assert_eq!(r.status, 201);
    let tags = srv.req("GET", "/images/dev/chain:1/json").await.json()["RepoTags"].clone();
    assert_eq!(
        tags,
        serde_json::json!(["127.0.0.1:5055/test:1", "dev/chain:1", "serve/x:baz"])
    );
    let digest = "sha256:".to_string() + &"a".repeat(64);
    let cases: Vec<(&str, String, u16, String)> = vec![
        (
            "uppercase",
            "repo=Foo".into(),
            500,
            "invalid reference format: repository name must be lowercase".into(),
        ),
        (
            "bad tag",
            "repo=foo&tag=-bad".into(),
            500,
            "invalid tag format".into(),
        ),
        (
            "empty repo",
            "repo=".into(),
            500,
            "invalid reference format".into(),
        ),
        (
            "sha256 name",
            "repo=sha256&tag=abc".into(),
            400,
            "refusing to create an ambiguous tag using digest algorithm as name".into(),
        ),
        (
            "digest",
            format!("repo=foo%40{}", digest.replace(':', "%3A")),
            400,
            "refusing to create a tag with a digest reference".into(),
        ),
    ];
    for (name, q, status, msg) in &cases {
        let r = srv
            .req("POST", &format!("/v1.41/images/dev/chain:1/tag?{q}"))
            .await;
        assert_eq!(r.status, *status, "{name}: {}", r.text());
        r.assert_error(*status, msg);
    }
    srv.req("POST", "/v1.41/images/nonexist/tag?repo=x")
        .await
        .assert_error(404, "No such image: nonexist:latest");

    // save: the bytes dockerd wrote, for both forms of the route.
    for path in [
        "/v1.41/images/get?names=dev%2Fchain%3A1",
        "/v1.41/images/dev/chain:1/get",
    ] {
        let srv2 = Server::start().await;
        srv2.load("chain-tagged.tar").await;
        let r = srv2.req("GET", path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/x-tar"));
        assert!(
            r.body == read_fixture("chain-tagged.tar"),
            "{path}: archive differs"
        );
        srv2.stop().await;
    }

    // delete: blank names, not found, conflicts, untag, delete.
    for path in ["/v1.41/images/", "/v1.41/images/%20%20"] {
        srv.req("DELETE", path)
            .await
            .assert_error(400, "image name cannot be blank");
    }
    srv.req("DELETE", "/v1.41/images/nosuch:1")
        .await
        .assert_error(404, "No such image: nosuch:1");
    srv.req("DELETE", "/v1.41/images/Bad").await.assert_error(
        400,
        "invalid reference format: repository name must be lowercase",
    );
    let parent = inspect["Parent"].as_str().unwrap().to_string();
    srv.req("DELETE", &format!("/v1.41/images/{parent}?force=1"))
        .await
        .assert_error(409, &format!("conflict: unable to delete {} (cannot be forced) - image has dependent child images", &parent[7..19]));
    srv.req("DELETE", &format!("/v1.41/images/{}", chain_short()))
        .await
        .assert_error(409, &format!("conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories", chain_short()));
    let r = srv.req("DELETE", "/v1.41/images/serve/x:baz").await;
    assert_eq!(
        (r.status, r.text()),
        (200, "[{\"Untagged\":\"serve/x:baz\"}]\n".to_string())
    );
    let r = srv
        .req("DELETE", "/v1.41/images/127.0.0.1:5055/test:1")
        .await;
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "[{\"Untagged\":\"127.0.0.1:5055/test:1\"}]\n".to_string()
        )
    );

    // prune: filter errors, then a real prune.
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "bad json",
            "filters=invalid+json",
            500,
            "invalid character 'i' looking for beginning of value",
        ),
        (
            "reference",
            "filters=%7B%22reference%22%3A%7B%22x%22%3Atrue%7D%7D",
            400,
            "Invalid filter 'reference'",
        ),
        (
            "two untils",
            "filters=%7B%22until%22%3A%7B%221h%22%3Atrue%2C%222h%22%3Atrue%7D%7D",
            500,
            "more than one until filter specified",
        ),
        (
            "bad until",
            "filters=%7B%22until%22%3A%7B%22soon%22%3Atrue%7D%7D",
            500,
            "failed to parse value as time or duration: \"soon\"",
        ),
    ];
    for (name, q, status, msg) in cases {
        let r = srv.req("POST", &format!("/v1.41/images/prune?{q}")).await;
        assert_eq!(r.status, *status, "{name}: {}", r.text());
        r.assert_error(*status, msg);
    }
    let r = srv
        .req(
            "POST",
            "/v1.41/images/prune?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D",
        )
        .await;
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "{\"ImagesDeleted\":null,\"SpaceReclaimed\":0}\n".to_string()
        )
    );

    // system/df: images with extra attributes; LayersSize = distinct layers.
    let df = srv.req("GET", "/v1.41/system/df").await;
    assert_eq!(df.status, 200);
    let df = df.json();
    let want = srv
        .svc
        .images(strata::Filters::new(), false, true)
        .await
        .unwrap();
    assert_eq!(df["Images"], serde_json::to_value(&want).unwrap());
    assert_eq!(df["Images"][0]["Containers"], 0);
    assert_eq!(df["LayersSize"], want[0].size);
    assert_eq!(df["Containers"], serde_json::json!([]));
    assert_eq!(df["Volumes"], serde_json::json!([]));
    assert_eq!(df["BuildCache"], serde_json::Value::Null);

    // delete the last tag: untag, delete the image and its layers, prune parents.
    let r = srv.req("DELETE", "/v1.41/images/dev/chain:1").await;
    assert_eq!(r.status, 200);
    let items = r.json();
    assert_eq!(items[0], serde_json::json!({"Untagged": "dev/chain:1"}));
    assert_eq!(items[1], serde_json::json!({"Deleted": CHAIN_ID}));
    assert_eq!(srv.req("GET", "/images/json?all=1").await.text(), "[]\n");
    assert_eq!(srv.req("GET", "/v1.41/info").await.json()["Images"], 0);
    assert_verified(&srv.svc);
    srv.stop().await;
}

/// `GET /images/json` answers are reused while the tables stay the same:
/// every write (through the API or the library) shows in the next answer,
/// and each query (`all`, filters) gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_listings_follow_every_write() {
    let srv = Server::start().await;
    assert_eq!(srv.load("chain-all.tar").await.status, 200);
    let library = |all: bool, filters: strata::Filters| {
        let svc = srv.svc.clone();
        async move {
            let images = svc.images(filters, all, false).await.unwrap();
            format!("{}\n", serde_json::to_string(&images).unwrap())
        }
    };
    let tags = |r: &Resp| -> Vec<serde_json::Value> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["RepoTags"].clone())
            .collect()
    };

    let first = srv.req("GET", "/images/json").await;
    assert_eq!(tags(&first), [serde_json::json!(["dev/chain:1"])]);
    assert_eq!(srv.req("GET", "/images/json").await.body, first.body);

    // Another query is not answered from the last one.
    let all = srv.req("GET", "/images/json?all=1").await;
    assert_eq!(all.text(), library(true, strata::Filters::new()).await);
    assert_eq!(all.json().as_array().unwrap().len(), 6);
    let dangling = "/images/json?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%7D";
    assert_eq!(srv.req("GET", dangling).await.text(), "[]\n");
    assert_eq!(srv.req("GET", "/images/json").await.body, first.body);

    // A tag through the API.
    let r = srv
        .req("POST", "/images/dev/chain:1/tag?repo=dev/again&tag=2")
        .await;
    assert_eq!(r.status, 201);
    let second = srv.req("GET", "/images/json").await;
    assert_eq!(
        tags(&second),
        [serde_json::json!(["dev/again:2", "dev/chain:1"])]
    );
    assert_eq!(second.text(), library(false, strata::Filters::new()).await);

    // An untag through the library, beside the server.
    srv.svc
        .image_delete("dev/again:2", false, true)
        .await
        .unwrap();
    assert_eq!(srv.req("GET", "/images/json").await.body, first.body);

    // Deleting the image empties the listing, and the dangling filter
    // still gets its own answer.
    let r = srv.req("DELETE", "/images/dev/chain:1").await;
    assert_eq!(r.status, 200);
    assert_eq!(srv.req("GET", "/images/json").await.text(), "[]\n");
    assert_eq!(
        srv.req("GET", "/images/json?all=1").await.text(),
        library(true, strata::Filters::new()).await
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_routes_and_actor() {
    let srv = Server::start().await;
    srv.load("chain-tagged.tar").await;
    let json = [
        ("Content-Type", "application/json"),
        ("User-Agent", "serve-test/1"),
    ];

    let r = srv
        .send(
            "POST",
            "/v1.41/containers/create?name=c1",
            &json,
            br#"{"Image":"dev/chain:1"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["Id"].as_str().unwrap().to_string();
    assert_eq!(r.text(), format!("{{\"Id\":\"{id}\",\"Warnings\":[]}}\n"));
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [u8],
        u16,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            "unknown image",
            "/containers/create",
            &json,
            br#"{"Image":"nosuch:1"}"#,
            404,
            "No such image: nosuch:1",
        ),
        (
            "null body",
            "/containers/create",
            &json,
            b"null",
            400,
            "Config cannot be empty in order to create a container",
        ),
        (
            "text body",
            "/containers/create",
            &[("Content-Type", "text/plain")],
            br#"{"Image":"x"}"#,
            400,
            "Content-Type specified (text/plain) must be 'application/json'",
        ),
        (
            "bad name",
            "/containers/create?name=-x",
            &json,
            br#"{"Image":"dev/chain:1"}"#,
            400,
            "Invalid container name (-x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        ),
    ];
    for (name, path, headers, body, status, msg) in cases {
        let r = srv.send("POST", path, headers, body.to_vec()).await;
        assert_eq!(r.status, *status, "{name}: {}", r.text());
        r.assert_error(*status, msg);
    }
    let r = srv
        .send(
            "POST",
            "/containers/create?name=c1",
            &json,
            br#"{"Image":"dev/chain:1"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());

    assert_eq!(
        srv.req("GET", "/v1.41/containers/json").await.text(),
        "[]\n"
    );
    let list = srv.req("GET", "/v1.41/containers/json?all=1").await.json();
    assert_eq!(list[0]["Id"], id.as_str());
    assert_eq!(list[0]["Names"], serde_json::json!(["/c1"]));
    assert_eq!(list[0]["Image"], "dev/chain:1");
    assert_eq!(list[0]["ImageID"], CHAIN_ID);
    assert_eq!(list[0]["State"], "created");
    for path in [
        format!("/v1.41/containers/{id}/json"),
        "/containers/c1/json".into(),
        format!("/containers/{}/json", &id[..6]),
    ] {
        let r = srv.req("GET", &path).await;
        assert_eq!(r.status, 200, "{path}");
        let c = r.json();
        assert_eq!(
            (c["Id"].as_str(), c["Name"].as_str(), c["Image"].as_str()),
            (Some(id.as_str()), Some("/c1"), Some(CHAIN_ID))
        );
        assert_eq!(c["State"]["Status"], "created");
    }
    srv.req("GET", "/containers/nosuch/json")
        .await
        .assert_error(404, "No such container: nosuch");

    // The image is in use: delete conflicts.
    srv.req("DELETE", "/images/dev/chain:1")
        .await
        .assert_error(409, &format!("conflict: unable to remove repository reference \"dev/chain:1\" (must force) - container {} is using its referenced image {}", &id[..12], chain_short()));
    let df = srv.req("GET", "/system/df").await.json();
    assert_eq!(df["Containers"][0]["Id"], id.as_str());
    assert_eq!(df["Images"][0]["Containers"], 1);

    let r = srv
        .send("DELETE", "/v1.41/containers/c1", &json, Vec::new())
        .await;
    assert_eq!((r.status, r.text()), (204, String::new()));
    srv.req("DELETE", "/v1.41/containers/c1")
        .await
        .assert_error(404, "No such container: c1");

    // Every mutation carries the peer's uid and the client's User-Agent.
    let head = srv.svc.store().head().unwrap().next_seq - 1;
    let events = srv.svc.store().events(1, head).unwrap();
    let last = events.last().unwrap();
    assert!(
        matches!(last.body, strata::EventBody::ContainerRemoved { .. }),
        "{:?}",
        last.body
    );
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_eq!(
        last.actor,
        strata::Actor {
            uid: Some(uid),
            user: None,
            client: Some("serve-test/1".into())
        }
    );
    assert_verified(&srv.svc);
    srv.stop().await;
}

fn event_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (Type, Action, Actor.ID, Attributes) of each event.
fn summarize(events: &[serde_json::Value]) -> Vec<(String, String, String, serde_json::Value)> {
    events
        .iter()
        .map(|e| {
            assert_eq!(e["scope"], "local");
            assert_eq!(
                e["time"].as_i64().unwrap(),
                e["timeNano"].as_i64().unwrap() / 1_000_000_000
            );
            if e["Actor"]["ID"] != "" {
                assert_eq!(e["id"], e["Actor"]["ID"]);
            }
            (
                e["Type"].as_str().unwrap().to_string(),
                e["Action"].as_str().unwrap().to_string(),
                e["Actor"]["ID"].as_str().unwrap().to_string(),
                e["Actor"]["Attributes"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_history_and_live() {
    let srv = Server::start().await;

    // A live subscriber from the start.
    let stream = UnixStream::connect(&srv.sock).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let live = sender
        .send_request(
            hyper::Request::get(
                "/v1.41/events?filters=%7B%22type%22%3A%7B%22image%22%3Atrue%7D%7D",
            )
            .header("Host", "d")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut live = live.into_body();

    srv.load("chain-tagged.tar").await;
    srv.load("chain-tagged.tar").await; // already present: `load` from the handler
    assert_eq!(
        srv.req("POST", "/images/dev/chain:1/tag?repo=serve%2Fev&tag=1")
            .await
            .status,
        201
    );
    assert_eq!(srv.req("DELETE", "/images/serve/ev:1").await.status, 200);
    assert_eq!(
        srv.req("GET", "/images/get?names=dev%2Fchain%3A1")
            .await
            .status,
        200
    );
    assert_eq!(srv.req("DELETE", "/images/dev/chain:1").await.status, 200);
    let r = srv.req("POST", "/images/prune").await;
    assert_eq!(r.status, 200);

    let labels = serde_json::json!({"org.example.stage": "one"});
    let with = |name: &str| {
        let mut a = labels.clone();
        a["name"] = name.into();
        a
    };
    let image = |action: &str, id: &str, attrs: serde_json::Value| {
        (
            "image".to_string(),
            action.to_string(),
            id.to_string(),
            attrs,
        )
    };
    let want = vec![
        image("load", CHAIN_ID, with(CHAIN_ID)),
        image("load", CHAIN_ID, with(CHAIN_ID)),
        image("tag", CHAIN_ID, with("serve/ev:1")),
        image("untag", CHAIN_ID, with(CHAIN_ID)),
        image("save", CHAIN_ID, with(CHAIN_ID)),
        image("untag", CHAIN_ID, with(CHAIN_ID)),
        image("delete", CHAIN_ID, serde_json::json!({"name": CHAIN_ID})),
        image("prune", "", serde_json::json!({"reclaimed": "0"})),
    ];

    // Live.
    let mut got = String::new();
    while got.lines().count() < want.len() {
        let frame = tokio::time::timeout(Duration::from_secs(10), live.frame())
            .await
            .expect("live events")
            .unwrap()
            .unwrap();
        got.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
    }
    assert_eq!(summarize(&event_lines(&got)), want);
    let first = got.lines().next().unwrap();
    assert!(first.starts_with(&format!("{{\"status\":\"load\",\"id\":\"{CHAIN_ID}\",\"Type\":\"image\",\"Action\":\"load\",\"Actor\":{{\"ID\":\"{CHAIN_ID}\",\"Attributes\":{{\"name\":\"{CHAIN_ID}\",\"org.example.stage\":\"one\"}}}},\"scope\":\"local\",\"time\":")), "{first}");
    let prune_line = got.lines().last().unwrap();
    assert!(prune_line.starts_with("{\"status\":\"prune\",\"Type\":\"image\",\"Action\":\"prune\",\"Actor\":{\"ID\":\"\",\"Attributes\":{\"reclaimed\":\"0\"}},\"scope\":\"local\",\"time\":"), "{prune_line}");

    // History (ends because `until` is past).
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = srv
        .req("GET", &format!("/v1.41/events?since=0&until={until}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(summarize(&event_lines(&r.text())), want);
    let r = srv.req("GET", &format!("/v1.41/events?since=0&until={until}&filters=%7B%22event%22%3A%7B%22untag%22%3Atrue%7D%7D")).await;
    assert_eq!(
        summarize(&event_lines(&r.text())),
        vec![want[3].clone(), want[5].clone()]
    );
    let r = srv.req("GET", &format!("/v1.41/events?since=0&until={until}&filters=%7B%22image%22%3A%7B%22serve%2Fev%22%3Atrue%7D%7D")).await;
    assert_eq!(summarize(&event_lines(&r.text())), vec![want[2].clone()]);
    let r = srv
        .req("GET", &format!("/v1.41/events?since={until}&until={until}"))
        .await;
    assert_eq!((r.status, r.text()), (200, String::new()));

    let cases: &[(&str, u16, &str)] = &[
        (
            "since=10&until=5",
            400,
            "`since` time (10) cannot be after `until` time (5)",
        ),
        (
            "since=abc",
            500,
            "strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            "since=0&until=1&filters=notjson",
            500,
            "invalid character 'o' in literal null (expecting 'u')",
        ),
    ];
    for (q, status, msg) in cases {
        srv.req("GET", &format!("/v1.41/events?{q}"))
            .await
            .assert_error(*status, msg);
    }
    drop(live);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_lifecycle() {
    let srv = Server::start().await;
    // A second server on the same socket is refused while the first lives.
    let other = strata::ImageService::open(srv.inner.dir.path().join("other")).unwrap();
    let err = strata::server::serve(other.clone(), &srv.sock, async {})
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!(
            "socket {} is in use by a running server",
            srv.sock.display()
        )
    );
    assert_eq!(err.kind(), strata::ErrorKind::Unavailable);

    // An open events stream does not block shutdown; the socket file goes.
    let stream = UnixStream::connect(&srv.sock).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            hyper::Request::get("/events")
                .header("Host", "d")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sock = srv.stop().await;
    assert!(!sock.exists());
    let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
        .await
        .expect("stream ended");
    assert!(body.is_ok());

    // A stale socket file is replaced; a non-socket file is refused.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let (o, s) = (other.clone(), stale.clone());
        async move {
            strata::server::serve(o, &s, async {
                let _ = rx.await;
            })
            .await
        }
    });
    let mut ok = false;
    for _ in 0..200 {
        if UnixStream::connect(&stale).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ok);
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = strata::server::serve(other, &file, async {})
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        format!("{} exists and is not a socket", file.display())
    );
}

// ---------------------------------------------------------------- docker CLI

const DOCKER: &str = "/usr/bin/docker";

/// Whether the docker 20.10 CLI is here; without it the CLI test is skipped,
/// unless running in CI, where its absence is a failure.
fn have_docker() -> bool {
    if Path::new(DOCKER).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{DOCKER} is missing in CI: install the Debian docker.io (20.10) CLI"
    );
    eprintln!("note: {DOCKER} not found; skipping the docker CLI test");
    false
}

struct Cli {
    sock: PathBuf,
    config: tempfile::TempDir,
}

impl Cli {
    /// Run `docker -H unix://<sock> args…`: (exit code, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(DOCKER)
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run and expect success with exactly `stdout`.
    #[track_caller]
    fn ok(got: (i32, String, String), stdout: &str) {
        assert_eq!(got, (0, stdout.to_string(), String::new()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli() {
    if !have_docker() {
        return;
    }
    let srv = Server::start().await;
    let cli = Cli {
        sock: srv.sock.clone(),
        config: tempfile::tempdir().unwrap(),
    };
    let fx = |n: &str| fixture(n).display().to_string();

    let (rc, out, err) = cli
        .run(&["version", "--format", "{{.Server.APIVersion}}"])
        .await;
    assert_eq!((rc, out.as_str(), err.as_str()), (0, "1.41\n", ""));
    Cli::ok(
        cli.run(&["load", "-i", &fx("chain-tagged.tar")]).await,
        "Loaded image: dev/chain:1\n",
    );
    let (rc, out, _) = cli.run(&["load", "-i", &fx("chain-all.tar")]).await;
    assert_eq!(rc, 0);
    assert!(out.starts_with("Loaded image: dev/chain:1\n"), "{out}");

    // images
    let (rc, out, err) = cli.run(&["images"]).await;
    assert_eq!((rc, err.as_str()), (0, ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        lines[1].starts_with("dev/chain    1         17d9e0c043f9   "),
        "{out}"
    );
    let all = srv.req("GET", "/images/json?all=1").await.json();
    let want: String = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let tag = i["RepoTags"][0].as_str().unwrap();
            let (repo, tag) = tag.rsplit_once(':').unwrap();
            format!("{repo} {tag} <none> {}\n", i["Id"].as_str().unwrap())
        })
        .collect();
    Cli::ok(
        cli.run(&[
            "images",
            "-a",
            "--digests",
            "--no-trunc",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}",
        ])
        .await,
        &want,
    );
    let (rc, out, _) = cli.run(&["images", "-a", "--digests", "--no-trunc"]).await;
    assert_eq!((rc, out.lines().count()), (0, 7), "{out}");
    assert!(
        out.starts_with("REPOSITORY   TAG       DIGEST    IMAGE ID "),
        "{out}"
    );

    // inspect, history
    let (rc, out, _) = cli.run(&["image", "inspect", "dev/chain:1"]).await;
    assert_eq!(rc, 0);
    let inspected: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        inspected[0],
        srv.req("GET", "/images/dev/chain:1/json").await.json()
    );
    assert_eq!(
        cli.run(&["image", "inspect", "nosuch:1"]).await,
        (
            1,
            "[]\n".to_string(),
            "Error: No such image: nosuch:1\n".to_string()
        )
    );
    let (rc, out, _) = cli
        .run(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            "dev/chain:1",
        ])
        .await;
    assert_eq!(rc, 0);
    let golden: String = String::from_utf8(read_fixture("dev_chain_1.history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}|{}|{}|{}\n",
                v["ID"].as_str().unwrap(),
                v["CreatedBy"].as_str().unwrap(),
                v["Size"].as_str().unwrap(),
                v["Comment"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(out, golden);
    let (rc, out, _) = cli.run(&["history", "dev/chain:1"]).await;
    assert_eq!(rc, 0);
    assert!(out.starts_with("IMAGE          CREATED"), "{out}");

    // tag, rmi
    Cli::ok(cli.run(&["tag", "dev/chain:1", "serve/cli:1"]).await, "");
    Cli::ok(cli.run(&["tag", "dev/chain:1", "serve/cli:2"]).await, "");
    assert_eq!(
        cli.run(&["rmi", "nosuch:1"]).await,
        (
            1,
            String::new(),
            "Error: No such image: nosuch:1\n".to_string()
        )
    );
    // As with dockerd: the CLI reports but ignores not-found under -f.
    assert_eq!(
        cli.run(&["rmi", "-f", "nosuch:1"]).await,
        (
            0,
            String::new(),
            "Error: No such image: nosuch:1\n".to_string()
        )
    );
    let parent = inspected[0]["Parent"].as_str().unwrap();
    assert_eq!(
        cli.run(&["rmi", parent]).await,
        (
            1,
            String::new(),
            format!(
                "Error response from daemon: conflict: unable to delete {} (cannot be forced) - image has dependent child images\n",
                &parent[7..19]
            )
        )
    );
    assert_eq!(
        cli.run(&["rmi", chain_short()]).await,
        (
            1,
            String::new(),
            format!(
                "Error response from daemon: conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories\n",
                chain_short()
            )
        )
    );
    Cli::ok(
        cli.run(&["rmi", "serve/cli:1", "serve/cli:2"]).await,
        "Untagged: serve/cli:1\nUntagged: serve/cli:2\n",
    );

    // save: the bytes dockerd wrote.
    let out_dir = tempfile::tempdir().unwrap();
    let saved = out_dir.path().join("s.tar");
    Cli::ok(
        cli.run(&["save", "-o", saved.to_str().unwrap(), "dev/chain:1"])
            .await,
        "",
    );
    assert!(
        std::fs::read(&saved).unwrap() == read_fixture("chain-tagged.tar"),
        "saved archive differs from the fixture"
    );

    // create, rm, system df
    let (rc, id, err) = cli.run(&["create", "--name", "c1", "dev/chain:1"]).await;
    assert_eq!((rc, id.len(), err.as_str()), (0, 65, ""), "{id}");
    let (rc, out, _) = cli.run(&["system", "df"]).await;
    assert_eq!(rc, 0);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(lines[1][..4], ["Images", "1", "1", "74B"], "{out}");
    assert_eq!(lines[2][..3], ["Containers", "1", "0"], "{out}");
    Cli::ok(cli.run(&["rm", "c1"]).await, "c1\n");

    // prune
    Cli::ok(
        cli.run(&["image", "prune", "-f"]).await,
        "Total reclaimed space: 0B\n",
    );
    let (rc, out, _) = cli.run(&["image", "prune", "-a", "-f"]).await;
    assert_eq!(rc, 0);
    assert!(
        out.starts_with(&format!(
            "Deleted Images:\nuntagged: dev/chain:1\ndeleted: {CHAIN_ID}\n"
        )),
        "{out}"
    );
    assert!(out.ends_with("\nTotal reclaimed space: 74B\n"), "{out}");
    Cli::ok(cli.run(&["images", "-aq"]).await, "");

    // events: the history of all of the above.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (rc, out, err) = cli
        .run(&[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"name\"}}",
        ])
        .await;
    assert_eq!((rc, err.as_str()), (0, ""));
    for want in [
        format!("tag {CHAIN_ID} serve/cli:1"),
        format!("tag {CHAIN_ID} serve/cli:2"),
        format!("untag {CHAIN_ID} {CHAIN_ID}"),
        format!("save {CHAIN_ID} {CHAIN_ID}"),
        format!("delete {CHAIN_ID} {CHAIN_ID}"),
        "prune  ".to_string(),
    ] {
        assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
    }
    let (rc, out, _) = cli
        .run(&[
            "events",
            "--since",
            "0",
            "--until",
            &until,
            "--filter",
            "event=tag",
        ])
        .await;
    assert_eq!(rc, 0);
    let first = out.lines().next().unwrap();
    assert!(
        first.ends_with(&format!(
            " image tag {CHAIN_ID} (name=serve/cli:1, org.example.stage=one)"
        )),
        "{out}"
    );
    assert_verified(&srv.svc);
    srv.stop().await;
}
