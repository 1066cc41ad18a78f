//! TLS registries and credential helpers: a real `docker-registry serve`
//! with `http.tls` on 127.0.0.1 (certificates made with `openssl` at test
//! time), reached as a *secure* registry through
//! `RegistryOptions::secure_only` (loopback is insecure by default), and
//! the CLI's `credsStore` / `credHelpers` with a fake
//! `docker-credential-strtest` helper.

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;
#[path = "common/registry.rs"]
mod registry_harness;
use registry_harness::*;

use common::builder::*;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strata::distribution::credentials::CliConfig;
use strata::distribution::{Auth, PullOptions, PushOptions, RegistryOptions};

// ---------------------------------------------------------------- certs

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.crt`, `<name>.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A leaf certificate `<name>.crt`/`<name>.key` signed by CA `ca`.
fn make_leaf(dir: &Path, ca: &str, name: &str, usage: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// A fresh PKI: CA `ca` signing server `server` and client `client`; CA
/// `rogue` signing server `rogue-server`.
fn pki() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    make_ca(d.path(), "ca");
    make_ca(d.path(), "rogue");
    make_leaf(d.path(), "ca", "server", "serverAuth");
    make_leaf(d.path(), "ca", "client", "clientAuth");
    make_leaf(d.path(), "rogue", "rogue-server", "serverAuth");
    d
}

// ---------------------------------------------------------------- registry

/// A TLS `docker-registry serve` on 127.0.0.1, stopped on drop.
struct TlsRegistry {
    host: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsRegistry {
    fn start(pki: &Path, server: &str, client_ca: Option<&str>) -> Option<TlsRegistry> {
        if !dockerd::have(&["docker-registry", "openssl"], "registry TLS tests") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
            dir.path().join("data").display(),
            pki.join(format!("{server}.crt")).display(),
            pki.join(format!("{server}.key")).display(),
        );
        if let Some(ca) = client_ca {
            cfg.push_str(&format!(
                "    clientcas:\n      - {}\n",
                pki.join(format!("{ca}.crt")).display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(dockerd::tool("docker-registry").unwrap())
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = TlsRegistry {
            host: format!("127.0.0.1:{port}"),
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&reg.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not come up: {}",
                std::fs::read_to_string(reg.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        Some(reg)
    }
}

/// A certs dir with `<host>/` holding the given files of `pki` (renamed).
fn certs_dir(pki: &Path, host: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let h = d.path().join(host);
    std::fs::create_dir_all(&h).unwrap();
    for (from, to) in files {
        std::fs::copy(pki.join(from), h.join(to)).unwrap();
    }
    d
}

fn pull_opts(registry: RegistryOptions) -> PullOptions {
    PullOptions {
        registry,
        retry_delay: Duration::from_millis(20),
        max_download_attempts: 1,
        ..PullOptions::default()
    }
}

fn push_opts(registry: RegistryOptions) -> PushOptions {
    PushOptions {
        registry,
        retry_delay: Duration::from_millis(20),
        max_upload_attempts: 1,
        ..PushOptions::default()
    }
}

fn image(tag: &str, seed: &str) -> Img {
    base(
        vec![layer(&[("f", seed.as_bytes())])],
        1_600_000_000,
        &[],
        &[tag],
    )
}

/// Push `tag` from one store and pull it into a fresh one with `opts`.
async fn round_trip(tag: &str, seed: &str, opts: &RegistryOptions) -> Result<(), String> {
    let img = image(tag, seed);
    let (_d, svc) = service();
    load_imgs(&svc, &[&img]).await;
    svc.push_image_with(tag, push_opts(opts.clone()))
        .await
        .map_err(|e| format!("push: {}", e.message()))?;
    let (_d2, svc2) = service();
    svc2.pull_image_with(tag, pull_opts(opts.clone()))
        .await
        .map_err(|e| format!("pull: {}", e.message()))?;
    assert_eq!(svc2.get_image(tag).await.unwrap(), img.id());
    assert_verified(&svc2);
    Ok(())
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registry_trust_and_client_certificates() {
    let pki = pki();
    let p = pki.path();
    let Some(reg) = TlsRegistry::start(p, "server", None) else {
        return;
    };
    let Some(mtls) = TlsRegistry::start(p, "server", Some("ca")) else {
        return;
    };
    let Some(rogue) = TlsRegistry::start(p, "rogue-server", None) else {
        return;
    };
    let Some(plain) = plain_registry() else {
        return;
    };
    let h = reg.host.clone();
    let m = mtls.host.clone();
    let r = rogue.host.clone();
    let pl = plain.host.clone();
    let ca_only = |host: &str| certs_dir(p, host, &[("ca.crt", "ca.crt")]);
    let with_pair = |host: &str| {
        certs_dir(
            p,
            host,
            &[
                ("ca.crt", "ca.crt"),
                ("client.crt", "client.cert"),
                ("client.key", "client.key"),
            ],
        )
    };
    let empty = tempfile::tempdir().unwrap();
    let dirs = [
        ("ca", ca_only(&h)),
        ("mtls-ca", ca_only(&m)),
        ("mtls-pair", with_pair(&m)),
        ("rogue-ca", certs_dir(p, &r, &[("rogue.crt", "ca.crt")])),
        ("rogue-our-ca", ca_only(&r)),
        (
            "pair-no-key",
            certs_dir(p, &h, &[("client.crt", "client.cert")]),
        ),
        (
            "key-no-pair",
            certs_dir(p, &h, &[("client.key", "client.key")]),
        ),
    ];
    let dir = |name: &str| {
        dirs.iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .path()
            .to_path_buf()
    };
    let secure = |d: PathBuf| RegistryOptions::secure_only(d);
    let cases: Vec<(&str, String, RegistryOptions, Result<(), String>)> = vec![
        (
            "CA from the certs dir",
            format!("{h}/tls/img:1"),
            secure(dir("ca")),
            Ok(()),
        ),
        (
            "no CA: unknown authority",
            format!("{h}/tls/img:2"),
            secure(empty.path().into()),
            Err(format!(
                "push: Get \"https://{h}/v2/\": x509: certificate signed by unknown authority"
            )),
        ),
        (
            "server cert from another CA",
            format!("{r}/tls/img:3"),
            secure(dir("rogue-ca")),
            Ok(()),
        ),
        (
            "rogue server, our CA only",
            format!("{r}/tls/img:4"),
            secure(dir("rogue-our-ca")),
            Err(format!(
                "push: Get \"https://{r}/v2/\": x509: certificate signed by unknown authority"
            )),
        ),
        (
            "loopback default: https without verification",
            format!("{h}/tls/img:5"),
            RegistryOptions::default(),
            Ok(()),
        ),
        (
            "loopback default: plain http registry falls back to http",
            format!("{pl}/tls/img:6"),
            RegistryOptions {
                certs_dir: empty.path().into(),
                ..RegistryOptions::default()
            },
            Ok(()),
        ),
        (
            "secure plain-http registry: no fallback",
            format!("{pl}/tls/img:7"),
            secure(empty.path().into()),
            Err(format!(
                "push: Get \"https://{pl}/v2/\": http: server gave HTTP response to HTTPS client"
            )),
        ),
        (
            "listed as insecure: https without verification",
            format!("{r}/tls/img:8"),
            RegistryOptions {
                insecure: vec![r.clone()],
                ..secure(empty.path().into())
            },
            Ok(()),
        ),
        (
            "client certificate pair",
            format!("{m}/tls/img:9"),
            secure(dir("mtls-pair")),
            Ok(()),
        ),
        (
            "client certificate required, none given",
            format!("{m}/tls/img:10"),
            secure(dir("mtls-ca")),
            Err(format!(
                "push: Get \"https://{m}/v2/\": remote error: tls: bad certificate"
            )),
        ),
        (
            "client certificate without key",
            format!("{h}/tls/img:11"),
            secure(dir("pair-no-key")),
            Err(
                "push: missing key client.key for client certificate client.cert. \
                 Note that CA certificates should use the extension .crt"
                    .to_string(),
            ),
        ),
        (
            "key without client certificate",
            format!("{h}/tls/img:12"),
            secure(dir("key-no-pair")),
            Err("push: missing client certificate client.cert for key client.key".to_string()),
        ),
    ];
    let mut failures = Vec::new();
    for (name, tag, opts, want) in cases {
        let got = round_trip(&tag, name, &opts).await;
        if got != want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_over_tls() {
    let pki = pki();
    let Some(reg) = TlsRegistry::start(pki.path(), "server", None) else {
        return;
    };
    let h = reg.host.clone();
    let certs = certs_dir(pki.path(), &h, &[("ca.crt", "ca.crt")]);
    let empty = tempfile::tempdir().unwrap();
    let ok = strata::distribution::login_with(
        &h,
        &Auth::basic("u", "p"),
        &RegistryOptions::secure_only(certs.path()),
    )
    .await
    .unwrap();
    assert_eq!(ok.status, "Login Succeeded");
    let err = strata::distribution::login_with(
        &h,
        &Auth::basic("u", "p"),
        &RegistryOptions::secure_only(empty.path()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message(),
        format!("Get \"https://{h}/v2/\": x509: certificate signed by unknown authority")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_over_tls() {
    let pki = pki();
    let p = pki.path();
    let Some(reg) = TlsRegistry::start(p, "server", None) else {
        return;
    };
    let Some(plain) = plain_registry() else {
        return;
    };
    let h = reg.host.clone();
    let pl = plain.host.clone();
    let certs = certs_dir(p, &h, &[("ca.crt", "ca.crt")]);
    let empty = tempfile::tempdir().unwrap();
    let secure = |d: &Path| RegistryOptions::secure_only(d);
    let advice = |host: &str| {
        format!(
            "If this private registry supports only HTTP or HTTPS with an unknown CA certificate, \
             please add `--insecure-registry {host}` to the daemon's arguments. In the case of HTTPS, \
             if you have access to the registry's CA certificate, no need for the flag; simply place \
             the CA certificate at /etc/docker/certs.d/{host}/ca.crt"
        )
    };
    let dead = format!("127.0.0.1:{}", free_port());
    // (name, term, options, expected error). Registry 2.8 has no v1
    // search API: a reachable registry answers 404, as dockerd reports it.
    let cases: Vec<(&str, String, RegistryOptions, String)> = vec![
        (
            "secure, CA in the certs dir: reached over https",
            format!("{h}/test"),
            secure(certs.path()),
            "Unexpected status code 404".into(),
        ),
        (
            "secure, no CA: unknown authority, no http fallback",
            format!("{h}/test"),
            secure(empty.path()),
            format!(
                "invalid registry endpoint https://{h}/v1/: Get \"https://{h}/v1/_ping\": \
                 x509: certificate signed by unknown authority. {}",
                advice(&h)
            ),
        ),
        (
            "insecure loopback: https without verification",
            format!("{h}/test"),
            RegistryOptions {
                certs_dir: empty.path().into(),
                ..RegistryOptions::default()
            },
            "Unexpected status code 404".into(),
        ),
        (
            "insecure loopback plain-http registry: http fallback",
            format!("{pl}/test"),
            RegistryOptions {
                certs_dir: empty.path().into(),
                ..RegistryOptions::default()
            },
            "Unexpected status code 404".into(),
        ),
        (
            "secure plain-http registry: no fallback",
            format!("{pl}/test"),
            secure(empty.path()),
            format!(
                "invalid registry endpoint https://{pl}/v1/: Get \"https://{pl}/v1/_ping\": \
                 http: server gave HTTP response to HTTPS client. {}",
                advice(&pl)
            ),
        ),
        (
            "insecure, nothing listening: both attempts reported",
            format!("{dead}/test"),
            RegistryOptions {
                certs_dir: empty.path().into(),
                ..RegistryOptions::default()
            },
            format!(
                "invalid registry endpoint \"http://{dead}/v1/\". HTTPS attempt: \
                 Get \"https://{dead}/v1/_ping\": dial tcp {dead}: connect: connection refused. \
                 HTTP attempt: Get \"http://{dead}/v1/_ping\": dial tcp {dead}: connect: connection refused"
            ),
        ),
    ];
    let (_d, svc) = service();
    let mut failures = Vec::new();
    for (name, term, opts, want) in cases {
        let got = svc
            .search_registry_for_images_with(&term, None, &strata::Filters::new(), None, &opts)
            .await
            .map_err(|e| e.message().to_string());
        if got != Err(want.clone()) {
            failures.push(format!("{name}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The CLI under the environment's defaults (loopback is insecure):
    // https without verification answers 404; plain http to the TLS
    // registry would have answered 400.
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["search", &format!("{h}/test")])
        .env("STRATA_ROOT", root.path().join("store"))
        .env("DOCKER_CONFIG", root.path().join("cfg"))
        .env_remove("STRATA_INSECURE_REGISTRIES")
        .env("STRATA_CERTS_DIR", empty.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned()
        ),
        (
            false,
            String::new(),
            "Error response from daemon: Unexpected status code 404\n".to_string()
        )
    );
}

// ---------------------------------------------------------------- credential helpers

const HELPER: &str = r#"#!/bin/sh
d="$(dirname "$0")"
case "$1" in
  store) cat > "$d/creds.json"; echo store >> "$d/calls" ;;
  get) read url; echo "get $url" >> "$d/calls"
       if [ -f "$d/creds.json" ]; then cat "$d/creds.json"
       else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) read url; echo "erase $url" >> "$d/calls"; rm -f "$d/creds.json" ;;
  *) echo "unknown action $1"; exit 1 ;;
esac
"#;

struct Cli {
    bin: tempfile::TempDir,
    config: tempfile::TempDir,
}

impl Cli {
    fn new(config_json: &str) -> Cli {
        let bin = tempfile::tempdir().unwrap();
        let helper = bin.path().join("docker-credential-strtest");
        std::fs::write(&helper, HELPER).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("config.json"), config_json).unwrap();
        Cli { bin, config }
    }

    fn run(&self, root: &Path, args: &[&str]) -> (bool, String, String) {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .env("STRATA_ROOT", root)
            .env("DOCKER_CONFIG", self.config.path())
            .env("PATH", path)
            .env_remove("STRATA_INSECURE_REGISTRIES")
            .env_remove("STRATA_CERTS_DIR")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.bin.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn stored(&self) -> Option<serde_json::Value> {
        std::fs::read(self.bin.path().join("creds.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn config(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.config.path().join("config.json")).unwrap())
            .unwrap()
    }
}

#[test]
fn credential_helper_round_trip_through_the_cli() {
    let Some(reg) = auth_registry() else {
        return;
    };
    let h = reg.host.clone();
    for (name, config) in [
        ("credsStore", r#"{"credsStore":"strtest"}"#.to_string()),
        (
            "credHelpers",
            format!(r#"{{"credsStore":"missing-helper","credHelpers":{{"{h}":"strtest"}}}}"#),
        ),
    ] {
        let cli = Cli::new(&config);
        let root = tempfile::tempdir().unwrap();
        let tag = format!("{h}/cred/{}:1", name.to_ascii_lowercase());
        let img = image(&tag, name);
        let tar = root.path().join("img.tar");
        std::fs::write(&tar, archive(&[&img])).unwrap();
        let store = root.path().join("store");
        let store = store.as_path();
        let (ok, out, err) = cli.run(store, &["load", "-i", tar.to_str().unwrap()]);
        assert!(ok, "{name}: load: {out}{err}");

        // Not logged in: the helper has nothing, the push is anonymous.
        let (ok, _, err) = cli.run(store, &["push", "-q", &tag]);
        assert!(!ok, "{name}");
        assert_eq!(
            err.trim_end(),
            format!(
                "Error response from daemon: Post \"http://{h}/v2/cred/{}/blobs/uploads/\": no basic auth credentials",
                name.to_ascii_lowercase()
            ),
            "{name}"
        );
        assert_eq!(cli.calls(), [format!("get {h}")], "{name}");

        // Login stores through the helper; the file keeps an empty entry.
        let (ok, out, err) = cli.run(store, &["login", "-u", USER, "-p", PASS, &h]);
        assert!(ok, "{name}: login: {out}{err}");
        assert_eq!(out, "Login Succeeded\n", "{name}");
        assert_eq!(
            cli.stored(),
            Some(serde_json::json!({"ServerURL": h, "Username": USER, "Secret": PASS})),
            "{name}"
        );
        let mut want_cfg: serde_json::Value = serde_json::from_str(&config).unwrap();
        want_cfg["auths"] = serde_json::json!({ &h: {} });
        assert_eq!(cli.config(), want_cfg, "{name}");
        assert_eq!(cli.calls()[1..], ["store".to_string()], "{name}");

        // Push and pull read through the helper.
        let (ok, out, err) = cli.run(store, &["push", "-q", &tag]);
        assert!(ok, "{name}: push: {out}{err}");
        let other = root.path().join("other");
        let (ok, out, err) = cli.run(&other, &["pull", "-q", &tag]);
        assert!(ok, "{name}: pull: {out}{err}");
        assert_eq!(out, format!("{tag}\n"), "{name}");
        assert_eq!(
            cli.calls()[2..],
            [format!("get {h}"), format!("get {h}")],
            "{name}"
        );

        // Logout erases in the helper and the file.
        let (ok, out, err) = cli.run(store, &["logout", &h]);
        assert!(ok, "{name}: logout: {out}{err}");
        assert_eq!(
            out,
            format!("Removing login credentials for {h}\n"),
            "{name}"
        );
        assert_eq!(cli.calls()[4..], [format!("erase {h}")], "{name}");
        assert_eq!(cli.stored(), None, "{name}");
        want_cfg["auths"] = serde_json::json!({});
        assert_eq!(cli.config(), want_cfg, "{name}");
        let (ok, out, _) = cli.run(store, &["logout", &h]);
        assert!(ok, "{name}");
        assert_eq!(out, format!("Not logged in to {h}\n"), "{name}");
        assert_eq!(cli.calls().len(), 5, "{name}: no more helper calls");
    }
}

#[test]
fn helper_selection_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(
        &path,
        r#"{"credsStore":"all","credHelpers":{"one:5000":"special"},"auths":{"plain:1":{"auth":"dTpw"}}}"#,
    )
    .unwrap();
    let cfg = CliConfig::load_from(&path);
    for (key, want) in [
        ("one:5000", Some("special")),
        ("two:5000", Some("all")),
        ("https://index.docker.io/v1/", Some("all")),
    ] {
        assert_eq!(cfg.helper_for(key).as_deref(), want, "{key}");
    }
    let err = cfg.get("two:5000").unwrap_err();
    assert_eq!(
        err.message(),
        "error getting credentials - err: exec: \"docker-credential-all\": executable file not found in $PATH, out: ``"
    );
    let none = CliConfig::load_from(&dir.path().join("missing.json"));
    assert_eq!(none.helper_for("plain:1"), None);
    std::fs::write(&path, r#"{"auths":{"plain:1":{"auth":"dTpw"}}}"#).unwrap();
    let file_only = CliConfig::load_from(&path);
    assert_eq!(
        file_only
            .get("plain:1")
            .unwrap()
            .map(|a| (a.username, a.password)),
        Some(("u".to_string(), "p".to_string()))
    );
}
