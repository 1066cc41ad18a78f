//! "One store, two ways in", continued: `container create/ls/rm`, `commit`
//! and `system df` go through `strata serve`'s Engine API routes and print
//! what the local path prints; `gc` and `fsck` say the store is served, by
//! which process, and what to do. And a pull's `pull` event is in the log:
//! a CLI pull (no server running) shows up once in a later server's
//! `/events?since=0`, and a pull through the server shows up once too.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;
use registry_harness::*;

use common::builder::*;
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::net::UnixStream;

/// Run the strata binary on `root` (stdin closed, no docker CLI config).
async fn strata(root: &Path, args: &[&str]) -> (i32, String, String) {
    let root = root.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let config = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("--root")
            .arg(&root)
            .args(&args)
            .env_remove("STRATA_ROOT")
            .env("DOCKER_CONFIG", config.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// `strata serve`'s server on `<root>/strata.sock`, in this process.
struct Served {
    svc: strata::ImageService,
    sock: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<strata::Result<()>>,
}

impl Served {
    async fn start(root: &Path) -> Served {
        let svc = strata::ImageService::open(root).unwrap();
        let sock = root.join("strata.sock");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let (svc, sock) = (svc.clone(), sock.clone());
            async move {
                strata::server::serve(svc, &sock, async {
                    let _ = rx.await;
                })
                .await
            }
        });
        for _ in 0..500 {
            if UnixStream::connect(&sock).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Served {
            svc,
            sock,
            stop,
            task,
        }
    }

    async fn stop(self) -> strata::ImageService {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
        self.svc
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let a = serve::request(&self.sock, method, path, headers, Vec::new()).await;
        (a.status, a.text())
    }

    /// Every `pull` event so far, without its times.
    async fn pull_events(&self) -> Vec<serde_json::Value> {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        let (st, body) = self
            .send(
                "GET",
                &format!(
                    "/v1.41/events?since=0&until={until}&filters=%7B%22event%22%3A%7B%22pull%22%3Atrue%7D%7D"
                ),
                &[],
            )
            .await;
        assert_eq!(st, 200, "{body}");
        body.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let (t, tn) = (v["time"].as_i64().unwrap(), v["timeNano"].as_i64().unwrap());
                assert_eq!(t, tn.div_euclid(1_000_000_000), "{l}");
                let o = v.as_object_mut().unwrap();
                o.remove("time");
                o.remove("timeNano");
                v
            })
            .collect()
    }
}

/// Replace what legitimately differs between two stores: the root path,
/// IDs made from the clock (containers, committed images: each full ID
/// and its 12-character prefix become `<id N>` by first appearance), and
/// creation times in JSON.
struct Normalizer {
    root: String,
    ids: HashMap<String, usize>,
}

impl Normalizer {
    fn new(root: &Path) -> Normalizer {
        Normalizer {
            root: root.display().to_string(),
            ids: HashMap::new(),
        }
    }

    fn apply(&mut self, s: &str) -> String {
        let s = s.replace(&self.root, "<root>");
        let full = regex::Regex::new(r"[0-9a-f]{64}").unwrap();
        for m in full.find_iter(&s) {
            let n = self.ids.len();
            self.ids.entry(m.as_str().to_string()).or_insert(n);
        }
        let s = full
            .replace_all(&s, |c: &regex::Captures| {
                format!("<id {}>", self.ids[&c[0]])
            })
            .into_owned();
        let hex = regex::Regex::new(r"[0-9a-f]+").unwrap();
        let s = hex
            .replace_all(&s, |c: &regex::Captures| {
                let run = &c[0];
                match self
                    .ids
                    .iter()
                    .find(|(k, _)| run.len() == 12 && k.starts_with(run))
                {
                    Some((_, n)) => format!("<id {n}:12>"),
                    None => run.to_string(),
                }
            })
            .into_owned();
        regex::Regex::new(r#""Created":\d+"#)
            .unwrap()
            .replace_all(&s, "\"Created\":\"<t>\"")
            .into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_commit_and_df_go_through_the_server() {
    let served_dir = tempfile::tempdir().unwrap();
    let local_dir = tempfile::tempdir().unwrap();
    let (served_root, local_root) = (served_dir.path(), local_dir.path());
    let server = Served::start(served_root).await;
    let fx = fixture("chain-all.tar").display().to_string();
    let steps: &[(&str, &[&str])] = &[
        ("load", &["load", "-i", &fx]),
        ("df, no containers", &["system", "df"]),
        (
            "create, named",
            &["container", "create", "--name", "c1", "dev/chain:1"],
        ),
        (
            "create, unnamed, by ID prefix",
            &["container", "create", &CHAIN_ID[7..19]],
        ),
        (
            "create, name in use",
            &["container", "create", "--name", "c1", "dev/chain:1"],
        ),
        (
            "create, no such image",
            &["container", "create", "--name", "c9", "nope:1"],
        ),
        ("ls", &["container", "ls"]),
        ("df table", &["system", "df"]),
        ("df json", &["system", "df", "--format", "json"]),
        ("commit, no reference", &["commit", "c1"]),
        (
            "commit, every option",
            &[
                "commit",
                "-m",
                "a message",
                "-a",
                "Someone <s@example.com>",
                "-c",
                "ENV A=1",
                "-c",
                "LABEL x=y",
                "--pause=false",
                "c1",
                "two/ways:commit",
            ],
        ),
        ("commit, default tag", &["commit", "c1", "two/ways"]),
        (
            "commit, digest reference",
            &[
                "commit",
                "c1",
                "two/ways@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ],
        ),
        ("commit, bad reference", &["commit", "c1", "Two/Ways"]),
        ("commit, no such container", &["commit", "nope"]),
        ("commit, bad change", &["commit", "-c", "BOGUS x", "c1"]),
        (
            "the commit's tag",
            &["images", "-q", "--no-trunc", "two/ways:commit"],
        ),
        (
            "the default tag",
            &["images", "-q", "--no-trunc", "two/ways:latest"],
        ),
        ("rm, one unknown", &["container", "rm", "c1", "nope"]),
        ("ls after rm", &["container", "ls"]),
        ("df after rm", &["system", "df"]),
        ("df json after rm", &["system", "df", "--format", "json"]),
    ];
    let key_re = regex::Regex::new(r#""([A-Z][A-Za-z]*)":"#).unwrap();
    let mut runs = Vec::new();
    let mut chain = String::new();
    for root in [served_root, local_root] {
        let mut norm = Normalizer::new(root);
        let mut out = Vec::new();
        for (_, args) in steps {
            let (rc, o, e) = strata(root, args).await;
            let o = match *args {
                ["container", "ls"] => {
                    // In ID order; which ID is smaller is the clock's choice.
                    let rows: Vec<&str> = o.lines().skip(1).collect();
                    assert!(rows.is_sorted(), "{o}");
                    let mut lines: Vec<String> = norm.apply(&o).lines().map(String::from).collect();
                    lines[1..].sort();
                    lines.iter().map(|l| format!("{l}\n")).collect()
                }
                [.., "json"] => {
                    let mut v: serde_json::Value = serde_json::from_str(&o).unwrap();
                    let cs = v["Containers"].as_array_mut().unwrap();
                    let ids: Vec<&str> = cs.iter().map(|c| c["Id"].as_str().unwrap()).collect();
                    assert!(ids.is_sorted(), "{o}");
                    cs.sort_by_key(|c| c["Names"][0].as_str().unwrap().to_string());
                    // Images are newest first; those created in one second
                    // are in an order the IDs decide.
                    v["Images"]
                        .as_array_mut()
                        .unwrap()
                        .sort_by_key(|i| i["RepoTags"].to_string());
                    // serde_json's Value sorts keys: the raw key order is
                    // compared on its own.
                    let keys: Vec<&str> = key_re
                        .captures_iter(&o)
                        .map(|c| c.get(1).unwrap().as_str())
                        .collect();
                    format!("{}\n{}", keys.join(","), norm.apply(&format!("{v}\n")))
                }
                _ => norm.apply(&o),
            };
            out.push((rc, o, norm.apply(&e)));
        }
        // The placeholder the chain image got.
        chain = format!("<id {}", norm.ids[&CHAIN_ID[7..]]);
        runs.push(out);
    }
    for (i, (name, args)) in steps.iter().enumerate() {
        assert_eq!(
            runs[0][i],
            runs[1][i],
            "step {name}: strata {}",
            args.join(" ")
        );
    }
    // The runs did what they say (not just the same thing twice).
    let at = |name: &str| &runs[1][steps.iter().position(|(n, _)| *n == name).unwrap()];
    assert_eq!(
        at("create, named"),
        &(0, "<id 6>\t<root>/containers/<id 6>/rw\n".into(), "".into())
    );
    // The two containers in ID order (the clock decides which is first).
    assert_eq!((at("ls").0, at("ls").2.as_str()), (0, ""));
    let ls = &at("ls").1;
    let mut rows: Vec<&str> = ls.lines().skip(1).collect();
    rows.sort();
    assert_eq!(
        ls.lines().next(),
        Some("CONTAINER ID   IMAGE          NAMES")
    );
    assert_eq!(
        rows,
        [
            format!("<id 6:12>   {chain}:12>   c1"),
            format!("<id 7:12>   {chain}:12>   strata_<id 7:12>"),
        ]
    );
    assert_eq!(
        at("create, name in use"),
        &(
            1,
            "".into(),
            "Error response from daemon: Conflict. The container name \"/c1\" is already in use by container \"<id 6>\". You have to remove (or rename) that container to be able to reuse that name.\n".into()
        )
    );
    assert_eq!(
        at("create, no such image"),
        &(
            1,
            "".into(),
            "Error response from daemon: No such image: nope:1\n".into()
        )
    );
    assert_eq!(
        at("commit, digest reference"),
        &(
            1,
            "".into(),
            "refusing to create a tag with a digest reference\n".into()
        )
    );
    assert_eq!(
        at("commit, no such container"),
        &(
            1,
            "".into(),
            "Error response from daemon: No such container: nope\n".into()
        )
    );
    assert_eq!(
        at("rm, one unknown"),
        &(
            1,
            "c1\n".into(),
            "Error response from daemon: No such container: nope\n".into()
        )
    );
    assert_eq!(
        at("ls after rm"),
        &(
            0,
            format!(
                "CONTAINER ID   IMAGE          NAMES\n<id 7:12>   {chain}:12>   strata_<id 7:12>\n"
            ),
            "".into()
        )
    );
    let (keys, df) = at("df json after rm").1.split_once('\n').unwrap();
    assert_eq!(
        keys,
        format!(
            "LayersSize,Images,{},Containers,{},Volumes,BuildCache,BuilderSize",
            ["Containers,Created,Id,Labels,ParentId,RepoDigests,RepoTags,SharedSize,Size,VirtualSize"; 4].join(","),
            "Id,Names,Image,ImageID,Command,Created,SizeRw,SizeRootFs,State,Status"
        )
    );
    let df: serde_json::Value = serde_json::from_str(df).unwrap();
    assert_eq!(
        df["Containers"],
        serde_json::json!([{
            "Id": "<id 7>", "Names": ["/strata_<id 7:12>"], "Image": format!("sha256:{chain}>"),
            "ImageID": format!("sha256:{chain}>"), "Command": "", "Created": "<t>", "SizeRw": 0,
            "SizeRootFs": 74, "State": "created", "Status": "Created"
        }])
    );

    // The commits made through the server are the local ones: same config
    // (the remote `container create` records the config the local path
    // implies) up to the container's ID and the times.
    let served_svc = server.svc.clone();
    let local_svc = strata::ImageService::open(local_root).unwrap();
    let shape = |svc: strata::ImageService| async move {
        let i = svc.lookup_image("two/ways:commit").await.unwrap();
        let mut v = serde_json::to_value(&i).unwrap();
        let container = v["Container"].as_str().unwrap().to_string();
        let text = v
            .to_string()
            .replace(&container, "<c>")
            .replace(&container[..12], "<c:12>");
        v = serde_json::from_str(&text).unwrap();
        for k in ["Id", "Created", "Metadata", "RepoDigests"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let (a, b) = (
        shape(served_svc.clone()).await,
        shape(local_svc.clone()).await,
    );
    assert_eq!(a, b);
    assert_eq!(a["Author"], "Someone <s@example.com>");
    assert_eq!(a["Comment"], "a message");
    assert_eq!(a["Config"]["Hostname"], "<c:12>");
    assert_eq!(a["Config"]["Labels"]["x"], "y");
    drop(local_svc);

    // gc and fsck cannot go through the server: the message names it.
    let pid = std::process::id();
    let sock = served_root.join("strata.sock");
    for cmd in ["gc", "fsck"] {
        let got = strata(served_root, &[cmd]).await;
        assert_eq!(
            got,
            (
                1,
                String::new(),
                format!(
                    "strata: the store is served by `strata serve` (pid {pid}, unix://{}); `strata {cmd}` needs the store to itself and the server has no route for it: stop the server (kill {pid}), run `strata {cmd}`, then start `strata serve` again\n",
                    sock.display()
                )
            ),
            "{cmd}"
        );
    }
    let svc = server.stop().await;
    assert_verified(&svc);
    assert_verified(&strata::ImageService::open(local_root).unwrap());
}

fn pulled_image(tag: &str) -> Img {
    base(
        vec![layer(&[("etc/pulled", b"remote2")])],
        1_650_000_000,
        &[("org.example", "remote2")],
        &[tag],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_pull_event_is_in_the_log() {
    let Some(reg) = plain_registry() else { return };
    let host = &reg.host;
    let repo = format!("{host}/remote2/img");
    let tag = format!("{repo}:1");
    let img = pulled_image(&tag);
    // Push it from a scratch store.
    let src = tempfile::tempdir().unwrap();
    let src_svc = strata::ImageService::open(src.path()).unwrap();
    load_imgs(&src_svc, &[&img]).await;
    src_svc.push_image(&tag, None, None).await.unwrap();
    let image_id = src_svc.lookup_image(&tag).await.unwrap().id;
    drop(src_svc);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Downloaded, then up to date, then all tags: three pulls, three events.
    let (rc, _, err) = strata(root, &["pull", &tag]).await;
    assert_eq!((rc, err.as_str()), (0, ""));
    let (rc, out, err) = strata(root, &["pull", &tag]).await;
    assert_eq!((rc, err.as_str()), (0, ""));
    assert!(out.contains("Status: Image is up to date"), "{out}");
    let (rc, _, err) = strata(root, &["pull", "-a", &repo]).await;
    assert_eq!((rc, err.as_str()), (0, ""));

    // The audit log has them, with the image each reference names.
    let (rc, out, err) = strata(root, &["audit", "log", "--kind", "image-pulled", "--json"]).await;
    assert_eq!((rc, err.as_str()), (0, ""));
    let rows: Vec<(String, Option<String>, Option<String>)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["kind"].as_str().unwrap().to_string(),
                v["image"].as_str().map(str::to_string),
                v["subject"].as_str().map(str::to_string),
            )
        })
        .collect();
    let pulled = |image: Option<&str>, subject: &str| {
        (
            "image-pulled".to_string(),
            image.map(str::to_string),
            Some(subject.to_string()),
        )
    };
    assert_eq!(
        rows,
        [
            pulled(Some(&image_id), &tag),
            pulled(Some(&image_id), &tag),
            // No `latest` tag: the bare repository names no image.
            pulled(None, &repo),
        ]
    );
    // The up-to-date pull's write holds only the record of the pull.
    let (rc, out, _) = strata(root, &["audit", "log", "--json"]).await;
    assert_eq!(rc, 0);
    let kinds: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let n = kinds.len();
    assert_eq!(
        kinds[n - 2..],
        ["image-pulled".to_string(), "image-pulled".to_string()]
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "image-pulled").count(),
        3,
        "{kinds:?}"
    );

    // A later server shows each once, as dockerd reports `docker pull`.
    let server = Served::start(root).await;
    let event = |id: &str, attrs: serde_json::Value| {
        serde_json::json!({
            "status": "pull", "id": id, "Type": "image", "Action": "pull",
            "Actor": {"ID": id, "Attributes": attrs}, "scope": "local",
        })
    };
    let labelled = serde_json::json!({"name": repo, "org.example": "remote2"});
    let bare = serde_json::json!({"name": repo});
    assert_eq!(
        server.pull_events().await,
        [
            event(&tag, labelled.clone()),
            event(&tag, labelled.clone()),
            event(&repo, bare.clone()),
        ]
    );
    // A pull through the server: one event more, not two.
    let (st, body) = server
        .send(
            "POST",
            &format!("/v1.41/images/create?fromImage={repo}&tag=1"),
            &[("X-Registry-Auth", "e30=")],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains(&format!("Status: Image is up to date for {tag}")),
        "{body}"
    );
    assert_eq!(
        server.pull_events().await,
        [
            event(&tag, labelled.clone()),
            event(&tag, labelled.clone()),
            event(&repo, bare),
            event(&tag, labelled),
        ]
    );
    let svc = server.stop().await;
    assert_verified(&svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_container_name_refused_both_ways() {
    let served_dir = tempfile::tempdir().unwrap();
    let local_dir = tempfile::tempdir().unwrap();
    let server = Served::start(served_dir.path()).await;
    let fx = fixture("chain-all.tar").display().to_string();
    let want = (
        1,
        String::new(),
        "Error response from daemon: Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\n".to_string(),
    );
    for root in [served_dir.path(), local_dir.path()] {
        assert_eq!(strata(root, &["load", "-i", &fx]).await.0, 0);
        let got = strata(
            root,
            &["container", "create", "--name", "bad name", "dev/chain:1"],
        )
        .await;
        assert_eq!(got, want, "{}", root.display());
    }
    server.stop().await;
}
