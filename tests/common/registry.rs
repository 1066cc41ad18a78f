//! A real `docker-registry serve` (distribution 2.8) on 127.0.0.1 for the
//! registry tests: one plain and one htpasswd-protected instance per test
//! binary, stopped at exit. Include with
//! `#[path = "common/registry.rs"] mod registry_harness;` next to
//! `#[path = "common/dockerd.rs"] mod dockerd;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn atexit(cb: extern "C" fn()) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}

pub(crate) const USER: &str = "strata";
pub(crate) const PASS: &str = "s3cret";

/// A `docker-registry serve` on 127.0.0.1.
pub(crate) struct Registry {
    pub(crate) host: String,
    pub(crate) dir: PathBuf,
    child: Mutex<Option<Child>>,
}

static PLAIN: OnceLock<Option<Registry>> = OnceLock::new();
static AUTHED: OnceLock<Option<Registry>> = OnceLock::new();

extern "C" fn stop_registries() {
    for r in [PLAIN.get(), AUTHED.get()].into_iter().flatten().flatten() {
        if let Some(mut c) = r.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // SAFETY: our own child process.
            unsafe { kill(c.id() as i32, 15) };
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&r.dir);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    fn start(with_auth: bool) -> Option<Registry> {
        if !crate::dockerd::have(&["docker-registry"], "registry tests") {
            return None;
        }
        static HOOK: OnceLock<()> = OnceLock::new();
        HOOK.get_or_init(|| {
            // SAFETY: registering a plain extern "C" fn.
            assert_eq!(unsafe { atexit(stop_registries) }, 0);
        });
        let dir = tempfile::Builder::new()
            .prefix("strata-reg")
            .tempdir()
            .unwrap()
            .keep();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if with_auth {
            let hash = bcrypt::hash_with_result(PASS, 4)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            std::fs::write(dir.join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), cfg).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(crate::dockerd::tool("docker-registry").unwrap())
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = Registry {
            host: format!("127.0.0.1:{port}"),
            dir,
            child: Mutex::new(Some(child)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&reg.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not come up: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        Some(reg)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

pub(crate) fn plain_registry() -> Option<&'static Registry> {
    PLAIN.get_or_init(|| Registry::start(false)).as_ref()
}

pub(crate) fn auth_registry() -> Option<&'static Registry> {
    AUTHED.get_or_init(|| Registry::start(true)).as_ref()
}
