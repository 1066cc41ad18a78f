//! Legacy `docker load` (formats.md §A.8): archives without `manifest.json`,
//! only v1 per-layer directories and `repositories`. The expected IDs and
//! configs were produced by the real dockerd 20.10; when a private dockerd is
//! available (tests/common/dockerd.rs) every archive is also loaded there and
//! the whole state compared (IDs, listing, inspect, history, output).

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;

use common::builder::layer;
use common::*;
use dockerd::{Dockerd, s};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Read;
use strata::{Filters, ImageService};

// ---------------------------------------------------------------- helpers

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

fn try_load(svc: &ImageService, bytes: &[u8]) -> strata::Result<strata::archive::LoadReport> {
    block_on(svc.load_image(std::io::Cursor::new(bytes.to_vec()), true))
}

fn load(svc: &ImageService, bytes: &[u8]) -> strata::archive::LoadReport {
    try_load(svc, bytes).unwrap()
}

fn all_ids(svc: &ImageService) -> Vec<String> {
    block_on(svc.map()).unwrap().into_keys().collect()
}

fn inspect(svc: &ImageService, name: &str) -> Value {
    serde_json::to_value(block_on(svc.lookup_image(name)).unwrap()).unwrap()
}

fn history(svc: &ImageService, name: &str) -> Value {
    serde_json::to_value(block_on(svc.image_history(name)).unwrap()).unwrap()
}

fn sorted_by_id(v: Value) -> Value {
    let mut items = v.as_array().unwrap().clone();
    items.sort_by(|a, b| a["Id"].as_str().cmp(&b["Id"].as_str()));
    Value::Array(items)
}

fn listing(svc: &ImageService, all: bool) -> Value {
    let rows = block_on(svc.images(Filters::new(), all, false)).unwrap();
    sorted_by_id(serde_json::to_value(rows).unwrap())
}

/// strata's `docker save` of `names`.
fn save(svc: &ImageService, names: &[&str]) -> Vec<u8> {
    let f = tempfile::NamedTempFile::new().unwrap();
    let w = f.reopen().unwrap();
    block_on(svc.export_image(names.iter().map(|n| n.to_string()).collect(), w)).unwrap();
    std::fs::read(f.path()).unwrap()
}

/// The config bytes of image `id`, read back through `docker save`.
fn config_of(svc: &ImageService, id: &str) -> String {
    let archive = save(svc, &[id]);
    let name = format!("{}.json", &id[7..]);
    let mut a = tar::Archive::new(&archive[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name.as_str()) {
            let mut out = String::new();
            e.read_to_string(&mut out).unwrap();
            return out;
        }
    }
    panic!("{name} not in the save of {id}");
}

fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
}

/// One v1 directory: name, `json` (absent when None), `layer.tar` (absent
/// when None).
struct Dir<'a>(&'a str, Option<&'a [u8]>, Option<Vec<u8>>);

/// A legacy archive of `dirs` plus `repositories` (absent when None).
fn v1_archive(dirs: &[Dir], repositories: Option<&str>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for Dir(name, json, layer) in dirs {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, format!("{name}/"), &[][..]).unwrap();
        append(&mut b, &format!("{name}/VERSION"), b"1.0");
        if let Some(j) = json {
            append(&mut b, &format!("{name}/json"), j);
        }
        if let Some(l) = layer {
            append(&mut b, &format!("{name}/layer.tar"), l);
        }
    }
    if let Some(r) = repositories {
        append(&mut b, "repositories", r.as_bytes());
    }
    b.into_inner().unwrap()
}

/// `archive` with `manifest.json` left out: the v1 directories and
/// `repositories` of a docker save are a legacy archive.
fn without_manifest(archive: &[u8]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            continue;
        }
        let mut h = e.header().clone();
        let path = e.path().unwrap().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if h.entry_type().is_symlink() {
            let target = e.link_name().unwrap().unwrap().into_owned();
            out.append_link(&mut h, &path, &target).unwrap();
        } else {
            out.append_data(&mut h, &path, &data[..]).unwrap();
        }
    }
    out.into_inner().unwrap()
}

fn l1() -> Vec<u8> {
    layer(&[("a.txt", b"hello\n")])
}

fn l2() -> Vec<u8> {
    layer(&[("b.txt", b"world\n")])
}

fn l3() -> Vec<u8> {
    layer(&[("etc/c", b"third\n")])
}

// v1 JSONs of a pre-1.8.3 image (normalized through V1Image: `Extra`
// dropped, container_config re-emitted, created kept with its offset) and
// of a 1.9 child (keys kept raw, compacted, HTML-escaped; `ID`, which is not
// one of the deleted keys, kept).
const OLD_JSON: &str = r##"{"id":"aaaa","created":"2014-05-01T10:00:00.500+02:00","Author":"me <x&y>","comment":"c1","docker_version":"1.8.2","Extra":1,"container_config":{"Cmd":["/bin/sh","-c","#(nop) ADD <a>"],"hostname":"h"},"os":"linux","Size":5}"##;
const NEW_JSON: &str = r#"{"id":"bbbb","parent":"aaaa","created":"2015-01-01T00:00:00Z","docker_version":"1.9.0","Extra": [1, 2 ,"<&>"],"container_config":{"Cmd":"echo hi","Hostname":"h"},"config":{"Env":["A=1"]},"throwaway":true,"layer_id":"x","parent_id":"y","Size":7,"ID":"up"}"#;

/// What dockerd 20.10 made of OLD_JSON / NEW_JSON (live; the layers there
/// were other tars, `{L1}` and `{L2}` stand for the DiffIDs of l1 and l2).
const OLD_CONFIG: &str = r##"{"author":"me \u003cx\u0026y\u003e","comment":"c1","container_config":{"Hostname":"h","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["/bin/sh","-c","#(nop) ADD \u003ca\u003e"],"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"created":"2014-05-01T10:00:00.5+02:00","docker_version":"1.8.2","history":[{"created":"2014-05-01T10:00:00.5+02:00","author":"me \u003cx\u0026y\u003e","created_by":"/bin/sh -c #(nop) ADD \u003ca\u003e","comment":"c1"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["{L1}"]}}"##;
const NEW_CONFIG: &str = r#"{"Extra":[1,2,"\u003c\u0026\u003e"],"ID":"up","config":{"Env":["A=1"]},"container_config":{"Cmd":"echo hi","Hostname":"h"},"created":"2015-01-01T00:00:00Z","docker_version":"1.9.0","history":[{"created":"2014-05-01T10:00:00.5+02:00","author":"me \u003cx\u0026y\u003e","created_by":"/bin/sh -c #(nop) ADD \u003ca\u003e","comment":"c1"},{"created":"2015-01-01T00:00:00Z","created_by":"echo hi"}],"rootfs":{"type":"layers","diff_ids":["{L1}","{L2}"]}}"#;

/// The expected configs and their IDs: (old, new).
fn expected() -> ((String, String), (String, String)) {
    let fill = |c: &str| c.replace("{L1}", &sha(&l1())).replace("{L2}", &sha(&l2()));
    let (old, new) = (fill(OLD_CONFIG), fill(NEW_CONFIG));
    ((sha(old.as_bytes()), old), (sha(new.as_bytes()), new))
}

fn probe_archive(repositories: &str) -> Vec<u8> {
    v1_archive(
        &[
            Dir("aaaa", Some(OLD_JSON.as_bytes()), Some(l1())),
            Dir("bbbb", Some(NEW_JSON.as_bytes()), Some(l2())),
        ],
        Some(repositories),
    )
}

/// A three-level chain, listed out of order, tagged twice in one
/// repository and once in another.
fn chain_archive() -> Vec<u8> {
    let top = br##"{"id":"c3","parent":"b2","created":"2020-02-02T02:02:02.123456789Z","docker_version":"19.03.5","architecture":"amd64","os":"linux","author":"someone","container_config":{"Cmd":["/bin/sh","-c","#(nop) ","CMD [\"sh\"]"]},"config":{"Cmd":["sh"],"Labels":{"b":"2","a":"1"}}}"##;
    let mid = br#"{"id":"b2","parent":"a1","created":"2020-02-02T02:02:01Z","docker_version":"19.03.5","os":"linux","container_config":{"Cmd":["/bin/sh","-c","echo > /etc/c"]}}"#;
    let bottom =
        br#"{"id":"a1","created":"2020-02-02T02:02:00Z","os":"linux","comment":"imported"}"#;
    v1_archive(
        &[
            Dir("c3", Some(top), Some(l3())),
            Dir("a1", Some(bottom), Some(l1())),
            Dir("b2", Some(mid), Some(l2())),
        ],
        Some(r#"{"legacy/a":{"2":"b2","1":"c3"},"legacy/b":{"x":"c3"}}"#),
    )
}

/// strata's save of the dockerd fixture chain (`dev/chain:1`, five layers)
/// without its manifest.json.
fn resaved_fixture() -> Vec<u8> {
    let (_d, svc) = service();
    load(&svc, &read_fixture("chain-tagged.tar"));
    block_on(svc.tag_image("dev/chain:1", "legacy/chain", "two")).unwrap();
    without_manifest(&save(&svc, &["dev/chain:1", "legacy/chain:two"]))
}

// ---------------------------------------------------------------- tests

#[test]
fn v1_configs_are_rebuilt_as_dockerd_does() {
    let ((old_id, old_config), (new_id, new_config)) = expected();
    let (old, new) = (old_id.as_str(), new_id.as_str());
    let (_d, svc) = service();
    let report = load(
        &svc,
        &probe_archive(r#"{"legacyprobe":{"one":"bbbb","two":"aaaa"}}"#),
    );
    assert_eq!(report.lines, Vec::<String>::new(), "nothing is printed");
    let mut want = vec![old, new];
    want.sort();
    assert_eq!(all_ids(&svc), want);
    assert_eq!(config_of(&svc, old), old_config);
    assert_eq!(config_of(&svc, new), new_config);
    let top = inspect(&svc, new);
    assert_eq!(top["RepoTags"], json!(["legacyprobe:one"]));
    assert_eq!(top["Parent"], json!(old));
    assert_eq!(inspect(&svc, old)["RepoTags"], json!(["legacyprobe:two"]));
    assert_eq!(inspect(&svc, old)["Parent"], json!(""));
    assert_eq!(
        history(&svc, new),
        json!([
            {"Id": new, "Created": 1420070400i64, "CreatedBy": "echo hi", "Tags": ["legacyprobe:one"], "Size": 6, "Comment": ""},
            {"Id": old, "Created": 1398931200i64, "CreatedBy": "/bin/sh -c #(nop) ADD <a>", "Tags": ["legacyprobe:two"], "Size": 6, "Comment": "c1"},
        ])
    );
    assert_verified(&svc);

    // Loading it again changes nothing and prints nothing; moving a tag
    // prints Docker's rename notice (live).
    let head = svc.store().head().unwrap();
    let again = load(
        &svc,
        &probe_archive(r#"{"legacyprobe":{"one":"bbbb","two":"aaaa"}}"#),
    );
    assert_eq!(again.lines, Vec::<String>::new());
    assert_eq!(svc.store().head().unwrap(), head);
    let moved = load(&svc, &probe_archive(r#"{"legacyprobe":{"one":"aaaa"}}"#));
    assert_eq!(
        moved.lines,
        [format!(
            "The image legacyprobe:one already exists, renaming the old one with ID {new_id} to empty string"
        )]
    );
    assert_eq!(
        inspect(&svc, old)["RepoTags"],
        json!(["legacyprobe:one", "legacyprobe:two"])
    );
    assert_eq!(inspect(&svc, new)["RepoTags"], json!([]));
    assert_verified(&svc);
}

#[test]
fn parent_chains_and_two_tags() {
    let (_d, svc) = service();
    let report = load(&svc, &chain_archive());
    assert_eq!(report.lines, Vec::<String>::new());
    let ids = all_ids(&svc);
    assert_eq!(ids.len(), 3);
    let top = inspect(&svc, "legacy/a:1");
    assert_eq!(top["RepoTags"], json!(["legacy/a:1", "legacy/b:x"]));
    let mid_id = top["Parent"].as_str().unwrap().to_string();
    let mid = inspect(&svc, &mid_id);
    assert_eq!(mid["RepoTags"], json!(["legacy/a:2"]));
    let bottom = inspect(&svc, mid["Parent"].as_str().unwrap());
    assert_eq!(bottom["Parent"], json!(""));
    assert_eq!(
        top["RootFS"]["Layers"],
        json!([sha(&l1()), sha(&l2()), sha(&l3())])
    );
    assert_eq!(top["Config"]["Labels"], json!({"a": "1", "b": "2"}));
    let created_by: Vec<Value> = history(&svc, "legacy/a:1")
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["CreatedBy"].clone())
        .collect();
    assert_eq!(
        created_by,
        [
            json!("/bin/sh -c #(nop)  CMD [\"sh\"]"),
            json!("/bin/sh -c echo > /etc/c"),
            json!("")
        ]
    );
    assert_eq!(ids, CHAIN_IDS.map(String::from).to_vec());
    assert_verified(&svc);
}

/// dockerd 20.10's IDs for chain_archive (sorted).
const CHAIN_IDS: [&str; 3] = [
    "sha256:23082ed4f3f51c078dd45bee108f67fb09e41860e170f985ac240a3e31168723",
    "sha256:e6adc64c66ac2cd68f7af39151b08a194b93c908076c6f2cd90b824ccd76627c",
    "sha256:e783961bfde9af94679d9e371e6803e65e60e91367af3b32f1afe0cc84a0b334",
];

#[test]
fn a_docker_save_without_manifest_loads_as_v1() {
    let archive = resaved_fixture();
    let (_d, svc) = service();
    let report = load(&svc, &archive);
    assert_eq!(report.lines, Vec::<String>::new());
    // One image per layer, the top one carrying both tags.
    let (_o, orig) = service();
    load(&orig, &read_fixture("chain-tagged.tar"));
    let orig_top = inspect(&orig, CHAIN_ID);
    let ids = all_ids(&svc);
    assert_eq!(
        ids.len(),
        orig_top["RootFS"]["Layers"].as_array().unwrap().len()
    );
    let top = inspect(&svc, "dev/chain:1");
    assert_eq!(top["RepoTags"], json!(["dev/chain:1", "legacy/chain:two"]));
    assert_eq!(top["RootFS"], orig_top["RootFS"]);
    assert_eq!(top["Config"], orig_top["Config"]);
    assert_eq!(top["Created"], orig_top["Created"]);
    assert_eq!(ids, RESAVED_IDS.map(String::from).to_vec());
    assert_verified(&svc);
}

/// dockerd 20.10's IDs for resaved_fixture (sorted).
const RESAVED_IDS: [&str; 3] = [
    "sha256:5d3a309a2174177db4725c6b8df13f0b3e9e946a18a278f995ae5370d5c36efe",
    "sha256:6813629a83a870a5c32450f06e6eb882ad16165a3505f7cd862b567472d06915",
    "sha256:b99916c6a49118e414cd03e3141470b4e2f1ba2064188d5d2b39d98eb853d3f6",
];

#[test]
fn bad_legacy_archives_change_nothing() {
    let good = json_of("{}");
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "unknown target ID",
            v1_archive(
                &[Dir("cccc", Some(&good), Some(l1()))],
                Some(r#"{"legacy/x":{"1":"zzzz"}}"#),
            ),
            "invalid target ID: zzzz".into(),
        ),
        (
            "missing layer.tar",
            v1_archive(
                &[Dir("cccc", Some(&good), None)],
                Some(r#"{"legacy/x":{"1":"cccc"}}"#),
            ),
            "open cccc/layer.tar: no such file or directory".into(),
        ),
        (
            "missing parent layer.tar",
            v1_archive(
                &[
                    Dir("top", Some(br#"{"parent":"low"}"#), Some(l2())),
                    Dir("low", Some(&good), None),
                ],
                Some("{}"),
            ),
            "open low/layer.tar: no such file or directory".into(),
        ),
        (
            "escaping parent",
            v1_archive(
                &[Dir("cccc", Some(br#"{"parent":"../../etc"}"#), Some(l1()))],
                Some("{}"),
            ),
            "evalSymlinksInScope: ../../etc/json is not in the archive".into(),
        ),
        (
            "unknown parent",
            v1_archive(
                &[Dir("cccc", Some(br#"{"parent":"nope"}"#), Some(l1()))],
                Some("{}"),
            ),
            "open nope/json: no such file or directory".into(),
        ),
        (
            "parent loop",
            v1_archive(
                &[
                    Dir("a", Some(br#"{"parent":"b"}"#), Some(l1())),
                    Dir("b", Some(br#"{"parent":"a"}"#), Some(l2())),
                ],
                Some("{}"),
            ),
            "invalid legacy image a: its parent chain loops at a".into(),
        ),
        (
            "missing json",
            v1_archive(&[Dir("cccc", None, Some(l1()))], Some("{}")),
            "open cccc/json: no such file or directory".into(),
        ),
        (
            "json not an object",
            v1_archive(&[Dir("cccc", Some(b"[1]"), Some(l1()))], Some("{}")),
            "json: cannot unmarshal array into Go value of type struct { OS string; Parent string }".into(),
        ),
        (
            "parent not a string",
            v1_archive(&[Dir("cccc", Some(br#"{"Parent":5}"#), Some(l1()))], Some("{}")),
            "json: cannot unmarshal number into Go struct field .Parent of type string".into(),
        ),
        (
            "windows",
            v1_archive(&[Dir("cccc", Some(br#"{"os":"windows"}"#), Some(l1()))], Some("{}")),
            "cannot load windows image on linux".into(),
        ),
        (
            "bad created",
            v1_archive(&[Dir("cccc", Some(br#"{"created":"yesterday"}"#), Some(l1()))], Some("{}")),
            r#"parsing time "\"yesterday\"" as "\"2006-01-02T15:04:05Z07:00\"": cannot parse "yesterday\"" as "2006""#.into(),
        ),
        (
            "no repositories",
            v1_archive(&[Dir("cccc", Some(&good), Some(l1()))], None),
            "the archive has no manifest.json, so it is read as a legacy archive: open repositories: no such file or directory".into(),
        ),
        (
            "repositories not a map",
            v1_archive(&[Dir("cccc", Some(&good), Some(l1()))], Some(r#"{"legacy/x":["cccc"]}"#)),
            "json: cannot unmarshal array into Go value of type map[string]string".into(),
        ),
        (
            "upper-case repository",
            v1_archive(&[Dir("cccc", Some(&good), Some(l1()))], Some(r#"{"Legacy":{"1":"cccc"}}"#)),
            "invalid reference format: repository name must be lowercase".into(),
        ),
        (
            "bad tag",
            v1_archive(&[Dir("cccc", Some(&good), Some(l1()))], Some(r#"{"legacy/x":{"-t":"cccc"}}"#)),
            "invalid tag format".into(),
        ),
    ];
    for (case, bytes, want) in cases {
        let (_d, svc) = service();
        load(&svc, &probe_archive(r#"{"legacyprobe":{"one":"bbbb"}}"#));
        let head = svc.store().head().unwrap();
        let before = listing(&svc, true);
        let err = try_load(&svc, &bytes).expect_err(case);
        assert_eq!(
            err.kind(),
            strata::ErrorKind::InvalidArgument,
            "{case}: {err}"
        );
        assert_eq!(err.message(), want, "{case}");
        assert_eq!(svc.store().head().unwrap(), head, "{case}: the log changed");
        assert_eq!(listing(&svc, true), before, "{case}: the listing changed");
        assert_verified(&svc);
    }
}

fn json_of(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

// ---------------------------------------------------------------- dockerd

/// Load `archive` into the private dockerd and into a fresh strata; same
/// output, IDs, listings, inspect and history.
fn same_as_dockerd(d: &Dockerd, case: &str, archive: &[u8]) -> Vec<String> {
    d.reset();
    let p = d.file("legacy.tar", archive);
    let out = d.docker(&["load", "-i", s(&p)]);
    let (_x, svc) = service();
    let report = load(&svc, archive);
    let printed: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(printed, report.lines, "{case}: output");
    let ids = all_ids(&svc);
    assert_eq!(d.all_ids(), ids, "{case}: image IDs");
    assert_eq!(
        sorted_by_id(d.get("/images/json?all=1")),
        listing(&svc, true),
        "{case}: images -a"
    );
    for id in &ids {
        let mut theirs = d.get(&format!("/images/{id}/json"));
        let mut ours = inspect(&svc, id);
        theirs.as_object_mut().unwrap().remove("Metadata");
        ours.as_object_mut().unwrap().remove("Metadata");
        assert_eq!(theirs, ours, "{case}: inspect {id}");
        assert_eq!(
            d.get(&format!("/images/{id}/history")),
            history(&svc, id),
            "{case}: history {id}"
        );
    }
    assert_verified(&svc);
    ids
}

#[test]
fn dockerd_agrees() {
    let Some((_lock, d)) = dockerd::session("legacy load vs dockerd") else {
        return;
    };
    let probe = same_as_dockerd(
        d,
        "probe",
        &probe_archive(r#"{"legacyprobe":{"one":"bbbb","two":"aaaa"}}"#),
    );
    let ((old_id, _), (new_id, _)) = expected();
    let mut want = vec![old_id, new_id];
    want.sort();
    assert_eq!(probe, want);
    let chain = same_as_dockerd(d, "chain", &chain_archive());
    assert_eq!(chain, CHAIN_IDS.map(String::from).to_vec());
    let resaved = same_as_dockerd(d, "resaved fixture", &resaved_fixture());
    assert_eq!(resaved, RESAVED_IDS.map(String::from).to_vec());

    // An unknown target ID: the same message from dockerd.
    let bad = v1_archive(
        &[Dir("cccc", Some(b"{}"), Some(l1()))],
        Some(r#"{"legacy/x":{"1":"zzzz"}}"#),
    );
    let p = d.file("bad.tar", &bad);
    let out = d.docker_cmd(&["load", "-i", s(&p)]).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "invalid target ID: zzzz"
    );
}
