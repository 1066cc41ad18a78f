//! Layers as filesystems: applying layer tars (whiteouts, opaque
//! directories, hardlinks, symlinks, devices; formats.md C.3) and refusing
//! hostile layers without writing anything outside the tree.

mod common;

use common::builder::{archive, base};
use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use strata::rootfs::{ApplyOptions, apply_layer, materialize};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One tar entry to build.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
    Sym(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str, u32, u32),
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data): (&str, &[u8]) = match e {
            E::Dir(n, m) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*m);
                (n, b"")
            }
            E::File(n, d, m) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*m);
                h.set_size(d.len() as u64);
                (n, d)
            }
            E::Link(n, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_link_name_literal(t).unwrap();
                (n, b"")
            }
            E::Sym(n, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name_literal(t).unwrap();
                (n, b"")
            }
            E::Fifo(n) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o640);
                (n, b"")
            }
            E::Char(n, maj, min) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                (n, b"")
            }
        };
        // Raw names: no normalisation by the tar crate (hostile names stay hostile).
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The tree below `root` as sorted lines: `path kind perm size detail`.
fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = md.file_type();
        let perm = md.mode() & 0o7777;
        let line = if ft.is_dir() {
            walk(root, &p, out);
            format!("{rel} d {perm:o}")
        } else if ft.is_symlink() {
            format!(
                "{rel} l -> {}",
                std::fs::read_link(&p).unwrap().to_string_lossy()
            )
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap();
            format!(
                "{rel} f {perm:o} {:?} nlink={}",
                String::from_utf8_lossy(&data),
                md.nlink()
            )
        } else if ft.is_fifo() {
            format!("{rel} p {perm:o}")
        } else if ft.is_char_device() {
            format!("{rel} c {perm:o} {}", md.rdev())
        } else {
            format!("{rel} ? {perm:o}")
        };
        out.push(line);
    }
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        allow_devices: false,
        chown: strata::rootfs::is_root(),
    }
}

#[test]
fn whiteouts_opaque_dirs_hardlinks_and_symlinks() {
    let l1 = tar_of(&[
        E::Dir("a/", 0o755),
        E::Dir("a/b/", 0o750),
        E::File("a/b/f1", b"one", 0o644),
        E::File("a/keep", b"k", 0o600),
        E::Dir("d/", 0o755),
        E::File("d/x", b"x", 0o644),
        E::Dir("d/y/", 0o755),
        E::File("d/y/z", b"z", 0o644),
        E::File("hl1", b"shared", 0o640),
        E::Link("hl2", "hl1"),
        E::Sym("s", "a/keep"),
        E::Sym("abs", "/a/b"),
        E::Fifo("p"),
        E::Dir("o/", 0o755),
        E::File("o/old1", b"1", 0o644),
        E::Dir("o/sub/", 0o755),
        E::File("o/sub/old2", b"2", 0o644),
        E::File("setuid", b"#!", 0o4755),
        E::Dir("replaced/", 0o755),
        E::File("replaced/inner", b"i", 0o644),
    ]);
    let l2 = tar_of(&[
        E::File("a/b/.wh.f1", b"", 0),
        E::File(".wh.d", b"", 0),
        E::Dir("o/", 0o700),
        E::File("o/.wh..wh..opq", b"", 0o700),
        E::File("o/new", b"n", 0o644),
        E::File("replaced", b"now a file", 0o644),
        E::File("hl1", b"replaced", 0o644),
        // Written through an absolute symlink: lands in a/b (in-root resolution).
        E::File("abs/via", b"v", 0o644),
        // No parent entries: created with mode 0600 (Docker's quirk).
        E::File("np/deep/file", b"f", 0o644),
        // AUFS metadata is skipped.
        E::File(".wh..wh.aufs", b"", 0o644),
        E::Dir(".wh..wh.plnk/", 0o700),
    ]);
    let img = base(vec![l1, l2], 1_700_000_000, &[], &["rootfs/apply:1"]);
    let (_d, svc) = service();
    block_on(svc.load_image(std::io::Cursor::new(archive(&[&img])), true)).unwrap();
    let rows = block_on(svc.map()).unwrap();
    let top = rows[&img.id()].top_layer.clone().unwrap();
    let tree = materialize(svc.store(), Some(&top)).unwrap();
    assert_eq!(
        snapshot(&tree),
        [
            "a d 755",
            "a/b d 750",
            "a/b/via f 644 \"v\" nlink=1",
            "a/keep f 600 \"k\" nlink=1",
            "abs l -> /a/b",
            "hl1 f 644 \"replaced\" nlink=1",
            "hl2 f 644 \"shared\" nlink=1",
            "np d 600",
            "np/deep d 600",
            "np/deep/file f 644 \"f\" nlink=1",
            "o d 700",
            "o/new f 644 \"n\" nlink=1",
            "p p 640",
            "replaced f 644 \"now a file\" nlink=1",
            "s l -> a/keep",
            "setuid f 4755 \"#!\" nlink=1",
        ]
    );
    // Cached: a second call returns the same directory untouched.
    assert_eq!(materialize(svc.store(), Some(&top)).unwrap(), tree);
    // mtimes come from the headers; a directory's is set after the whole
    // layer (`o/` got new children after its entry)...
    let md = std::fs::symlink_metadata(tree.join("o")).unwrap();
    assert_eq!(md.mtime(), 1_600_000_000);
    // ...while one the layer only wrote into (`a/b`) keeps the time of the writes.
    let md = std::fs::symlink_metadata(tree.join("a/b")).unwrap();
    assert!(md.mtime() > 1_700_000_000, "{}", md.mtime());
    // The first layer alone: the hardlink pair shares an inode.
    let dir = tempfile::tempdir().unwrap();
    let l1 = &img.layers[0];
    apply_layer(dir.path(), &l1[..], &opts()).unwrap();
    let a = std::fs::metadata(dir.path().join("hl1")).unwrap();
    let b = std::fs::metadata(dir.path().join("hl2")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    assert_verified(&svc);
}

#[test]
fn opaque_marker_keeps_entries_of_the_same_layer_written_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let l1 = tar_of(&[E::Dir("o/", 0o755), E::File("o/lower", b"l", 0o644)]);
    let l2 = tar_of(&[
        E::Dir("o/", 0o755),
        E::File("o/before", b"b", 0o644),
        E::File("o/.wh..wh..opq", b"", 0o755),
        E::File("o/after", b"a", 0o644),
    ]);
    apply_layer(dir.path(), &l1[..], &opts()).unwrap();
    apply_layer(dir.path(), &l2[..], &opts()).unwrap();
    assert_eq!(
        snapshot(dir.path()),
        [
            "o d 755",
            "o/after f 644 \"a\" nlink=1",
            "o/before f 644 \"b\" nlink=1",
        ]
    );
}

#[test]
fn layer_size_is_the_sum_of_entry_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let l = tar_of(&[
        E::File("a", b"12345", 0o644),
        E::Link("b", "a"),
        E::Sym("c", "a"),
        E::File("d", b"xyz", 0o644),
    ]);
    assert_eq!(apply_layer(dir.path(), &l[..], &opts()).unwrap(), 8);
}

/// A tree `root` next to a `canary` directory holding one file.
struct Arena {
    _tmp: tempfile::TempDir,
    root: std::path::PathBuf,
    canary: std::path::PathBuf,
}

fn arena() -> Arena {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let canary = tmp.path().join("canary");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("file"), b"canary").unwrap();
    Arena {
        _tmp: tmp,
        root,
        canary,
    }
}

#[test]
fn hostile_layers_are_refused_and_nothing_escapes() {
    let probe = arena();
    let root_s = probe.root.display().to_string();
    let canary_abs = probe.canary.display().to_string();
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        (
            "dotdot entry",
            tar_of(&[E::File("../canary/pwned", b"x", 0o644)]),
            Some(format!("\"../canary/pwned\" is outside of \"{root_s}\"")),
        ),
        (
            "dotdot whiteout",
            tar_of(&[E::File("a/../../canary/.wh.file", b"", 0)]),
            Some(format!(
                "\"a/../../canary/.wh.file\" is outside of \"{root_s}\""
            )),
        ),
        (
            "relative symlink out",
            tar_of(&[E::Sym("evil", "../canary")]),
            Some(format!(
                "invalid symlink \"{root_s}/evil\" -> \"../canary\""
            )),
        ),
        (
            "symlink chain out",
            tar_of(&[E::Dir("d/", 0o755), E::Sym("d/up", "../../..")]),
            Some(format!("invalid symlink \"{root_s}/d/up\" -> \"../../..\"")),
        ),
        (
            "hardlink out",
            tar_of(&[E::Link("h", "../canary/file")]),
            Some(format!(
                "invalid hardlink \"{canary_abs}/file\" -> \"../canary/file\""
            )),
        ),
        (
            "device without permission",
            tar_of(&[E::Char("dev/null", 1, 3)]),
            Some("device node \"dev/null\" not permitted (creating devices needs root)".into()),
        ),
        (
            "absolute symlink to the host, written through",
            tar_of(&[
                E::Sym("host", &canary_abs),
                E::File("host/pwned", b"x", 0o644),
            ]),
            Some("mkdir \"host\": File exists (os error 17)".into()),
        ),
        (
            // Lexically inside (`sub/up` -> root, `sub/up2` -> `sub/up/..`),
            // but a naive resolver would climb out of the root: in-root
            // resolution keeps `..` at the root.
            "dotdot through a symlink to the root",
            tar_of(&[
                E::Dir("sub/", 0o755),
                E::Sym("sub/up", ".."),
                E::Sym("sub/up2", "up/.."),
                E::File("sub/up2/canary/pwned", b"x", 0o644),
                E::File("sub/up2/.wh.canary2", b"", 0),
                E::Link("sub/up2/hl", "sub/up2/canary/pwned"),
            ]),
            None,
        ),
    ];
    for (name, layer, want) in cases {
        let a = arena();
        let got = apply_layer(&a.root, &layer[..], &opts());
        match (&want, got) {
            (Some(w), Err(e)) => {
                let w = w.replace(&root_s, &a.root.display().to_string());
                let w = w.replace(&canary_abs, &a.canary.display().to_string());
                assert_eq!(e.message(), w, "{name}");
            }
            (None, Ok(_)) => {}
            (w, got) => panic!("{name}: want {w:?}, got {got:?}"),
        }
        // Nothing outside the tree changed.
        assert_eq!(
            snapshot(&a.canary),
            ["file f 644 \"canary\" nlink=1"],
            "{name}"
        );
        let parent: Vec<String> = std::fs::read_dir(a.root.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(parent, ["canary", "root"], "{name}");
        if want.is_none() {
            assert_eq!(
                snapshot(&a.root),
                [
                    "canary d 600",
                    "canary/pwned f 644 \"x\" nlink=2",
                    "hl f 644 \"x\" nlink=2",
                    "sub d 755",
                    "sub/up l -> ..",
                    "sub/up2 l -> up/..",
                ],
                "{name}"
            );
        }
    }
    drop(probe);
}

#[test]
fn device_nodes_are_created_as_root() {
    if !strata::rootfs::is_root() {
        eprintln!("note: skipping device_nodes_are_created_as_root: not running as root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let l = tar_of(&[E::Dir("dev/", 0o755), E::Char("dev/null", 1, 3)]);
    let o = ApplyOptions {
        allow_devices: true,
        chown: true,
    };
    apply_layer(dir.path(), &l[..], &o).unwrap();
    let md = std::fs::symlink_metadata(dir.path().join("dev/null")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!((md.rdev(), md.mode() & 0o7777), (0x103, 0o666));
}

#[test]
fn ownership_is_applied_as_root() {
    if !strata::rootfs::is_root() {
        eprintln!("note: skipping ownership_is_applied_as_root: not running as root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o640);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_size(1);
    h.set_mtime(1);
    h.set_cksum();
    b.append_data(&mut h, "owned", &b"x"[..]).unwrap();
    let l = b.into_inner().unwrap();
    apply_layer(dir.path(), &l[..], &ApplyOptions::for_process()).unwrap();
    let md = std::fs::symlink_metadata(dir.path().join("owned")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1234, 5678, 0o640)
    );
}

/// `lgetxattr` of `name` on `path` (None when absent or refused).
fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// An entry of [`xattr_layer`]: name, type, xattrs.
type XEntry<'a> = (&'a str, tar::EntryType, &'a [(&'a str, &'a [u8])]);

/// A layer whose entries carry `SCHILY.xattr.*` records.
fn xattr_layer(entries: &[XEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, xattrs) in entries {
        let pax: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            h.set_link_name("target").unwrap();
        }
        if *kind == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// xattrs on symlinks, fifos and device nodes are applied with
/// `lsetxattr` where Linux permits (`trusted.*`/`security.*` as root) and
/// skipped with a warning where it refuses (`user.*` → EPERM on these
/// file types; `trusted.*` without CAP_SYS_ADMIN) — never an error. Checked
/// on /tmp and /dev/shm (tmpfs), where this machine allows exactly that.
#[test]
fn xattrs_on_symlinks_fifos_and_devices() {
    let root = strata::rootfs::is_root();
    let mut entries: Vec<XEntry<'_>> = vec![
        (
            "link",
            tar::EntryType::Symlink,
            &[("user.u", b"1"), ("trusted.t", b"2"), ("security.s", b"3")],
        ),
        (
            "fifo",
            tar::EntryType::Fifo,
            &[("user.u", b"1"), ("trusted.t", b"4")],
        ),
        ("file", tar::EntryType::Regular, &[("user.u", b"5")]),
    ];
    if root {
        entries.push((
            "null",
            tar::EntryType::Char,
            &[("user.u", b"1"), ("trusted.t", b"6")],
        ));
    }
    let layer = xattr_layer(&entries);
    for base in ["/tmp", "/dev/shm"] {
        if !Path::new(base).is_dir() {
            continue;
        }
        let dir = tempfile::tempdir_in(base).unwrap();
        let o = ApplyOptions {
            allow_devices: root,
            chown: root,
        };
        apply_layer(dir.path(), &layer[..], &o).unwrap_or_else(|e| panic!("{base}: {e}"));
        let p = |n: &str| dir.path().join(n);
        let trusted = |v: &[u8]| root.then(|| v.to_vec());
        // (entry, xattr, expected value)
        let mut cases: Vec<(&str, &str, Option<Vec<u8>>)> = vec![
            ("link", "user.u", None),
            ("link", "trusted.t", trusted(b"2")),
            ("link", "security.s", trusted(b"3")),
            ("fifo", "user.u", None),
            ("fifo", "trusted.t", trusted(b"4")),
            ("file", "user.u", Some(b"5".to_vec())),
        ];
        if root {
            cases.push(("null", "user.u", None));
            cases.push(("null", "trusted.t", Some(b"6".to_vec())));
        }
        for (entry, key, want) in cases {
            assert_eq!(lgetxattr(&p(entry), key), want, "{base} {entry} {key}");
        }
        // The symlink itself carries them, not its (missing) target.
        assert_eq!(std::fs::read_link(p("link")).unwrap(), Path::new("target"));
    }
}
