//! "One store, two ways in": while `strata serve` holds a store, the
//! `strata` CLI on that store goes through the server's socket and prints
//! exactly what it prints on an unserved store (same command sequence on a
//! second, local store).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn strata(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("STRATA_ROOT")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_goes_through_the_server() {
    let served = tempfile::tempdir().unwrap();
    let local = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let svc = strata::ImageService::open(served.path()).unwrap();
    let sock = served.path().join("strata.sock");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let (svc, sock) = (svc.clone(), sock.clone());
        async move {
            strata::server::serve(svc, &sock, async {
                let _ = stop_rx.await;
            })
            .await
        }
    });
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fx = |n: &str| fixture(n).display().to_string();
    let saved = |root: &Path| {
        work.path().join(format!(
            "{}.tar",
            root.file_name().unwrap().to_string_lossy()
        ))
    };
    let steps: Vec<Vec<String>> = vec![
        vec!["load".into(), "-i".into(), fx("chain-all.tar")],
        vec!["load".into(), "-i".into(), fx("imported.tar")],
        vec!["images".into()],
        vec!["images".into(), "-a".into(), "--no-trunc".into()],
        vec!["images".into(), "--format".into(), "json".into()],
        vec![
            "images".into(),
            "--filter".into(),
            "label=org.example.stage".into(),
        ],
        vec!["images".into(), "--filter".into(), "bogus=1".into()],
        vec!["tag".into(), "dev/chain:1".into(), "two/ways:in".into()],
        vec!["tag".into(), "nope:1".into(), "two/ways:out".into()],
        vec!["inspect".into(), "two/ways:in".into(), "nope:2".into()],
        vec!["history".into(), "dev/imported:1".into()],
        vec!["history".into(), "--no-trunc".into(), "dev/chain:1".into()],
        vec![
            "save".into(),
            "-o".into(),
            "{saved}".into(),
            "two/ways:in".into(),
        ],
        vec!["rmi".into(), "dev/chain:1".into()],
        vec!["rmi".into(), "17d9e0c043f9".into(), "nope:3".into()],
        vec!["rmi".into(), "-f".into(), "two/ways:in".into()],
        vec!["load".into(), "-i".into(), "{saved}".into()],
        vec![
            "image".into(),
            "prune".into(),
            "-a".into(),
            "-f".into(),
            "--filter".into(),
            "label=nope".into(),
        ],
        vec!["image".into(), "prune".into(), "-a".into(), "-f".into()],
        vec!["images".into(), "-a".into()],
    ];
    let re = regex::Regex::new(r#""LastTagTime": "[^"]*""#).unwrap();
    let mut runs: Vec<Vec<(i32, String, String)>> = Vec::new();
    for root in [served.path(), local.path()] {
        let file = saved(root).display().to_string();
        let mut out = Vec::new();
        for s in &steps {
            let args: Vec<String> = s.iter().map(|a| a.replace("{saved}", &file)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (rc, o, e) = tokio::task::spawn_blocking({
                let root = root.to_path_buf();
                let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                move || {
                    let a: Vec<&str> = args.iter().map(String::as_str).collect();
                    strata(&root, &a)
                }
            })
            .await
            .unwrap();
            // LastTagTime legitimately differs between the two stores.
            out.push((
                rc,
                re.replace_all(&o, "\"LastTagTime\": <t>").into_owned(),
                e,
            ));
        }
        runs.push(out);
    }
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(runs[0][i], runs[1][i], "step {}: strata {}", i, s.join(" "));
    }
    // The saved archives are byte-identical too.
    assert_eq!(
        std::fs::read(saved(served.path())).unwrap(),
        std::fs::read(saved(local.path())).unwrap()
    );
    // Commands the server does not offer say so.
    let (rc, _, err) = tokio::task::spawn_blocking({
        let root = served.path().to_path_buf();
        move || strata(&root, &["gc"])
    })
    .await
    .unwrap();
    assert_eq!(rc, 1);
    assert!(
        err.starts_with("strata: the store is served by `strata serve`"),
        "{err}"
    );
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
    assert_verified(&svc);
}
