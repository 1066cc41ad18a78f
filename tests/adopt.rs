//! `strata migrate from-docker`: a private dockerd 20.10 makes images every
//! way it can without running containers (load, import with changes, tag,
//! legacy build with parents, a digest reference, layers with a whiteout and
//! an opaque directory), is stopped, and its data root is adopted. strata
//! must then say what dockerd said: the same IDs, tags, digests, parents,
//! layers, sizes, history and inspect JSON (except Metadata.LastTagTime,
//! which the log cannot carry, and GraphDriver), and the `docker images`
//! rows; the source is not changed; damaged sources are refused without
//! writing anything. All of it runs once per storage driver strata reads:
//! vfs (full rootfs per layer) and overlay2 (each layer's own changes, with
//! whiteouts as 0:0 character devices and opaque directories as the xattr
//! `trusted.overlay.opaque=y`).
//!
//! dockerd and /usr/bin/docker are required under CI (env `CI`); elsewhere
//! the dockerd tests print a note and pass. If dockerd cannot start with
//! overlay2 (no overlayfs, or /tmp on a filesystem it cannot use), the
//! overlay2 test says so on stderr and skips; the vfs test still runs.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;

use common::builder::{archive, base, child};
use dockerd::{DOCKER, have, run_ok, tool};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strata::{EventBody, Filters, ImageService};

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

// ------------------------------------------------- a dockerd we can stop

/// A private dockerd on a data root that outlives it (stopped, restarted).
struct Daemon {
    dir: PathBuf,
    sock: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Start a dockerd on `dir/root` with storage driver `driver`; panic with its log if it fails.
    fn start(dir: &Path, driver: &str) -> Daemon {
        Daemon::try_start(dir, driver).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start a dockerd on `dir/root` with storage driver `driver`; the reason and its log if it
    /// did not come up.
    fn try_start(dir: &Path, driver: &str) -> Result<Daemon, String> {
        let sock = dir.join("sock");
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(tool("dockerd").unwrap())
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args([
                "--storage-driver",
                driver,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start dockerd: {e}"))?;
        let mut d = Daemon {
            dir: dir.to_path_buf(),
            sock,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = d
                .cmd(&["version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return Ok(d);
            }
            let exited = d.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                d.stop();
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!(
                    "private dockerd ({driver}) did not come up ({exited:?}); its log:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Mount points at or under this daemon's directory.
    fn mounts(&self) -> Vec<String> {
        let dir = self.dir.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| *m == dir || m.starts_with(&format!("{dir}/")))
            .map(str::to_string)
            .collect()
    }

    /// SIGTERM and wait (SIGKILL it and its containerd after 30 s).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut clean = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                clean = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !clean {
            let _ = child.kill();
            let _ = child.wait();
            if let Ok(pid) =
                std::fs::read_to_string(self.dir.join("exec/containerd/containerd.pid"))
            {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
            }
        }
        // dockerd unmounts what it mounted (the data root's propagation
        // bind mount, overlay mounts) on a clean shutdown; anything left
        // (a killed daemon) is unmounted here, deepest first, before the
        // directory can be removed.
        let mut left = self.mounts();
        if !left.is_empty() {
            eprintln!("dockerd left mounts under {}: {left:?}", self.dir.display());
            left.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in left {
                let ok = Command::new("umount")
                    .arg(&m)
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    let _ = Command::new("umount").args(["-l", &m]).status();
                }
            }
            let left = self.mounts();
            if !left.is_empty() {
                eprintln!("CANNOT UNMOUNT {left:?}");
            }
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("cli"))
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY");
        c
    }

    fn docker(&self, args: &[&str]) -> String {
        String::from_utf8(run_ok(&mut self.cmd(args), None).stdout).unwrap()
    }

    fn docker_stdin(&self, args: &[&str], input: &[u8]) -> String {
        String::from_utf8(run_ok(&mut self.cmd(args), Some(input)).stdout).unwrap()
    }

    /// `GET /v1.41{path}` (200 with JSON) through the CLI's raw API access.
    fn get(&self, path: &str) -> Value {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.sock).unwrap();
        write!(s, "GET /v1.41{path} HTTP/1.0\r\nHost: docker\r\n\r\n").unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&resp[..end]).to_string();
        assert!(head.starts_with("HTTP/1.0 200"), "GET {path}: {head}");
        let mut body = resp[end + 4..].to_vec();
        if head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"))
        {
            let mut out = Vec::new();
            let mut rest = &body[..];
            loop {
                let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
                let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                    .unwrap();
                rest = &rest[nl + 2..];
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&rest[..n]);
                rest = &rest[n + 2..];
            }
            body = out;
        }
        serde_json::from_slice(&body).unwrap()
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.join("files").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------- inputs

/// A tar entry: name, type, mode, content, link target.
type TarEntry<'a> = (&'a str, tar::EntryType, u32, &'a [u8], Option<&'a str>);

fn tar_of(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, mode, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(l) => b.append_link(&mut h, name, l).unwrap(),
            None => b.append_data(&mut h, name, *data).unwrap(),
        }
    }
    b.into_inner().unwrap()
}

/// A rootfs with the entry kinds a layer stream has to reproduce exactly.
fn rootfs() -> Vec<u8> {
    use tar::EntryType::{Directory, Link, Regular, Symlink};
    let long = format!("deep/{}/file.txt", "d".repeat(120));
    let big: Vec<u8> = (0..1300u32).map(|i| (i * 7 % 251) as u8).collect();
    tar_of(&[
        ("etc/", Directory, 0o755, b"", None),
        (
            "etc/passwd",
            Regular,
            0o644,
            b"root:x:0:0::/:/bin/hi\n",
            None,
        ),
        ("bin/", Directory, 0o755, b"", None),
        ("bin/hi", Regular, 0o755, b"#!/bin/hi\nhello\n", None),
        ("hello.txt", Regular, 0o644, b"hello, adopt\n", None),
        ("hard.txt", Link, 0o644, b"", Some("hello.txt")),
        ("soft.txt", Symlink, 0o777, b"", Some("hello.txt")),
        ("empty", Regular, 0o600, b"", None),
        ("big.bin", Regular, 0o644, &big, None),
        ("caf\u{e9} \u{2603}.txt", Regular, 0o644, b"unicode\n", None),
        ("deep/", Directory, 0o755, b"", None),
        (&long, Regular, 0o644, b"long name\n", None),
    ])
}

fn build_context() -> Vec<u8> {
    let files: [(&str, &[u8], u32); 5] = [
        (
            "Dockerfile",
            b"FROM scratch\nCOPY etc /etc\nLABEL org.example.adopt=built\nCOPY hi /bin/hi\nENV PATH=/bin\nCMD [\"/bin/hi\"]\n",
            0o644,
        ),
        (
            "Dockerfile.child",
            b"FROM adopt/imp:2\nCOPY hello.txt /hello.txt\nLABEL stage=two\n",
            0o644,
        ),
        ("etc/passwd", b"root:x:0:0::/:/bin/hi\n", 0o644),
        ("hi", b"#!/bin/hi\nhello\n", 0o755),
        ("hello.txt", b"hello again, overwritten\n", 0o644),
    ];
    let mut b = tar::Builder::new(Vec::new());
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

/// A three-image archive on one base: `adopt/wh:top`'s layer deletes
/// (whiteout) and replaces files, `adopt/wh:opaque`'s makes `dir` opaque
/// (`.wh..wh..opq`: the base's `dir/a.txt` and `dir/sub/` are hidden) and
/// adds `dir/c.txt`. overlay2 stores these as a 0:0 character device and the
/// xattr `trusted.overlay.opaque=y` in the layer's `diff` directory.
fn whiteout_archive() -> Vec<u8> {
    use tar::EntryType::{Directory, Regular};
    let lower = tar_of(&[
        ("gone.txt", Regular, 0o644, b"to be deleted\n", None),
        ("kept.txt", Regular, 0o644, b"version one\n", None),
        ("dir/", Directory, 0o755, b"", None),
        (
            "dir/a.txt",
            Regular,
            0o644,
            b"hidden by the opaque dir\n",
            None,
        ),
        ("dir/sub/", Directory, 0o755, b"", None),
        ("dir/sub/b.txt", Regular, 0o644, b"also hidden\n", None),
    ]);
    let upper = tar_of(&[
        (".wh.gone.txt", Regular, 0o644, b"", None),
        ("kept.txt", Regular, 0o644, b"version two, longer\n", None),
    ]);
    let opaque = tar_of(&[
        ("dir/", Directory, 0o755, b"", None),
        ("dir/.wh..wh..opq", Regular, 0o644, b"", None),
        (
            "dir/c.txt",
            Regular,
            0o644,
            b"the only file left in dir\n",
            None,
        ),
    ]);
    let b = base(
        vec![lower],
        1_600_000_000,
        &[("k", "lower")],
        &["adopt/wh:base"],
    );
    let c = child(
        &b,
        Some(upper),
        1_600_000_100,
        &[("k", "upper")],
        &["adopt/wh:top"],
    );
    let o = child(
        &b,
        Some(opaque),
        1_600_000_200,
        &[("k", "opaque")],
        &["adopt/wh:opaque"],
    );
    archive(&[&b, &c, &o])
}

// ------------------------------------------------------------- helpers

/// Every entry under `root`: kind, mode, mtime, and content hash or link target.
fn tree_sums(root: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let what = if m.is_dir() {
            let mut names: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            let listing: Vec<String> = names
                .iter()
                .map(|n| n.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            stack.extend(names);
            format!("dir {}", listing.join("/"))
        } else if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else if m.is_file() {
            format!("file {}", sha(&std::fs::read(&p).unwrap()))
        } else {
            format!("special {}", m.rdev())
        };
        out.insert(
            p,
            format!(
                "{what} mode {:o} uid {} mtime {}.{}",
                m.mode(),
                m.uid(),
                m.mtime(),
                m.mtime_nsec()
            ),
        );
    }
    out
}

/// Inspect JSON without Metadata.LastTagTime (not carried) and GraphDriver.
fn comparable(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("GraphDriver");
    o["Metadata"].as_object_mut().unwrap().remove("LastTagTime");
    v
}

/// Go's `%.<precision>g` plus a unit: `units.HumanSizeWithPrecision(size, precision)`
/// (the docker CLI's Size uses 3, VirtualSize 4), for sizes under 1e15.
fn human_size(size: i64, precision: usize) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 10.0 {
        1
    } else if v < 100.0 {
        2
    } else {
        3
    };
    let digits = precision.saturating_sub(int_digits);
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", units[i])
}

/// The rows `docker images -a --no-trunc --digests --format '{{json .}}'`
/// prints for these summaries (the CLI's expansion), without the times.
fn cli_rows(summaries: &Value) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    for img in summaries.as_array().unwrap() {
        let id = img["Id"].as_str().unwrap();
        let size = human_size(img["Size"].as_i64().unwrap(), 3);
        let virtual_size = human_size(img["VirtualSize"].as_i64().unwrap(), 4);
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in img["RepoTags"].as_array().into_iter().flatten() {
            let (repo, tag) = t.as_str().unwrap().rsplit_once(':').unwrap();
            tags.entry(repo.into()).or_default().push(tag.into());
        }
        for d in img["RepoDigests"].as_array().into_iter().flatten() {
            let (repo, dg) = d.as_str().unwrap().split_once('@').unwrap();
            digests.entry(repo.into()).or_default().push(dg.into());
        }
        let mut row = |repo: &str, tag: &str, digest: &str| {
            rows.insert(
                json!({"ID": id, "Repository": repo, "Tag": tag, "Digest": digest, "Size": size, "VirtualSize": virtual_size})
                    .to_string(),
            );
        };
        if tags.is_empty() && digests.is_empty() {
            row("<none>", "<none>", "<none>");
        }
        for (repo, ts) in &tags {
            let ds = digests.remove(repo).unwrap_or_default();
            for t in ts {
                if ds.is_empty() {
                    row(repo, t, "<none>");
                }
                for d in &ds {
                    row(repo, t, d);
                }
            }
        }
        for (repo, ds) in &digests {
            for d in ds {
                row(repo, "<none>", d);
            }
        }
    }
    rows
}

/// dockerd's own rows, reduced to the same fields.
fn docker_rows(out: &str) -> BTreeSet<String> {
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            json!({
                "ID": v["ID"], "Repository": v["Repository"], "Tag": v["Tag"],
                "Digest": v["Digest"], "Size": v["Size"], "VirtualSize": v["VirtualSize"],
            })
            .to_string()
        })
        .collect()
}

/// What dockerd said before it was stopped.
struct Seen {
    listing: Value,
    rows: String,
    inspect: BTreeMap<String, Value>,
    history: BTreeMap<String, Value>,
}

fn capture(d: &Daemon) -> Seen {
    let mut listing = d.get("/images/json?all=1");
    listing
        .as_array_mut()
        .unwrap()
        .sort_by(|a, b| a["Id"].as_str().cmp(&b["Id"].as_str()));
    let mut inspect = BTreeMap::new();
    let mut history = BTreeMap::new();
    for i in listing.as_array().unwrap() {
        let id = i["Id"].as_str().unwrap();
        inspect.insert(id.to_string(), d.get(&format!("/images/{id}/json")));
        history.insert(id.to_string(), d.get(&format!("/images/{id}/history")));
    }
    let rows = d.docker(&[
        "images",
        "-a",
        "--no-trunc",
        "--digests",
        "--format",
        "{{json .}}",
    ]);
    Seen {
        listing,
        rows,
        inspect,
        history,
    }
}

fn id_of(d: &Daemon, name: &str) -> String {
    d.get(&format!("/images/{name}/json"))["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

// ------------------------------------------------------------- the test

const DIGEST: &str = "sha256:3f3c9e3ac3d2e8b4c5f1a7c2d0b9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1";

#[test]
fn adopts_a_stopped_vfs_root() {
    if !have(&["dockerd", DOCKER], "adoption of a dockerd vfs data root") {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("sad")
        .tempdir_in("/tmp")
        .unwrap();
    let d = Daemon::start(tmp.path(), "vfs");
    adopts_a_stopped_root(tmp.path(), d, "vfs");
}

/// The same adoption from overlay2. The data root is under /tmp, which must
/// be a filesystem overlayfs can use as upper (not tmpfs on old kernels, not
/// overlayfs itself); if dockerd cannot start with overlay2 here, this says
/// why, loudly, and skips only this half.
#[test]
fn adopts_a_stopped_overlay2_root() {
    if !have(
        &["dockerd", DOCKER],
        "adoption of a dockerd overlay2 data root",
    ) {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("sao")
        .tempdir_in("/tmp")
        .unwrap();
    let d = match Daemon::try_start(tmp.path(), "overlay2") {
        Ok(d) => d,
        Err(why) => {
            eprintln!(
                "\n!!!!!!!! OVERLAY2 ADOPTION NOT TESTED: dockerd --storage-driver overlay2 \
                 did not start on {} (the vfs half still runs):\n{why}\n!!!!!!!!",
                tmp.path().display()
            );
            return;
        }
    };
    adopts_a_stopped_root(tmp.path(), d, "overlay2");
}

/// Make images in the running dockerd `d` (data root `dir/root`, storage
/// driver `driver`), stop it, adopt the root, and compare.
fn adopts_a_stopped_root(dir: &Path, mut d: Daemon, driver: &str) {
    // Images made every way dockerd makes them without running anything.
    for f in ["chain-all.tar", "imported.tar", "committed.tar"] {
        d.docker(&["load", "-i", common::fixture(f).to_str().unwrap()]);
    }
    d.docker_stdin(&["load"], &whiteout_archive());
    let root_tar = d.file("rootfs.tar", &rootfs());
    d.docker(&["import", &root_tar, "adopt/imp:1"]);
    d.docker(&[
        "import",
        "-m",
        "imported by adopt",
        "-c",
        "ENV A=1 B=two",
        "-c",
        r#"CMD ["/bin/hi"]"#,
        "-c",
        "LABEL k=v",
        "-c",
        "WORKDIR /w",
        "-c",
        "EXPOSE 8080/tcp",
        &root_tar,
        "adopt/imp:2",
    ]);
    d.docker(&["tag", "adopt/imp:1", "adopt/imp:extra"]);
    d.docker(&["tag", "dev/chain:1", "localhost:5000/adopt/chain:v2"]);
    d.docker(&["tag", "dev/chain:1", "adopt/chain"]);
    let ctx = build_context();
    d.docker_stdin(&["build", "-q", "-t", "adopt/built:1", "-"], &ctx);
    d.docker_stdin(
        &[
            "build",
            "-q",
            "-f",
            "Dockerfile.child",
            "-t",
            "adopt/child:1",
            "-",
        ],
        &ctx,
    );
    let imp1 = id_of(&d, "adopt/imp:1");
    let built = id_of(&d, "adopt/built:1");
    assert_ne!(d.get(&format!("/images/{built}/json"))["Parent"], "");

    // A digest reference and distribution metadata, as a pull would leave
    // them, written while the daemon is down; dockerd restores them.
    d.stop();
    let base_dir = dir.join("root/image").join(driver);
    let repos_path = base_dir.join("repositories.json");
    let mut repos: Value = serde_json::from_slice(&std::fs::read(&repos_path).unwrap()).unwrap();
    repos["Repositories"]["adopt/imp"][format!("adopt/imp@{DIGEST}")] = imp1.clone().into();
    std::fs::write(&repos_path, serde_json::to_vec(&repos).unwrap()).unwrap();
    let imp1_layer = d_config_diff_ids(&base_dir, &imp1)[0].clone();
    let v2 = base_dir.join("distribution/v2metadata-by-diffid/sha256");
    let by_digest = base_dir.join("distribution/diffid-by-digest/sha256");
    std::fs::create_dir_all(&v2).unwrap();
    std::fs::create_dir_all(&by_digest).unwrap();
    let meta = json!([{"Digest": DIGEST, "SourceRepository": "docker.io/adopt/imp", "HMAC": ""}]);
    std::fs::write(
        v2.join(&imp1_layer[7..]),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    std::fs::write(by_digest.join(&DIGEST[7..]), &imp1_layer).unwrap();

    let d2 = Daemon::start(dir, driver);
    drop(d);
    let d = d2;
    let seen = capture(&d);
    // The layer size dockerd reports is its size file: the tar entries' sum
    // (22 + 16 + 13 + 1300 + 8 + 10) under vfs; under overlay2 the disk
    // usage of the diff directory, which also counts the symlink's target
    // (`hello.txt`, 9 bytes) and the hard link once. strata must say the same.
    let imp1_size = match driver {
        "vfs" => 1369,
        _ => 1369 + 9,
    };
    assert_eq!(seen.inspect[&imp1]["Size"], imp1_size);
    assert_eq!(
        seen.inspect[&imp1]["RepoDigests"],
        json!([format!("adopt/imp@{DIGEST}")])
    );
    assert!(
        seen.inspect.len() >= 6 + 2 + 3 + 2 + 5 + 2,
        "{}",
        seen.inspect.len()
    );
    let mut d = d;
    d.stop();

    // Adopt the quiet data root.
    assert_eq!(d.mounts(), Vec::<String>::new(), "mounts left by dockerd");
    let source = dir.join("root");
    check_whiteout_layers(&source, driver, &seen);
    let before = tree_sums(&source);
    let store_dir = tempfile::tempdir().unwrap();
    let svc = ImageService::open(store_dir.path()).unwrap();
    let started = Instant::now();
    let report = block_on(svc.adopt_docker_root(source.clone(), None)).unwrap();
    let took = started.elapsed();
    assert_eq!(tree_sums(&source), before, "the source was modified");

    let want_ids: Vec<String> = seen.inspect.keys().cloned().collect();
    let mut got_ids = report.images.clone();
    got_ids.sort();
    assert_eq!(got_ids, want_ids);
    assert_eq!(report.driver, driver);
    assert_eq!(report.notes, Vec::<String>::new());
    assert_eq!(report.distribution_entries, 1);
    // Tagged by `docker tag`, `docker import REPO` or `docker build -t`.
    let tagged = std::fs::read_dir(base_dir.join("imagedb/metadata/sha256"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("lastUpdated").is_file())
        .count();
    assert!(tagged >= 4, "{tagged}");
    assert_eq!(report.last_tag_times_dropped, tagged);
    let mut want_refs: Vec<String> = seen
        .inspect
        .values()
        .flat_map(|i| {
            let tags = i["RepoTags"].as_array().unwrap().iter();
            let digests = i["RepoDigests"].as_array().unwrap().iter();
            tags.chain(digests)
                .map(|t| t.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    want_refs.sort();
    let mut got_refs = report.references.clone();
    got_refs.sort();
    assert_eq!(got_refs, want_refs);

    // The same images, field for field.
    let listing =
        serde_json::to_value(block_on(svc.images(Filters::new(), true, false)).unwrap()).unwrap();
    let mut listing_sorted = listing.as_array().unwrap().clone();
    listing_sorted.sort_by(|a, b| a["Id"].as_str().cmp(&b["Id"].as_str()));
    assert_eq!(Value::Array(listing_sorted), seen.listing);
    for id in &want_ids {
        let got = serde_json::to_value(block_on(svc.lookup_image(id)).unwrap()).unwrap();
        assert_eq!(
            comparable(got),
            comparable(seen.inspect[id].clone()),
            "{id}"
        );
        let hist = serde_json::to_value(block_on(svc.image_history(id)).unwrap()).unwrap();
        assert_eq!(hist, seen.history[id], "history of {id}");
    }
    assert_eq!(cli_rows(&seen.listing), docker_rows(&seen.rows));
    assert_eq!(cli_rows(&listing), docker_rows(&seen.rows));

    // Layers: every DiffID's blob is the exact stream.
    let cs = svc.store().content();
    for i in seen.inspect.values() {
        for l in i["RootFS"]["Layers"].as_array().into_iter().flatten() {
            let l = l.as_str().unwrap();
            assert_eq!(cs.check(l).unwrap(), None, "blob {l}");
        }
    }

    // Distribution metadata carried beside the log.
    let md = strata::distribution::metadata::MetadataStore::new(&svc);
    assert_eq!(md.get_diff_id(DIGEST).as_deref(), Some(imp1_layer.as_str()));
    assert_eq!(
        serde_json::to_value(md.get_metadata(&imp1_layer)).unwrap(),
        meta
    );

    // ONE write: every event has the same commit time; the expected kinds.
    let head = svc.store().head().unwrap();
    let events = svc.store().events(1, u64::MAX).unwrap();
    let times: BTreeSet<i64> = events.iter().map(|e| e.time_unix_nanos).collect();
    assert_eq!(times.len(), 1, "{} writes", times.len());
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &events {
        *kinds.entry(e.body.kind()).or_default() += 1;
        match &e.body {
            EventBody::ImageCreated { source, .. } => {
                assert_eq!(*source, strata::ImageSource::Load)
            }
            EventBody::ReferenceAdded { tag_time, .. } => assert!(!tag_time),
            _ => {}
        }
    }
    let layer_count: BTreeSet<String> = seen
        .inspect
        .values()
        .flat_map(|i| {
            let ls: Vec<String> = i["RootFS"]["Layers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            // ChainIDs
            let mut chain: Vec<String> = Vec::new();
            for l in ls {
                let next = match chain.last() {
                    None => l,
                    Some(p) => sha(format!("{p} {l}").as_bytes()),
                };
                chain.push(next);
            }
            chain
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("distribution-metadata-added", 1),
            ("image-created", want_ids.len()),
            ("layer-registered", layer_count.len()),
            ("reference-added", want_refs.len()),
        ])
    );
    assert_eq!(report.layers, layer_count.len());
    common::assert_verified(&svc);

    // Adopting again changes nothing.
    let again = block_on(svc.adopt_docker_root(source.clone(), Some(driver.into()))).unwrap();
    assert_eq!(again.images.len(), want_ids.len());
    assert_eq!(svc.store().head().unwrap(), head);
    assert_eq!(tree_sums(&source), before, "the source was modified");

    damaged_sources_are_refused(&source, driver, &imp1_layer);
    eprintln!("{driver}: adoption took {took:?}");
}

/// The directory holding the files of layer `chain` in data root `r`:
/// vfs keeps the layer's full rootfs, overlay2 only the layer's own changes.
fn layer_files(r: &Path, driver: &str, chain: &str) -> PathBuf {
    let cache_id = std::fs::read_to_string(
        r.join("image")
            .join(driver)
            .join("layerdb/sha256")
            .join(&chain[7..])
            .join("cache-id"),
    )
    .unwrap();
    match driver {
        "vfs" => r.join("vfs/dir").join(cache_id.trim()),
        "overlay2" => r.join("overlay2").join(cache_id.trim()).join("diff"),
        other => panic!("driver {other}"),
    }
}

/// The ChainID of the top layer of an inspected image.
fn top_chain_id(inspect: &Value) -> String {
    let mut chain = String::new();
    for l in inspect["RootFS"]["Layers"].as_array().unwrap() {
        let l = l.as_str().unwrap();
        chain = if chain.is_empty() {
            l.to_string()
        } else {
            sha(format!("{chain} {l}").as_bytes())
        };
    }
    chain
}

/// What the source holds for the whiteout and opaque-directory layers, per
/// driver: vfs has applied them (full rootfs), overlay2 keeps a 0:0
/// character device and `trusted.overlay.opaque=y`. Prints the evidence.
fn check_whiteout_layers(source: &Path, driver: &str, seen: &Seen) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ids: BTreeMap<&str, &str> = seen
        .inspect
        .iter()
        .flat_map(|(id, i)| {
            let tags = i["RepoTags"].as_array().unwrap();
            tags.iter().map(move |t| (t.as_str().unwrap(), id.as_str()))
        })
        .collect();
    let top = layer_files(
        source,
        driver,
        &top_chain_id(&seen.inspect[ids["adopt/wh:top"]]),
    );
    let opq = layer_files(
        source,
        driver,
        &top_chain_id(&seen.inspect[ids["adopt/wh:opaque"]]),
    );
    let names = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let opaque_xattr = |p: &Path| -> Option<Vec<u8>> {
        let mut buf = [0u8; 16];
        rustix::fs::getxattr(p, "trusted.overlay.opaque", &mut buf[..])
            .ok()
            .map(|n| buf[..n].to_vec())
    };
    match driver {
        "vfs" => {
            assert_eq!(names(&top), ["dir", "kept.txt"]);
            assert_eq!(names(&opq), ["dir", "gone.txt", "kept.txt"]);
            assert_eq!(names(&opq.join("dir")), ["c.txt"]);
            assert_eq!(opaque_xattr(&opq.join("dir")), None);
        }
        "overlay2" => {
            // Only each layer's own changes; the deletion is a whiteout device.
            assert_eq!(names(&top), ["gone.txt", "kept.txt"]);
            let wh = std::fs::symlink_metadata(top.join("gone.txt")).unwrap();
            assert!(wh.file_type().is_char_device(), "{wh:?}");
            assert_eq!(wh.rdev(), 0);
            assert_eq!(names(&opq), ["dir"]);
            assert_eq!(names(&opq.join("dir")), ["c.txt"]);
            assert_eq!(opaque_xattr(&opq.join("dir")), Some(b"y".to_vec()));
            let dirs = std::fs::read_dir(source.join("overlay2")).unwrap().count();
            let diffs = std::fs::read_dir(source.join("overlay2"))
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().join("diff").is_dir())
                .count();
            eprintln!(
                "overlay2 evidence: {} holds {dirs} entries ({diffs} layer dirs with diff/ + l/); \
                 {}/gone.txt is a 0:0 char device; {}/dir has trusted.overlay.opaque=y",
                source.join("overlay2").display(),
                top.display(),
                opq.display()
            );
            assert!(diffs >= 10, "{diffs}");
        }
        other => panic!("driver {other}"),
    }
}

/// The DiffIDs of an image, from the source's config.
fn d_config_diff_ids(base: &Path, id: &str) -> Vec<String> {
    let cfg: Value = serde_json::from_slice(
        &std::fs::read(base.join("imagedb/content/sha256").join(&id[7..])).unwrap(),
    )
    .unwrap();
    cfg["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// Rewrite segment `index` (`usize::MAX`: the last) of a layer's tar-split file.
fn edit_split(r: &Path, driver: &str, layer: &str, index: usize, f: impl Fn(&mut Vec<u8>)) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let p = r
        .join("image")
        .join(driver)
        .join("layerdb/sha256")
        .join(&layer[7..])
        .join("tar-split.json.gz");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()),
        &mut text,
    )
    .unwrap();
    let mut entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let i = index.min(entries.len() - 1);
    assert_eq!(entries[i]["type"], 2, "entry {i} is not a segment");
    let mut raw = b64.decode(entries[i]["payload"].as_str().unwrap()).unwrap();
    f(&mut raw);
    entries[i]["payload"] = b64.encode(raw).into();
    let mut out = String::new();
    for e in entries {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, out.as_bytes()).unwrap();
    std::fs::write(p, gz.finish().unwrap()).unwrap();
}

/// Copies of the source, damaged one way each: adoption fails with the
/// given message and records nothing.
fn damaged_sources_are_refused(source: &Path, driver: &str, layer: &str) {
    // The directory with the files of the single-layer image's layer.
    let layer_dir = |r: &Path| layer_files(r, driver, layer);
    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage<'_>, String)> = vec![
        (
            "file content changed, same size",
            Box::new(|r: &Path| {
                let f = layer_dir(r).join("hello.txt");
                std::fs::write(f, b"HELLO, adopt\n").unwrap();
            }),
            format!("layer {layer}: file integrity checksum failed for \"hello.txt\""),
        ),
        (
            "file truncated",
            Box::new(|r: &Path| {
                let f = layer_dir(r).join("big.bin");
                std::fs::write(f, b"short").unwrap();
            }),
            format!(
                "layer {layer}: file \"big.bin\" of the layer has 5 bytes, the layer's tar has 1300"
            ),
        ),
        (
            "file missing",
            Box::new(|r: &Path| {
                std::fs::remove_file(layer_dir(r).join("bin/hi")).unwrap();
            }),
            format!(
                "layer {layer}: file \"bin/hi\" of the layer: No such file or directory (os error 2)"
            ),
        ),
        (
            "symlink out of the layer",
            Box::new(|r: &Path| {
                let dir = layer_dir(r);
                std::fs::remove_dir_all(dir.join("etc")).unwrap();
                std::os::unix::fs::symlink("/bin", dir.join("etc")).unwrap();
            }),
            format!(
                "layer {layer}: file \"etc/passwd\" of the layer: No such file or directory (os error 2)"
            ),
        ),
        (
            "tar-split header changed",
            Box::new(move |r: &Path| {
                edit_split(r, driver, layer, 0, |raw| raw[0] ^= 0x20);
            }),
            format!("layer {layer}: invalid tar stream: archive header checksum mismatch"),
        ),
        (
            "tar-split trailer grown",
            Box::new(move |r: &Path| {
                edit_split(r, driver, layer, usize::MAX, |raw| raw.push(0));
            }),
            String::new(), // a DiffID mismatch: checked by prefix below
        ),
    ];
    for (case, damage, want) in cases {
        let copy = tempfile::Builder::new()
            .prefix("sadc")
            .tempdir_in("/tmp")
            .unwrap();
        let ok = Command::new("cp")
            .arg("-a")
            .arg(source)
            .arg(copy.path().join("root"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -a failed");
        let r = copy.path().join("root");
        damage(&r);
        let (_s, svc) = common::service();
        let err = block_on(svc.adopt_docker_root(r.clone(), None)).unwrap_err();
        if want.is_empty() {
            assert!(
                err.message().starts_with(&format!(
                    "layer {layer}: the reassembled stream hashes to sha256:"
                )) && err
                    .message()
                    .ends_with(&format!(", not its DiffID {layer}")),
                "{case}: {err}"
            );
        } else {
            assert_eq!(err.message(), want, "{case}");
        }
        assert_eq!(
            svc.store().head().unwrap().next_seq,
            1,
            "{case}: something was written"
        );
        assert!(block_on(svc.map()).unwrap().is_empty(), "{case}");
    }
}

#[test]
fn driver_and_root_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let mk = |rel: &str| std::fs::create_dir_all(p.join(rel)).unwrap();
    let (_s, svc) = common::service();
    let adopt = |root: PathBuf, driver: Option<&str>| {
        block_on(svc.adopt_docker_root(root, driver.map(str::to_string)))
            .map(|r| (r.driver, r.images.len()))
            .map_err(|e| e.message().to_string())
    };
    let disp = p.display().to_string();
    assert_eq!(
        adopt(p.join("nope"), None).unwrap_err(),
        format!(
            "{disp}/nope is not a docker data root: {disp}/nope/image: No such file or directory (os error 2)"
        )
    );
    mk("image");
    assert_eq!(
        adopt(p.to_path_buf(), None).unwrap_err(),
        format!("{disp} is not a docker data root: no image/<driver>/imagedb")
    );
    assert_eq!(
        adopt(p.to_path_buf(), Some("aufs")).unwrap_err(),
        "unsupported storage driver \"aufs\": strata reads vfs and overlay2"
    );
    assert_eq!(
        adopt(p.to_path_buf(), Some("overlay2")).unwrap_err(),
        format!("{disp} has no image store for the overlay2 driver (no image/overlay2/imagedb)")
    );
    mk("image/btrfs/imagedb");
    assert_eq!(
        adopt(p.to_path_buf(), None).unwrap_err(),
        "unsupported storage driver \"btrfs\": strata reads vfs and overlay2"
    );
    mk("image/overlay2/imagedb");
    assert_eq!(
        adopt(p.to_path_buf(), None).unwrap_err(),
        format!(
            "{disp} holds image stores of several drivers (btrfs, overlay2): choose one with --driver"
        )
    );
    // An empty overlay2 store: nothing to adopt, nothing written.
    assert_eq!(
        adopt(p.to_path_buf(), Some("overlay2")),
        Ok(("overlay2".to_string(), 0))
    );
    assert_eq!(svc.store().head().unwrap().next_seq, 1);
}
