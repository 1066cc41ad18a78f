//! The real peers for interop tests: tool discovery, and one private
//! dockerd 20.10 per test binary.
//!
//! The daemon is started on first use in a short temporary directory
//! (`/tmp/sio*`: unix socket paths must stay under 108 bytes), with its own
//! data root, exec root, socket and containerd; nothing is shared with any
//! other daemon on the machine. It is stopped (SIGTERM, then SIGKILL) and its
//! directory removed by an `atexit` handler when the test binary exits,
//! whether the tests passed or failed. Tests that use it take a lock
//! ([`session`]) and start from an empty image store, so they never see each
//! other's images.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

// The C library std already links; declared here rather than adding a crate.
unsafe extern "C" {
    fn atexit(cb: extern "C" fn()) -> i32;
    fn geteuid() -> u32;
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// The Debian docker.io 20.10 CLI (`/usr/local/bin/docker` may be a newer one).
pub const DOCKER: &str = "/usr/bin/docker";

fn search_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // dockerd lives in sbin, which a non-login PATH may lack.
    for extra in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        dirs.push(PathBuf::from(extra));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Where `name` is installed (looked up once per binary), if it is.
pub fn tool(name: &str) -> Option<PathBuf> {
    static FOUND: OnceLock<Mutex<HashMap<String, Option<PathBuf>>>> = OnceLock::new();
    let mut found = FOUND
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    found
        .entry(name.to_string())
        .or_insert_with(|| search_path(name))
        .clone()
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

/// True when every tool in `names` is installed. Otherwise: under CI (env
/// `CI` set) fail with a clear message, since `.ci/run` installs them; on a
/// developer's machine print a note and return false so the test can skip.
pub fn have(names: &[&str], what: &str) -> bool {
    let mut missing: Vec<String> = names
        .iter()
        .filter(|n| tool(n).is_none())
        .map(|n| n.to_string())
        .collect();
    if names.contains(&"dockerd") && !running_as_root() {
        missing.push("root privileges (dockerd must run as root)".into());
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{what} needs {} but it is missing; CI must provide it \
             (.ci/run installs docker.io and skopeo from Debian)",
            missing.join(", ")
        );
    }
    eprintln!(
        "note: skipping {what}: {} not available (install docker.io and skopeo to run it)",
        missing.join(", ")
    );
    false
}

/// Run `cmd`, panicking with its stderr unless it succeeds.
pub fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Write from a thread so a chatty child cannot deadlock us.
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        check(&desc, out)
    } else {
        check(&desc, child.wait_with_output().unwrap())
    }
}

fn check(desc: &str, out: Output) -> Output {
    if !out.status.success() {
        panic!(
            "{desc} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A private dockerd.
pub struct Dockerd {
    /// Its temporary directory (data root, exec root, socket, log).
    pub dir: PathBuf,
    /// Its API socket.
    pub sock: PathBuf,
    child: Mutex<Option<Child>>,
    lock: Mutex<()>,
}

static DAEMON: OnceLock<Dockerd> = OnceLock::new();

extern "C" fn stop_at_exit() {
    if let Some(d) = DAEMON.get() {
        d.stop();
    }
}

static EXPERIMENTAL: OnceLock<Dockerd> = OnceLock::new();

extern "C" fn stop_experimental_at_exit() {
    if let Some(d) = EXPERIMENTAL.get() {
        d.stop();
    }
}

/// [`session`] with a private dockerd started with `--experimental` (for
/// `docker build --squash`); a separate daemon from [`session`]'s.
pub fn session_experimental(what: &str) -> Option<(MutexGuard<'static, ()>, &'static Dockerd)> {
    if !have(&["dockerd", DOCKER], what) {
        return None;
    }
    let d = EXPERIMENTAL
        .get_or_init(|| Dockerd::start_with(&["--experimental"], stop_experimental_at_exit));
    let guard = d.lock.lock().unwrap_or_else(|e| e.into_inner());
    d.reset();
    Some((guard, d))
}

/// Exclusive use of the binary's private dockerd, its image store emptied
/// first. None (after a note) when the tools are missing outside CI.
pub fn session(what: &str) -> Option<(MutexGuard<'static, ()>, &'static Dockerd)> {
    if !have(&["dockerd", DOCKER], what) {
        return None;
    }
    let d = DAEMON.get_or_init(Dockerd::start);
    let guard = d.lock.lock().unwrap_or_else(|e| e.into_inner());
    d.reset();
    Some((guard, d))
}

impl Dockerd {
    fn start() -> Dockerd {
        Dockerd::start_with(&[], stop_at_exit)
    }

    /// Start a daemon with `extra` arguments; `at_exit` stops it.
    fn start_with(extra: &[&str], at_exit: extern "C" fn()) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("sio")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let sock = dir.join("sock");
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let arg = |p: &str| dir.join(p).into_os_string();
        let child = Command::new(tool("dockerd").unwrap())
            .arg("--data-root")
            .arg(arg("root"))
            .arg("--exec-root")
            .arg(arg("exec"))
            .arg("--pidfile")
            .arg(arg("pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd: {e}"));
        let d = Dockerd {
            dir,
            sock,
            child: Mutex::new(Some(child)),
            lock: Mutex::new(()),
        };
        // SAFETY: registering a plain extern "C" fn with no arguments.
        let rc = unsafe { atexit(at_exit) };
        assert_eq!(rc, 0, "atexit failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = d
                .docker_cmd(&["version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            let exited = d
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(d.dir.join("log")).unwrap_or_default();
                d.stop();
                panic!("private dockerd did not come up ({exited:?}); its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// SIGTERM, wait up to 20 s, then SIGKILL it (and its containerd); remove its directory.
    fn stop(&self) {
        let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = slot.take() else { return };
        // SAFETY: signalling a child process we spawned and have not reaped.
        unsafe { kill(child.id() as i32, SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
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
            let pidfile = self.dir.join("exec/containerd/containerd.pid");
            if let Some(pid) = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                // SAFETY: the containerd our dockerd started, left orphaned.
                unsafe { kill(pid, SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A `/usr/bin/docker -H unix://<sock>` command, isolated from the user's CLI config.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
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

    /// Run the CLI; its stdout. Panics (with stderr) on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = run_ok(&mut self.docker_cmd(args), None);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run the CLI with `input` on stdin; its stdout.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> String {
        let out = run_ok(&mut self.docker_cmd(args), Some(input));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run the CLI; its stdout as raw bytes (for `docker save`).
    pub fn docker_bytes(&self, args: &[&str]) -> Vec<u8> {
        run_ok(&mut self.docker_cmd(args), None).stdout
    }

    /// `GET path` on the Engine API socket: status and body.
    pub fn get_raw(&self, path: &str) -> (u16, Vec<u8>) {
        let mut s = std::os::unix::net::UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let end = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP response without header end");
        let head = String::from_utf8_lossy(&resp[..end]).to_string();
        let body = resp[end + 4..].to_vec();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let chunked = head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
        (status, if chunked { dechunk(&body) } else { body })
    }

    /// `GET /v1.41{path}`, which must answer 200 with JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let full = format!("/v1.41{path}");
        let (status, body) = self.get_raw(&full);
        assert_eq!(
            status,
            200,
            "GET {full}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap()
    }

    /// IDs of all images, intermediates included.
    pub fn all_ids(&self) -> Vec<String> {
        let list = self.get("/images/json?all=1");
        let mut ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["Id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Remove every image (this daemon has no containers).
    pub fn reset(&self) {
        for _ in 0..10 {
            if self.all_ids().is_empty() {
                return;
            }
            self.docker(&["image", "prune", "-a", "-f"]);
            // Anything prune left (it should leave nothing): force-remove leaves first.
            let list = self.get("/images/json?all=1");
            let items = list.as_array().unwrap();
            let parents: Vec<&str> = items
                .iter()
                .map(|i| i["ParentId"].as_str().unwrap())
                .collect();
            for i in items {
                let id = i["Id"].as_str().unwrap();
                if !parents.contains(&id) {
                    let _ = self
                        .docker_cmd(&["rmi", "-f", id])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        assert_eq!(self.all_ids(), Vec::<String>::new(), "cannot empty dockerd");
    }

    /// Write `bytes` to a file in the daemon's directory; its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join("files").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_str = std::str::from_utf8(&body[..nl]).unwrap();
        let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[nl + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// A path as a `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
