//! Container read-write layers, commit (image-service.md §5.3), squash
//! (§5.6), container layer size and disk usage (§7), checked against the
//! trees strata materializes and against a private dockerd 20.10 (which
//! loads strata's save of a committed image; skipped with a note when
//! dockerd is missing and CI is unset).

mod common;
#[path = "common/dockerd.rs"]
mod dockerd;

use common::builder::{archive, base};
use common::*;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use strata::{Filters, ImageService};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A layer of directories (names ending in `/`), files, hardlinks (`=>`) and symlinks (`->`).
fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, spec) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, &b""[..]).unwrap();
        } else if let Some(t) = spec.strip_prefix("=>") {
            h.set_entry_type(tar::EntryType::Link);
            h.set_mode(0o644);
            b.append_link(&mut h, name, t).unwrap();
        } else if let Some(t) = spec.strip_prefix("->") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            b.append_link(&mut h, name, t).unwrap();
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(spec.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, spec.as_bytes()).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn base_layer() -> Vec<u8> {
    tar_of(&[
        ("etc/", ""),
        ("etc/hello.txt", "hello"),
        ("data/", ""),
        ("data/a.txt", "a"),
        ("data/sub/", ""),
        ("data/sub/x", "x"),
        ("opq/", ""),
        ("opq/one", "1"),
        ("opq/two/", ""),
        ("opq/two/t", "t"),
        ("h1", "hard"),
        ("h2", "=>h1"),
        ("link", "->etc/hello.txt"),
        ("gone/", ""),
        ("gone/dir/", ""),
        ("gone/dir/file", "g"),
        ("keep.txt", "keep"),
    ])
}

/// The tree below `root` as sorted lines (`meta` adds nlink and mtime seconds).
fn snapshot(root: &Path, meta: bool) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, meta, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, meta: bool, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = md.file_type();
        let perm = md.mode() & 0o7777;
        let extra = if meta {
            format!(" nlink={} mtime={}", md.nlink(), md.mtime())
        } else {
            String::new()
        };
        let line = if ft.is_dir() {
            walk(root, &p, meta, out);
            format!(
                "{rel} d {perm:o}{}",
                if meta {
                    format!(" mtime={}", md.mtime())
                } else {
                    String::new()
                }
            )
        } else if ft.is_symlink() {
            format!("{rel} l -> {}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap();
            format!(
                "{rel} f {perm:o} {} {:?}{extra}",
                data.len(),
                String::from_utf8_lossy(&data)
            )
        } else if ft.is_fifo() {
            format!("{rel} p {perm:o}")
        } else {
            format!("{rel} ? {perm:o}")
        };
        out.push(line);
    }
}

/// The same lines for a tar (hardlinks resolved to their target's content).
fn snapshot_tar(bytes: &[u8], skip: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    let mut files: std::collections::BTreeMap<String, (u32, Vec<u8>)> = Default::default();
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let name = name.trim_start_matches("./").to_string();
        if name.is_empty() || name == "." || skip(&name) {
            continue;
        }
        let perm = e.header().mode().unwrap() & 0o7777;
        let line = match e.header().entry_type() {
            tar::EntryType::Directory => format!("{name} d {perm:o}"),
            tar::EntryType::Symlink => {
                format!("{name} l -> {}", e.link_name().unwrap().unwrap().display())
            }
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                files.insert(name.clone(), (perm, data.clone()));
                format!(
                    "{name} f {perm:o} {} {:?}",
                    data.len(),
                    String::from_utf8_lossy(&data)
                )
            }
            tar::EntryType::Link => {
                let t = e
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let (perm, data) = files[t.trim_start_matches("./")].clone();
                format!(
                    "{name} f {perm:o} {} {:?}",
                    data.len(),
                    String::from_utf8_lossy(&data)
                )
            }
            tar::EntryType::Fifo => format!("{name} p {perm:o}"),
            other => format!("{name} ? {other:?}"),
        };
        out.push(line);
    }
    out.sort();
    out
}

struct Setup {
    _dir: tempfile::TempDir,
    svc: ImageService,
    image: String,
    container: String,
    rw: std::path::PathBuf,
}

fn setup() -> Setup {
    let (dir, svc) = service();
    let img = base(vec![base_layer()], 1_700_000_000, &[], &["commit/base:1"]);
    block_on(svc.load_image(std::io::Cursor::new(archive(&[&img])), true)).unwrap();
    let container = block_on(svc.create_container("commit/base:1", Some("c1"))).unwrap();
    let rw = block_on(svc.container_rw_path("c1")).unwrap();
    assert_eq!(
        rw,
        dir.path().join("containers").join(&container).join("rw")
    );
    assert_verified(&svc);
    Setup {
        _dir: dir,
        svc,
        image: img.id(),
        container,
        rw,
    }
}

/// Add, change and delete files, a whole directory, a directory's content
/// (recreated: Docker's vfs emits individual whiteouts), a hardlink pair, symlinks.
fn mutate(rw: &Path) {
    use std::fs;
    fs::write(rw.join("newfile"), "hi").unwrap();
    fs::write(rw.join("etc/hello.txt"), "changed").unwrap();
    fs::remove_file(rw.join("data/a.txt")).unwrap();
    fs::remove_dir_all(rw.join("gone")).unwrap();
    fs::remove_dir_all(rw.join("opq")).unwrap();
    fs::create_dir(rw.join("opq")).unwrap();
    fs::write(rw.join("opq/new"), "n").unwrap();
    fs::write(rw.join("pair1"), "p").unwrap();
    fs::hard_link(rw.join("pair1"), rw.join("pair2")).unwrap();
    fs::remove_file(rw.join("link")).unwrap();
    std::os::unix::fs::symlink("keep.txt", rw.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/hello.txt", rw.join("newlink")).unwrap();
    fs::set_permissions(
        rw.join("keep.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    fs::remove_file(rw.join("h2")).unwrap();
}

fn top_layer(svc: &ImageService, id: &str) -> Option<String> {
    block_on(svc.map()).unwrap()[id].top_layer.clone()
}

fn config_of(svc: &ImageService, id: &str) -> serde_json::Value {
    let saved = save(svc, id);
    let mut a = tar::Archive::new(&saved[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == format!("{}.json", &id[7..]) {
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            return serde_json::from_slice(&b).unwrap();
        }
    }
    panic!("no config for {id}");
}

fn save(svc: &ImageService, name: &str) -> Vec<u8> {
    let f = tempfile::NamedTempFile::new().unwrap();
    let w = f.reopen().unwrap();
    block_on(svc.export_image(vec![name.to_string()], w)).unwrap();
    std::fs::read(f.path()).unwrap()
}

fn diff_ids(cfg: &serde_json::Value) -> Vec<String> {
    cfg["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn commit_of_changes_reproduces_the_container_tree() {
    let s = setup();
    mutate(&s.rw);
    let (size_rw, size_root) = block_on(s.svc.container_layer_size("c1")).unwrap();
    // etc/hello.txt 7 + keep.txt 4 + link 8 + newfile 2 + newlink 14 + opq/new 1 + pair 1 (once).
    assert_eq!((size_rw, size_root), (37, 18 + 37));

    let id = block_on(s.svc.commit_image(
        "c1",
        Some("commit/out"),
        Some("v1"),
        "me <me@x>",
        "msg",
        &[],
    ))
    .unwrap();
    assert_verified(&s.svc);
    assert_eq!(block_on(s.svc.get_image("commit/out:v1")).unwrap(), id);
    let cfg = config_of(&s.svc, &id);
    let parent_cfg = config_of(&s.svc, &s.image);
    let ids = diff_ids(&cfg);
    assert_eq!(ids[..1], diff_ids(&parent_cfg)[..]);
    assert_eq!(ids.len(), 2);
    let last = cfg["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["author"], "me <me@x>");
    assert_eq!(last["comment"], "msg");
    assert_eq!(last.get("empty_layer"), None);
    assert_eq!(cfg["container"], s.container.as_str());
    assert_eq!(cfg.get("comment"), None);
    let inspect = block_on(s.svc.lookup_image(&id)).unwrap();
    assert_eq!(
        serde_json::to_value(&inspect).unwrap()["Parent"],
        s.image.as_str()
    );

    // The layer: Docker's entries, in path order, with whiteouts for deletions.
    let blob = std::fs::read(s.svc.store().content().path(&ids[1])).unwrap();
    let mut names = Vec::new();
    let mut a = tar::Archive::new(&blob[..]);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let kind = h.entry_type().as_byte() as char;
        let link = e
            .link_name()
            .unwrap()
            .map(|l| format!(" -> {}", l.display()))
            .unwrap_or_default();
        names.push(format!(
            "{} {kind} {:o}{link}",
            e.path().unwrap().display(),
            h.mode().unwrap()
        ));
        assert_eq!(&h.as_bytes()[257..265], b"ustar\x0000", "ustar magic");
        assert_eq!(h.as_bytes()[155], b' ');
        assert_eq!(h.as_bytes()[154], 0, "Go writes 6 checksum digits + NUL");
        assert_eq!(
            (h.uid().unwrap(), h.username_bytes(), h.groupname_bytes()),
            (0, Some(&b""[..]), Some(&b""[..]))
        );
    }
    let dm = |p: &str| format!("{p} 5 40755");
    assert_eq!(
        names,
        [
            dm("data/"),
            "data/.wh.a.txt 0 0".to_string(),
            dm("etc/"),
            "etc/hello.txt 0 100644".into(),
            ".wh.gone 0 0".into(),
            ".wh.h2 0 0".into(),
            "keep.txt 0 100600".into(),
            "link 2 120777 -> keep.txt".into(),
            "newfile 0 100644".into(),
            "newlink 2 120777 -> /etc/hello.txt".into(),
            dm("opq/"),
            "opq/new 0 100644".into(),
            "opq/.wh.one 0 0".into(),
            "opq/.wh.two 0 0".into(),
            "pair1 0 100644".into(),
            "pair2 1 100644 -> pair1".into(),
        ]
    );
    assert_eq!(blob.len() % 512, 0);
    assert_eq!(&blob[blob.len() - 1024..], &[0u8; 1024][..]);

    // Applied by strata to the parent: the container's tree.
    let tree =
        strata::rootfs::materialize(s.svc.store(), top_layer(&s.svc, &id).as_deref()).unwrap();
    assert_eq!(snapshot(&tree, true), snapshot(&s.rw, true));
    assert_eq!(
        snapshot(&tree, false),
        [
            "data d 755",
            "data/sub d 755",
            "data/sub/x f 644 1 \"x\"",
            "etc d 755",
            "etc/hello.txt f 644 7 \"changed\"",
            "h1 f 644 4 \"hard\"",
            "keep.txt f 600 4 \"keep\"",
            "link l -> keep.txt",
            "newfile f 644 2 \"hi\"",
            "newlink l -> /etc/hello.txt",
            "opq d 755",
            "opq/new f 644 1 \"n\"",
            "pair1 f 644 1 \"p\"",
            "pair2 f 644 1 \"p\"",
        ]
    );

    // And by the real dockerd.
    let Some((_guard, d)) = dockerd::session("commit interop") else {
        return;
    };
    let saved = save(&s.svc, "commit/out:v1");
    let path = d.file("commit-out.tar", &saved);
    d.docker(&["load", "-i", dockerd::s(&path)]);
    let cid = d
        .docker(&["create", "commit/out:v1", "/nonexistent"])
        .trim()
        .to_string();
    struct Rm<'a>(&'a dockerd::Dockerd, String);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = self.0.docker_cmd(&["rm", "-f", &self.1]).output();
        }
    }
    let _rm = Rm(d, cid.clone());
    let exported = d.docker_bytes(&["export", &cid]);
    let injected = |n: &str| {
        [
            ".dockerenv",
            "dev",
            "proc",
            "sys",
            "etc/hostname",
            "etc/hosts",
            "etc/resolv.conf",
            "etc/mtab",
        ]
        .iter()
        .any(|p| n == *p || n.starts_with(&format!("{p}/")))
    };
    assert_eq!(snapshot_tar(&exported, &injected), snapshot(&tree, false));
}

#[test]
fn commit_of_an_unchanged_container_adds_no_layer() {
    let s = setup();
    let changes: Vec<String> = ["ENV A=1", "CMD echo hi", "EXPOSE 80 443/udp", "LABEL k=v"]
        .iter()
        .map(|c| c.to_string())
        .collect();
    let id = block_on(s.svc.commit_image(
        &s.container[..10],
        None,
        None,
        "me <me@x>",
        "hello & bye",
        &changes,
    ))
    .unwrap();
    assert_verified(&s.svc);
    let saved = save(&s.svc, &id);
    let mut raw = Vec::new();
    let mut a = tar::Archive::new(&saved[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == format!("{}.json", &id[7..]) {
            e.read_to_end(&mut raw).unwrap();
        }
    }
    let text = String::from_utf8(raw).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let created = cfg["created"].as_str().unwrap();
    let c = &s.container;
    let host = &c[..12];
    let img = &s.image;
    let diff = &diff_ids(&config_of(&s.svc, img))[0];
    // image-service.md §2.3, second worked example, with this store's values.
    let want = format!(
        concat!(
            r#"{{"architecture":"amd64","author":"me \u003cme@x\u003e","config":{{"Hostname":"{host}","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{{"443/udp":{{}},"80/tcp":{{}}}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/bin","A=1"],"Cmd":["/bin/sh","-c","echo hi"],"Image":"{img}","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{{"k":"v"}}}},"#,
            r#""container":"{c}","container_config":{{"Hostname":"{host}","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/bin"],"Cmd":null,"Image":"{img}","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{{}}}},"#,
            r#""created":"{created}","docker_version":"20.10.24+dfsg1","history":[{{"created":"2023-11-14T22:13:20Z","created_by":"layer 0"}},{{"created":"{created}","author":"me \u003cme@x\u003e","comment":"hello \u0026 bye","empty_layer":true}}],"os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
        ),
        host = host,
        img = img,
        c = c,
        created = created,
        diff = diff
    );
    assert_eq!(text, want);
    assert!(created.ends_with('Z'), "{created}");
    // Same layers as the parent: same top chain.
    assert_eq!(top_layer(&s.svc, &id), top_layer(&s.svc, img));
}

#[test]
fn commit_errors() {
    let s = setup();
    let cases: Vec<(&str, Option<&str>, Vec<String>, &str)> = vec![
        ("nope", None, vec![], "No such container: nope"),
        (
            "c1",
            None,
            vec!["RUN x".into()],
            "run is not a valid change command",
        ),
    ];
    for (c, repo, changes, want) in cases {
        let e = block_on(s.svc.commit_image(c, repo, None, "", "", &changes)).unwrap_err();
        assert_eq!(e.message(), want, "{c}");
    }
    let before = block_on(s.svc.count_images()).unwrap();
    // A bad repository fails after the image was created (it stays, dangling).
    let e = block_on(s.svc.commit_image("c1", Some("Bad"), None, "", "", &[])).unwrap_err();
    assert_eq!(
        e.message(),
        "invalid reference format: repository name must be lowercase"
    );
    assert_eq!(block_on(s.svc.count_images()).unwrap(), before + 1);
    assert_verified(&s.svc);
}

#[test]
fn rw_directory_lives_and_dies_with_the_container() {
    let s = setup();
    std::fs::write(s.rw.join("scratch"), "x").unwrap();
    // Removed out from under us: rebuilt from the image on demand (changes lost).
    std::fs::remove_dir_all(&s.rw).unwrap();
    let rw = block_on(s.svc.container_rw_path("c1")).unwrap();
    assert_eq!(
        snapshot(&rw, false),
        snapshot(
            &strata::rootfs::materialize(s.svc.store(), top_layer(&s.svc, &s.image).as_deref())
                .unwrap(),
            false
        )
    );
    block_on(s.svc.remove_container("c1")).unwrap();
    assert!(!s.rw.parent().unwrap().exists());
    assert_verified(&s.svc);
    assert_eq!(
        block_on(s.svc.container_rw_path("c1"))
            .unwrap_err()
            .message(),
        "No such container: c1"
    );
}

#[test]
fn squash_merges_layers() {
    let (_d, svc) = service();
    let l1 = tar_of(&[("a/", ""), ("a/x", "xx"), ("b", "bbb")]);
    let l2 = tar_of(&[("a/.wh.x", ""), ("c", "c")]);
    let img = base(vec![l1, l2], 1_700_000_000, &[], &["squash/src:1"]);
    block_on(svc.load_image(std::io::Cursor::new(archive(&[&img])), true)).unwrap();
    let id = block_on(svc.squash_image(&img.id(), None)).unwrap();
    assert_verified(&svc);
    let cfg = config_of(&svc, &id);
    let h = cfg["history"].as_array().unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0]["empty_layer"], true);
    assert_eq!(h[1]["empty_layer"], true);
    assert_eq!(h[2]["comment"], format!("create new from {}", img.id()));
    assert_eq!(diff_ids(&cfg).len(), 1);
    let squashed =
        strata::rootfs::materialize(svc.store(), top_layer(&svc, &id).as_deref()).unwrap();
    let original =
        strata::rootfs::materialize(svc.store(), top_layer(&svc, &img.id()).as_deref()).unwrap();
    assert_eq!(snapshot(&squashed, false), snapshot(&original, false));
    assert_eq!(
        snapshot(&squashed, false),
        ["a d 755", "b f 644 3 \"bbb\"", "c f 644 1 \"c\""]
    );
}

#[test]
fn disk_usage_matches_what_prune_reclaims() {
    let (_d, svc) = service();
    let shared = tar_of(&[("s", "shared-bytes")]);
    let a = base(
        vec![shared.clone(), tar_of(&[("a", "aaaa")])],
        1_700_000_000,
        &[],
        &["df/a:1"],
    );
    let b = base(
        vec![shared, tar_of(&[("b", "bbbbbbb")])],
        1_700_000_001,
        &[],
        &["df/b:1"],
    );
    block_on(svc.load_image(std::io::Cursor::new(archive(&[&a, &b])), true)).unwrap();
    // A container whose changes are committed, then removed.
    block_on(svc.create_container("df/b:1", Some("tmp"))).unwrap();
    let rw = block_on(svc.container_rw_path("tmp")).unwrap();
    std::fs::write(rw.join("extra"), "12345").unwrap();
    let (size_rw, _) = block_on(svc.container_layer_size("tmp")).unwrap();
    assert_eq!(size_rw, 5);
    let df = block_on(svc.system_df()).unwrap();
    assert_eq!(df.layers_size, 12 + 4 + 7);
    assert_eq!(df.containers.len(), 1);
    assert_eq!(
        (df.containers[0].size_rw, df.containers[0].size_root_fs),
        (5, 19 + 5)
    );
    block_on(svc.remove_container("tmp")).unwrap();
    let n = block_on(svc.layer_disk_usage()).unwrap();
    let df = block_on(svc.system_df()).unwrap();
    let json = serde_json::to_value(&df).unwrap();
    assert_eq!(json["LayersSize"], n);
    assert_eq!(json["Containers"], serde_json::json!([]));
    assert_eq!(json["Volumes"], serde_json::json!([]));
    assert_eq!(json["BuildCache"], serde_json::Value::Null);
    assert_eq!(json["BuilderSize"], 0);
    let shared_sizes: Vec<i64> = df.images.iter().map(|i| i.shared_size).collect();
    assert_eq!(shared_sizes, [12, 12]);
    // The CLI's reclaimable figure: LayersSize minus what images in use hold alone.
    let used: i64 = df
        .images
        .iter()
        .filter(|i| i.containers > 0)
        .map(|i| i.virtual_size - i.shared_size)
        .sum();
    let reclaimable = df.layers_size - used;
    assert_eq!(reclaimable, 23);
    let report =
        block_on(svc.images_prune(Filters::from_cli_pairs(["dangling=false"]).unwrap())).unwrap();
    assert_eq!(report.space_reclaimed as i64, reclaimable);
    assert_eq!(block_on(svc.layer_disk_usage()).unwrap(), 0);
    assert_verified(&svc);
    // Cached filesystems of released layers are derived state: pruned on request.
    let removed = block_on(svc.prune_orphan_layers()).unwrap();
    assert_eq!(removed, 1);
}

#[test]
fn diff_of_identical_trees_is_the_empty_tar() {
    let a = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("f"), "x").unwrap();
    let b = tempfile::tempdir().unwrap();
    strata::rootfs::copy_tree(a.path(), &b.path().join("copy")).unwrap();
    let out = strata::diff::diff_dirs(&b.path().join("copy"), a.path(), 0, Vec::new()).unwrap();
    assert_eq!(out, vec![0u8; 1024]);
    let md = std::fs::metadata(b.path().join("copy/f")).unwrap();
    assert!(!md.file_type().is_fifo());
}

/// `pause` is accepted with either value and changes nothing: Docker
/// records it nowhere (not in the config, not in the history).
#[test]
fn commit_pause_flag_is_accepted_and_not_recorded() {
    let s = setup();
    let mut configs = Vec::new();
    for pause in [true, false] {
        let id = block_on(
            s.svc
                .commit_image_with("c1", None, None, "me", "msg", &[], pause, None),
        )
        .unwrap();
        let mut cfg = config_of(&s.svc, &id);
        let text = cfg.to_string();
        assert!(!text.to_lowercase().contains("pause"), "{text}");
        // Only the creation times differ between the two commits.
        cfg["created"] = serde_json::Value::Null;
        for h in cfg["history"].as_array_mut().unwrap() {
            h["created"] = serde_json::Value::Null;
        }
        configs.push(cfg);
    }
    assert_eq!(configs[0], configs[1]);
    assert_verified(&s.svc);
}

/// The `POST /commit` body: a container config replacing the container's
/// as the base of `changes`, then merged with the container's config;
/// `container_config` and `created_by` stay the container's.
#[test]
fn commit_config_override() {
    let s = setup();
    let plain = block_on(s.svc.commit_image("c1", None, None, "", "", &[])).unwrap();
    let own = config_of(&s.svc, &plain)["container_config"].clone();
    let body = strata::ContainerConfig::from_json(
        br#"{"User":"bodyuser","Env":["B=2"],"Cmd":["/body"],"Labels":{"x":"1"},"WorkingDir":"/w"}"#,
    )
    .unwrap();
    let id = block_on(s.svc.commit_image_with(
        "c1",
        None,
        None,
        "",
        "",
        &["ENV C=3".to_string()],
        true,
        Some(body),
    ))
    .unwrap();
    let cfg = config_of(&s.svc, &id);
    assert_eq!(cfg["container_config"], own);
    assert_eq!(own["Env"], serde_json::json!(["PATH=/bin"]));
    // Body fields win; changes apply on the body; the container's Env keys
    // the body lacks are appended (merge); fields merge does not fill
    // (Hostname, Image, Attach*) stay the body's (empty).
    assert_eq!(
        cfg["config"],
        serde_json::json!({"AttachStderr":false,"AttachStdin":false,"AttachStdout":false,"Cmd":["/body"],"Domainname":"","Entrypoint":null,"Env":["B=2","C=3","PATH=/bin"],"Hostname":"","Image":"","Labels":{"x":"1"},"OnBuild":null,"OpenStdin":false,"StdinOnce":false,"Tty":false,"User":"bodyuser","Volumes":null,"WorkingDir":"/w"})
    );
    let last = cfg["history"].as_array().unwrap().last().unwrap().clone();
    let plain_last = config_of(&s.svc, &plain)["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last.get("created_by"), plain_last.get("created_by"));
    assert_verified(&s.svc);
}

fn strata_cli(root: &Path, args: &[&str]) -> (String, String, i32) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("STRATA_ROOT")
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn cli_commit_pause_flag() {
    let s = setup();
    let root = s._dir.path().to_path_buf();
    drop(s.svc);
    for (name, args) in [
        (
            "--pause=false",
            vec!["commit", "--pause=false", "c1", "p/a:1"],
        ),
        ("-p", vec!["commit", "-p", "c1", "p/b:1"]),
        (
            "--pause=true",
            vec!["commit", "--pause=true", "c1", "p/c:1"],
        ),
        ("absent", vec!["commit", "c1", "p/d:1"]),
    ] {
        let (out, err, code) = strata_cli(&root, &args);
        assert_eq!((code, err.as_str()), (0, ""), "{name}");
        assert!(
            out.starts_with("sha256:") && out.len() == 72,
            "{name}: {out}"
        );
    }
    let (_, err, code) = strata_cli(&root, &["commit", "--pause=maybe", "c1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'maybe' for '--pause"), "{err}");
}

/// `POST /commit` over the socket: `pause` never fails (dockerd's
/// `BoolValue`), the body overrides the config.
#[test]
fn api_commit_pause_and_body() {
    let s = setup();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sock = s._dir.path().join("api.sock");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let (svc, sock) = (s.svc.clone(), sock.clone());
            async move {
                strata::server::serve(svc, &sock, async {
                    let _ = stopped.await;
                })
                .await
            }
        });
        for _ in 0..200 {
            if tokio::net::UnixStream::connect(&sock).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let post = |path: String, body: &'static str| {
            let sock = sock.clone();
            async move {
                use http_body_util::BodyExt;
                let stream = tokio::net::UnixStream::connect(&sock).await.unwrap();
                let (mut tx, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let req = hyper::Request::post(path)
                    .header("Host", "docker")
                    .header("Content-Type", "application/json")
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap();
                let resp = tx.send_request(req).await.unwrap();
                let status = resp.status().as_u16();
                let b = resp.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8(b.to_vec()).unwrap())
            }
        };
        for pause in ["", "&pause=0", "&pause=false", "&pause=1", "&pause=maybe"] {
            let (status, body) = post(format!("/v1.41/commit?container=c1{pause}"), "null").await;
            assert_eq!(status, 201, "{pause}: {body}");
        }
        let (status, body) = post(
            "/v1.41/commit?container=c1&repo=api%2Fbody&tag=1&changes=ENV+C%3D3".into(),
            r#"{"Cmd":["/body"],"Env":["B=2"]}"#,
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let id = s.svc.lookup_image("api/body:1").await.unwrap().id;
        let svc = s.svc.clone();
        let cfg = tokio::task::spawn_blocking(move || config_of(&svc, &id))
            .await
            .unwrap();
        assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["/body"]));
        assert_eq!(
            cfg["config"]["Env"],
            serde_json::json!(["B=2", "C=3", "PATH=/bin"])
        );
        let (status, body) = post("/v1.41/commit?container=c1".into(), r#"{"Cmd":"#).await;
        assert_eq!(
            (status, body),
            (
                400,
                "{\"message\":\"unexpected end of JSON input\"}\n".to_string()
            )
        );
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    });
    assert_verified(&s.svc);
}
