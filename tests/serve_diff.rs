//! Differential tests: the same `/usr/bin/docker` (20.10) command sequence
//! runs against a private dockerd 20.10 (vfs) and against `strata serve`
//! (in-process, temporary socket); every step's exit code, stdout and
//! stderr must match after removing what legitimately varies: relative
//! times, timestamps, table padding, and the IDs of images and containers
//! made at run time (import, commit, create), which are mapped to names.
//! Rows of `images` listings are sorted (dockerd leaves the order of equal
//! `Created` unspecified). Tar outputs (`save`, `cp … -`, `export`) are
//! compared as listings of (name, type, size, mode, link).
//!
//! Without dockerd (and CI unset) the test is skipped with a note.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
use dockerd::{DOCKER, Dockerd};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One side of the comparison.
struct Peer {
    name: &'static str,
    sock: PathBuf,
    config: PathBuf,
    /// Run-time IDs (hex) → placeholder.
    ids: BTreeMap<String, String>,
    /// Unix time before the sequence (for `events --since`).
    t0: i64,
}

impl Peer {
    fn cmd(&self, args: &[String]) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", &self.config)
            .env("DOCKER_BUILDKIT", "0")
            .env("TZ", "UTC")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT");
        c
    }

    fn run(&self, args: &[String], stdin: Option<&Path>) -> (i32, Vec<u8>, String) {
        let mut c = self.cmd(args);
        c.stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        });
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn remember(&mut self, id: &str, as_name: &str) {
        let hex = id.trim().trim_start_matches("sha256:").to_string();
        assert_eq!(hex.len(), 64, "{}: not an ID: {id:?}", self.name);
        self.ids.insert(hex, format!("<{as_name}>"));
    }

    fn normalize(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (hex, name) in &self.ids {
            t = t.replace(&format!("sha256:{hex}"), name);
            t = t.replace(hex.as_str(), name);
            t = t.replace(&hex[..12], name);
            t = t.replace(&format!("sha256:{}", &hex[..10]), name);
        }
        let re = |p: &str| regex::Regex::new(p).unwrap();
        t = re(r"(About an?|Less than a|\d+) (second|minute|hour|day|week|month|year)s? ago")
            .replace_all(&t, "<ago>")
            .into_owned();
        t = re(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
            .replace_all(&t, "<time>")
            .into_owned();
        t = re(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \w+")
            .replace_all(&t, "<time>")
            .into_owned();
        t = re(r" {2,}").replace_all(&t, "   ").into_owned();
        t = re(r" +\n").replace_all(&t, "\n").into_owned();
        t
    }
}

/// How a step's stdout is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// As text.
    Text,
    /// As text, lines after the first sorted.
    Sorted,
    /// As text, all lines sorted.
    SortedAll,
    /// As a tar listing.
    Tar,
    /// Not compared (stderr and the exit code still are).
    Ignore,
    /// The output is an ID to remember under this step's `save_as`.
    Id,
}

struct Step {
    args: Vec<String>,
    out: Out,
    stdin: Option<PathBuf>,
    save_as: Option<&'static str>,
    /// Entries to drop from tar listings (dockerd's init layer).
    skip_init: bool,
}

fn tar_listing(bytes: &[u8], skip_init: bool) -> String {
    const INIT: &[&str] = &[
        ".dockerenv",
        "dev/",
        "dev/console",
        "dev/pts/",
        "dev/shm/",
        "etc/",
        "etc/hostname",
        "etc/hosts",
        "etc/mtab",
        "etc/resolv.conf",
        "proc/",
        "sys/",
    ];
    let mut a = tar::Archive::new(bytes);
    let mut lines = Vec::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if skip_init && INIT.contains(&name.as_str()) {
            continue;
        }
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        lines.push(format!(
            "{name} {:?} {} {:o} {link}",
            h.entry_type(),
            h.size().unwrap_or(0),
            h.mode().unwrap_or(0)
        ));
    }
    lines.join("\n")
}

fn sort_lines(s: &str, keep_first: bool) -> String {
    let mut lines: Vec<&str> = s.lines().collect();
    if keep_first && !lines.is_empty() {
        let first = lines.remove(0);
        lines.sort();
        lines.insert(0, first);
    } else {
        lines.sort();
    }
    lines.join("\n")
}

/// Run one step on a peer: the normalized record to compare.
fn run_step(peer: &mut Peer, step: &Step, vars: &BTreeMap<&str, String>) -> String {
    let args: Vec<String> = step
        .args
        .iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                a = a.replace(&format!("{{{k}}}"), v);
            }
            a = a.replace("{t0}", &peer.t0.to_string());
            a
        })
        .collect();
    let (rc, stdout, stderr) = peer.run(&args, step.stdin.as_deref());
    if step.out == Out::Id && rc == 0 {
        let text = String::from_utf8_lossy(&stdout);
        let id = text.lines().last().unwrap_or("").trim().to_string();
        peer.remember(&id, step.save_as.unwrap());
    }
    if step.out == Out::Id && rc == 0 && step.save_as != Some("ctr") {
        let text = String::from_utf8_lossy(&stdout);
        let id = text.lines().last().unwrap_or("").trim().to_string();
        // The ChainID of the image's top layer (time-dependent for
        // commits: the diff carries mtimes), as `rmi`/`prune` print it.
        let (_, layers, _) = peer.run(
            &[
                "inspect".into(),
                "--format".into(),
                "{{json .RootFS.Layers}}".into(),
                id.clone(),
            ],
            None,
        );
        let layers: Vec<String> = serde_json::from_slice(&layers).unwrap();
        let mut chain = String::new();
        for l in &layers {
            chain = if chain.is_empty() {
                l.clone()
            } else {
                use sha2::Digest;
                format!(
                    "sha256:{}",
                    hex::encode(sha2::Sha256::digest(format!("{chain} {l}")))
                )
            };
        }
        peer.remember(&chain, &format!("{}-chain", step.save_as.unwrap()));
    }
    let out = match step.out {
        Out::Tar if rc == 0 => tar_listing(&stdout, step.skip_init),
        Out::Ignore => String::new(),
        _ => {
            let t = peer.normalize(&String::from_utf8_lossy(&stdout));
            match step.out {
                Out::Sorted => sort_lines(&t, true),
                Out::SortedAll => sort_lines(&t, false),
                _ => t,
            }
        }
    };
    format!(
        "$ docker {}\nexit {rc}\n{out}\nstderr: {}",
        step.args.join(" "),
        peer.normalize(&stderr)
    )
}

/// `strata serve` on a temporary socket, on its own runtime thread.
struct Strata {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Strata {
    fn start() -> Strata {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let root = dir.path().join("root");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s2 = sock.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let svc = strata::ImageService::open(&root).unwrap();
                strata::server::serve(svc, &s2, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        for _ in 0..500 {
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Strata {
            _dir: dir,
            sock,
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Strata {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn steps(work: &Path) -> Vec<Step> {
    let fx = |n: &str| common::fixture(n).display().to_string();
    let w = |n: &str| work.join(n).display().to_string();
    let mut v: Vec<Step> = Vec::new();
    let mut add = |args: &[&str], out: Out| {
        v.push(Step {
            args: args.iter().map(|s| s.to_string()).collect(),
            out,
            stdin: None,
            save_as: None,
            skip_init: false,
        });
    };
    // Load and list.
    add(&["load", "-i", &fx("chain-all.tar")], Out::Text);
    add(&["load", "-i", &fx("imported.tar")], Out::Text);
    add(&["load", "-q", "-i", &fx("committed.tar")], Out::Text);
    add(&["images"], Out::Sorted);
    add(&["images", "-a"], Out::Sorted);
    add(&["images", "-a", "--no-trunc"], Out::Sorted);
    add(&["images", "--digests"], Out::Sorted);
    add(&["images", "-q"], Out::SortedAll);
    add(&["images", "--format", "{{json .}}"], Out::SortedAll);
    add(&["images", "dev/chain"], Out::Sorted);
    for f in [
        "dangling=true",
        "dangling=false",
        "label=org.example.stage",
        "label=org.example.stage=one",
        "reference=dev/*",
        "reference=dev/chain:*",
        "before=dev/committed:1",
        "since=dev/chain:1",
        "bogus=1",
    ] {
        add(&["images", "-a", "--filter", f], Out::Sorted);
    }
    // Tag, history, inspect.
    add(&["tag", "dev/chain:1", "diff/a:1"], Out::Text);
    add(&["tag", "dev/chain:1", "diff/a:2"], Out::Text);
    add(&["tag", "dev/chain:1", "BAD:1"], Out::Text);
    add(&["tag", "nope:1", "diff/a:3"], Out::Text);
    add(&["images", "diff/a"], Out::Sorted);
    add(&["history", "dev/chain:1"], Out::Text);
    add(&["history", "--no-trunc", "dev/committed:1"], Out::Text);
    add(
        &["history", "--format", "{{json .}}", "dev/imported:1"],
        Out::Text,
    );
    add(&["inspect", "dev/chain:1"], Out::Text);
    add(
        &["image", "inspect", "dev/imported:1", "dev/committed:1"],
        Out::Text,
    );
    add(&["inspect", "nope:1"], Out::Text);
    // rmi.
    add(&["rmi", "17d9e0c043f9"], Out::Text);
    add(&["rmi", "diff/a:1", "diff/a:2", "nope:9"], Out::Text);
    add(&["rmi", "--no-prune", "dev/imported:1"], Out::Text);
    add(&["rmi", "-f", "d04abc690f01"], Out::Text);
    // save → load round trip.
    add(&["save", "-o", &w("chain.tar"), "dev/chain:1"], Out::Text);
    add(&["rmi", "dev/chain:1"], Out::Text);
    add(&["images", "-a"], Out::Sorted);
    add(&["load", "-i", &w("chain.tar")], Out::Text);
    add(&["save", "dev/chain:1"], Out::Tar);
    // Import.
    v.push(Step {
        args: [
            "import",
            "-m",
            "imported by diff",
            "-c",
            "ENV A=1",
            "-c",
            "CMD [\"/bin/hi\"]",
            &fx("rootfs.tar"),
            "diff/imp:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        out: Out::Id,
        stdin: None,
        save_as: Some("imported"),
        skip_init: false,
    });
    v.push(Step {
        args: ["import", "-", "diff/imp:stdin"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        out: Out::Id,
        stdin: Some(common::fixture("rootfs.tar")),
        save_as: Some("imported2"),
        skip_init: false,
    });
    let mut add = |args: &[&str], out: Out| {
        v.push(Step {
            args: args.iter().map(|s| s.to_string()).collect(),
            out,
            stdin: None,
            save_as: None,
            skip_init: false,
        });
    };
    add(&["import", "-c", "RUN x", &fx("rootfs.tar")], Out::Text);
    add(&["history", "diff/imp:1"], Out::Text);
    add(&["history", "diff/imp:stdin"], Out::Text);
    add(
        &[
            "inspect",
            "--format",
            "{{json .Config}} {{.Comment}} {{json .RootFS}} {{.Size}}",
            "diff/imp:1",
        ],
        Out::Text,
    );
    // Containers: create, cp, commit, export.
    v.push(Step {
        args: ["create", "--name", "diffc", "dev/chain:1"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        out: Out::Id,
        stdin: None,
        save_as: Some("ctr"),
        skip_init: false,
    });
    let mut add = |args: &[&str], out: Out, skip_init: bool| {
        v.push(Step {
            args: args.iter().map(|s| s.to_string()).collect(),
            out,
            stdin: None,
            save_as: None,
            skip_init,
        });
    };
    add(
        &["cp", &w("added.txt"), "diffc:/added.txt"],
        Out::Text,
        false,
    );
    add(&["cp", &w("dir"), "diffc:/etc/"], Out::Text, false);
    add(&["cp", &w("added.txt"), "diffc:/nope/x"], Out::Text, false);
    add(&["cp", "diffc:/added.txt", "-"], Out::Tar, false);
    add(&["cp", "diffc:/etc", "-"], Out::Tar, true);
    add(&["cp", "diffc:/link.txt", "-"], Out::Tar, false);
    add(&["cp", "diffc:/nope", "-"], Out::Text, false);
    add(&["cp", "diffc:/etc", &w("etc-out")], Out::Text, false);
    add(&["export", "diffc"], Out::Tar, true);
    add(&["rmi", "dev/chain:1"], Out::Text, false);
    add(&["image", "prune", "-a", "-f"], Out::SortedAll, false);
    v.push(Step {
        args: [
            "commit",
            "-m",
            "commit by diff",
            "-a",
            "diff author",
            "-c",
            "ENV B=2",
            "diffc",
            "diff/com:1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        out: Out::Id,
        stdin: None,
        save_as: Some("committed"),
        skip_init: false,
    });
    let mut add = |args: &[&str], out: Out| {
        v.push(Step {
            args: args.iter().map(|s| s.to_string()).collect(),
            out,
            stdin: None,
            save_as: None,
            skip_init: false,
        });
    };
    add(&["history", "diff/com:1"], Out::Text);
    add(
        &[
            "inspect",
            "--format",
            "{{json .Config.Env}} {{.Comment}} {{.Author}} {{.Parent}} {{len .RootFS.Layers}}",
            "diff/com:1",
        ],
        Out::Text,
    );
    add(&["save", "diff/com:1"], Out::Ignore);
    add(&["system", "df"], Out::Text);
    add(&["rm", "diffc"], Out::Text);
    add(&["rm", "diffc"], Out::Text);
    add(&["image", "prune", "-f"], Out::Text);
    add(
        &["image", "prune", "-a", "-f", "--filter", "label=nope"],
        Out::Text,
    );
    add(&["image", "prune", "-f", "--filter", "bogus=1"], Out::Text);
    add(&["images", "-a"], Out::Sorted);
    // Events of the whole sequence.
    for f in [
        &["--filter", "type=image"][..],
        &["--filter", "event=tag"][..],
        &["--filter", "event=untag", "--filter", "event=delete"][..],
        &[
            "--filter",
            "image=sha256:17d9e0c043f938644efebd9f8d4b4fae42cfd1b0ea194014ade0da90e8e48894",
            "--filter",
            "type=image",
        ][..],
    ] {
        let mut args = vec!["events", "--since", "{t0}", "--until", "{now}"];
        args.extend_from_slice(f);
        // Sorted: strata's `load` events of one multi-image archive come
        // in its creation order (parents first), dockerd's in manifest order.
        add(&args, Out::SortedAll);
    }
    add(&["image", "prune", "-a", "-f"], Out::SortedAll);
    v
}

#[test]
fn same_output_as_dockerd() {
    let Some((_guard, d)) = dockerd::session("the strata-vs-dockerd differential test") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("added.txt"), b"added by docker cp\n").unwrap();
    std::fs::create_dir(work.path().join("dir")).unwrap();
    std::fs::write(work.path().join("dir/inner.txt"), b"inner\n").unwrap();
    let strata = Strata::start();
    let config = tempfile::tempdir().unwrap();
    let steps = steps(work.path());
    let mut peers = [
        Peer {
            name: "dockerd",
            sock: d.sock.clone(),
            config: config.path().join("d"),
            ids: BTreeMap::new(),
            t0: 0,
        },
        Peer {
            name: "strata",
            sock: strata.sock.clone(),
            config: config.path().join("s"),
            ids: BTreeMap::new(),
            t0: 0,
        },
    ];
    let mut records: Vec<Vec<String>> = Vec::new();
    for peer in peers.iter_mut() {
        for p in ["etc-out", "chain.tar"] {
            let _ = std::fs::remove_dir_all(work.path().join(p));
            let _ = std::fs::remove_file(work.path().join(p));
        }
        peer.t0 = now_unix() - 1;
        let mut out = Vec::new();
        for step in &steps {
            let vars = BTreeMap::from([("now", (now_unix() + 1).to_string())]);
            out.push(run_step(peer, step, &vars));
        }
        let listing = |p: &Path| -> Vec<String> {
            const INIT: &[&str] = &[
                "hostname file",
                "hosts file",
                "mtab file",
                "resolv.conf file",
            ];
            let mut v: Vec<String> = walk(p)
                .into_iter()
                .filter(|e| !INIT.contains(&e.as_str()))
                .collect();
            v.sort();
            v
        };
        out.push(format!(
            "etc-out: {:?}",
            listing(&work.path().join("etc-out"))
        ));
        records.push(out);
    }
    // Leave the shared dockerd as we found it: no containers.
    let _ = Dockerd::docker_cmd(d, &["rm", "-f", "diffc"]).output();
    if let Some(p) = std::env::var_os("STRATA_DIFF_DUMP") {
        std::fs::write(p, records[1].join("\n")).unwrap();
    }
    // The event steps must have seen events (an empty match proves nothing).
    for r in &records[0] {
        if r.contains("$ docker events") {
            assert!(r.contains(" image "), "no events in:\n{r}");
        }
    }
    let mut diffs = Vec::new();
    for (a, b) in records[0].iter().zip(&records[1]) {
        if a != b {
            diffs.push(format!("--- dockerd\n{a}\n+++ strata\n{b}\n"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} steps differ:\n{}",
        diffs.len(),
        records[0].len(),
        diffs.join("\n")
    );
}

fn walk(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(p) else {
        return out;
    };
    for e in rd.flatten() {
        let path = e.path();
        let md = std::fs::symlink_metadata(&path).unwrap();
        out.push(format!(
            "{} {}",
            path.file_name().unwrap().to_string_lossy(),
            if md.is_dir() { "dir" } else { "file" }
        ));
        if md.is_dir() {
            for c in walk(&path) {
                out.push(format!(
                    "{}/{c}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    out
}
