//! The `strata` command, black-box: output on stdout, errors on stderr
//! worded as the docker CLI words them, and exit codes.

mod common;
use common::*;
use std::process::Command;

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

fn strata(root: &std::path::Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("STRATA_ROOT")
        .output()
        .unwrap();
    Out {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap_or(-1),
    }
}

fn ok(root: &std::path::Path, args: &[&str]) -> String {
    let o = strata(root, args);
    assert_eq!(o.code, 0, "strata {args:?} failed: {}", o.stderr);
    o.stdout
}

fn with_chain() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let f = fixture("chain-tagged.tar");
    assert_eq!(
        ok(d.path(), &["load", "-i", f.to_str().unwrap()]),
        "Loaded image: dev/chain:1\n"
    );
    d
}

#[test]
fn quickstart_loads_lists_and_verifies() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(d.path(), &["quickstart"]);
    assert!(out.contains("Loaded image: dev/chain:1\n"), "{out}");
    assert!(
        out.contains("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{out}"
    );
    assert!(
        out.contains("dev/chain    1         17d9e0c043f9   "),
        "{out}"
    );
    assert!(out.contains("audit: 5 events, hash chain intact"), "{out}");
}

#[test]
fn images_quiet_json_and_filters() {
    let d = with_chain();
    assert_eq!(ok(d.path(), &["images", "-q"]), "17d9e0c043f9\n");
    assert_eq!(
        ok(d.path(), &["images", "-q", "--no-trunc"]),
        format!("{CHAIN_ID}\n")
    );
    let json = ok(d.path(), &["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Id"], CHAIN_ID);
    assert_eq!(v["RepoTags"], serde_json::json!(["dev/chain:1"]));
    assert_eq!(v["RepoDigests"], serde_json::Value::Null);
    assert_eq!(v["Size"], 74);
    assert_eq!(
        ok(d.path(), &["images", "-q", "--filter", "reference=dev/*"]),
        "17d9e0c043f9\n"
    );
    assert_eq!(
        ok(d.path(), &["images", "-q", "--filter", "reference=other"]),
        ""
    );
    assert_eq!(
        ok(d.path(), &["images", "-q", "dev/chain"]),
        "17d9e0c043f9\n"
    );
    let bad = strata(d.path(), &["images", "--filter", "nope=1"]);
    assert_eq!(bad.code, 1);
    assert_eq!(
        bad.stderr,
        "Error response from daemon: Invalid filter 'nope'\n"
    );
}

#[test]
fn inspect_prints_an_indented_array_like_docker() {
    let d = with_chain();
    let out = ok(d.path(), &["inspect", "dev/chain:1"]);
    assert!(
        out.starts_with("[\n    {\n        \"Id\": \"sha256:17d9e0c0"),
        "{out}"
    );
    assert!(out.ends_with("    }\n]\n"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["RepoTags"], serde_json::json!(["dev/chain:1"]));
    let missing = strata(d.path(), &["inspect", "nope"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stdout, "[]\n");
    assert_eq!(missing.stderr, "Error: No such object: nope\n");
}

#[test]
fn tag_rmi_and_their_errors() {
    let d = with_chain();
    ok(d.path(), &["tag", "dev/chain:1", "other"]);
    let conflict = strata(d.path(), &["rmi", "17d9e0c043f9"]);
    assert_eq!(conflict.code, 1);
    assert_eq!(
        conflict.stderr,
        "Error response from daemon: conflict: unable to delete 17d9e0c043f9 (must be forced) - image is referenced in multiple repositories\n"
    );
    assert_eq!(ok(d.path(), &["rmi", "other"]), "Untagged: other:latest\n");
    let bad_tag = strata(d.path(), &["tag", "dev/chain:1", "Foo"]);
    assert_eq!(bad_tag.code, 1);
    assert_eq!(
        bad_tag.stderr,
        "Error parsing reference: \"Foo\" is not a valid repository/tag: invalid reference format: repository name must be lowercase\n"
    );
    let missing = strata(d.path(), &["rmi", "nope", "dev/chain:1"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stderr, "Error: No such image: nope\n");
    assert!(
        missing
            .stdout
            .starts_with(&format!("Untagged: dev/chain:1\nDeleted: {CHAIN_ID}\n")),
        "{}",
        missing.stdout
    );
    assert_eq!(ok(d.path(), &["images", "-qa"]), "");
    assert!(ok(d.path(), &["audit", "verify"]).starts_with("ok: "));
}

#[test]
fn stopped_container_blocks_rmi_until_forced() {
    let d = with_chain();
    let id = ok(
        d.path(),
        &["container", "create", "--name", "c1", "dev/chain:1"],
    );
    let (id, rw) = id.trim().split_once('\t').unwrap();
    assert_eq!(id.len(), 64);
    assert!(std::path::Path::new(rw).join("hello.txt").is_file(), "{rw}");
    let refused = strata(d.path(), &["rmi", "dev/chain:1"]);
    assert_eq!(
        refused.stderr,
        format!(
            "Error response from daemon: conflict: unable to remove repository reference \"dev/chain:1\" (must force) - container {} is using its referenced image 17d9e0c043f9\n",
            &id[..12]
        )
    );
    assert_eq!(
        ok(d.path(), &["rmi", "-f", "dev/chain:1"]),
        format!("Untagged: dev/chain:1\nDeleted: {CHAIN_ID}\n")
    );
    assert_eq!(ok(d.path(), &["container", "rm", "c1"]), "c1\n");
    assert!(ok(d.path(), &["audit", "verify"]).starts_with("ok: "));
}

#[test]
fn prune_all_reports_deleted_layers_and_space() {
    let d = with_chain();
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(d.path(), &["inspect", "dev/chain:1"])).unwrap();
    let diff_ids: Vec<String> = inspect[0]["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // ChainIDs, computed as Docker does, top-most first in the output.
    let mut chains = vec![diff_ids[0].clone()];
    for d in &diff_ids[1..] {
        let prev = chains.last().unwrap();
        chains.push(format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                format!("{prev} {d}").as_bytes()
            ))
        ));
    }
    let mut want = format!("Deleted Images:\nuntagged: dev/chain:1\ndeleted: {CHAIN_ID}\n");
    for c in chains.iter().rev() {
        want.push_str(&format!("deleted: {c}\n"));
    }
    want.push_str("\nTotal reclaimed space: 74B\n");
    assert_eq!(ok(d.path(), &["image", "prune", "-a", "-f"]), want);
}

#[test]
fn save_is_byte_identical_to_dockerd_and_names_unknown_tags() {
    let d = with_chain();
    let out = d.path().join("saved.tar");
    ok(
        d.path(),
        &["save", "-o", out.to_str().unwrap(), "dev/chain:1"],
    );
    assert!(std::fs::read(&out).unwrap() == read_fixture("chain-tagged.tar"));
    let missing = strata(d.path(), &["save", "-o", out.to_str().unwrap(), "nope:1"]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "Error response from daemon: reference does not exist\n"
    );
}

#[test]
fn history_quiet_and_audit_log() {
    let d = with_chain();
    assert_eq!(
        ok(d.path(), &["history", "-q", "dev/chain:1"]),
        "17d9e0c043f9\n<missing>\n<missing>\n<missing>\n<missing>\n<missing>\n"
    );
    let log = ok(d.path(), &["audit", "log", "--json"]);
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 5);
    assert_eq!(records[3]["kind"], "image-created");
    assert_eq!(records[3]["image"], CHAIN_ID);
    assert_eq!(records[4]["kind"], "reference-added");
    assert_eq!(records[4]["subject"], "docker.io/dev/chain:1");
    assert!(
        records[4]["actor"]
            .as_str()
            .unwrap()
            .ends_with("via strata-cli")
    );
}

#[test]
fn squash_makes_one_layer_and_tags_it() {
    let d = with_chain();
    let root = d.path();
    let inspect = |name: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&ok(root, &["inspect", name])).unwrap();
        v[0].clone()
    };
    let before = inspect("dev/chain:1");
    let layers = before["RootFS"]["Layers"].as_array().unwrap().len();
    assert!(layers > 1, "the fixture has {layers} layers");
    let out = ok(root, &["squash", "-t", "sq:1", "dev/chain:1"]);
    let id = out.trim_end();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out:?}");
    let after = inspect("sq:1");
    assert_eq!(after["Id"], id);
    assert_eq!(after["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(after["Size"], before["Size"]);
    let history = ok(root, &["history", "--format", "json", "sq:1"]);
    let top: serde_json::Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(
        top["Comment"],
        format!("create new from {}", before["Id"].as_str().unwrap())
    );
    let templ = strata(root, &["history", "--format", "{{.Comment}}", "sq:1"]);
    assert_eq!(
        (templ.code, templ.stderr.as_str()),
        (1, "unknown format \"{{.Comment}}\": use table or json\n")
    );
    // A bad tag is refused before anything is made.
    let bad = strata(root, &["squash", "-t", "Bad:1", "dev/chain:1"]);
    assert_eq!(bad.code, 1);
    assert_eq!(
        bad.stderr,
        "invalid reference format: repository name must be lowercase\n"
    );
    assert_eq!(ok(root, &["images", "-q"]).lines().count(), 2);
    ok(root, &["audit", "verify"]);
}

/// `strata images | head -1`: when the reader goes away, strata stops
/// without a word on stderr, as the docker CLI does (it dies of SIGPIPE).
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use common::builder::{archive, base, layer};
    use std::io::{BufRead, Write};
    let d = tempfile::tempdir().unwrap();
    // 1,500 images: their listing is larger than a pipe's 64 KiB buffer.
    let imgs: Vec<_> = (0..1500)
        .map(|i| {
            let name = format!("many/img{i}:latest");
            base(
                vec![layer(&[("f", format!("{i}").as_bytes())])],
                1_600_000_000 + i,
                &[],
                &[&name],
            )
        })
        .collect();
    let refs: Vec<_> = imgs.iter().collect();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&archive(&refs)).unwrap();
    ok(d.path(), &["load", "-q", "-i", f.path().to_str().unwrap()]);
    for args in [&["images"][..], &["audit", "log"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("--root")
            .arg(d.path())
            .args(args)
            .env_remove("STRATA_ROOT")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?}");
        // The reader is dropped here: strata's next writes meet EPIPE.
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
        assert!(!out.status.success(), "{args:?}: the output was cut");
    }
}
