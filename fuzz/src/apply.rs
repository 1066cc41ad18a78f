//! The `layer_apply` target: applying a layer tar onto a directory tree.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use strata::fuzzing::{ApplyOptions, apply_layer, remove_tree};

/// Every tree is applied under `<base>/p<pid>-<n>/root`, `<base>` one of
/// these fixed places (the first whose parent is a directory: tmpfs is much
/// faster), so that seeds can hold absolute symlinks aiming at it: followed
/// on the host, they would write beside `root` or beside the per-run
/// directory.
pub const APPLY_BASES: [&str; 2] = [
    "/dev/shm/strata-fuzz-layer-apply",
    "/tmp/strata-fuzz-layer-apply",
];

fn apply_base() -> &'static Path {
    static BASE: std::sync::OnceLock<&'static Path> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let shm = Path::new(APPLY_BASES[0]);
        if shm.parent().is_some_and(Path::is_dir) {
            shm
        } else {
            Path::new(APPLY_BASES[1])
        }
    })
}

/// The tree a layer is applied onto (the "lower" layers).
const LOWER_FILES: &[(&str, &[u8])] = &[
    ("a/b.txt", b"b"),
    ("a/sub/c.txt", b"c"),
    ("a/sub/deep/d.txt", b"d"),
    ("e.txt", b"e"),
    ("dir/x", b"x"),
];
const LOWER_LINKS: &[(&str, &str)] = &[("abs", "/a"), ("rel", "a/sub"), ("up", "/")];

fn make_lower(root: &Path) {
    for (name, data) in LOWER_FILES {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).expect("lower dir");
        std::fs::write(&p, data).expect("lower file");
    }
    for (name, target) in LOWER_LINKS {
        std::os::unix::fs::symlink(target, root.join(name)).expect("lower symlink");
    }
}

/// Docker's cleaning of an entry name (`None`: it climbs out).
fn clean(name: &[u8]) -> Option<Vec<Vec<u8>>> {
    let absolute = name.starts_with(b"/");
    let mut out: Vec<Vec<u8>> = Vec::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && !absolute {
                    return None;
                }
            }
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

/// Every path under `dir` (relative, `/`-joined), not following symlinks;
/// the non-directories among them.
fn walk(dir: &Path, at: &str, all: &mut BTreeSet<String>, files: &mut BTreeSet<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let e = e.expect("entry");
        let name = String::from_utf8_lossy(e.file_name().as_bytes()).into_owned();
        let rel = if at.is_empty() {
            name.clone()
        } else {
            format!("{at}/{name}")
        };
        let ty = e.file_type().expect("file type");
        all.insert(rel.clone());
        if ty.is_dir() {
            walk(&e.path(), &rel, all, files);
        } else {
            files.insert(rel);
        }
    }
}

/// Names in the tar (cleaned): every entry, the whiteout targets, the
/// opaque directories; and the sum of the entry sizes. `None` when the
/// `tar` crate cannot list the stream.
struct Listing {
    names: Vec<String>,
    whiteouts: Vec<String>,
    opaque: Vec<String>,
    size: u64,
}

fn list(data: &[u8]) -> Option<Listing> {
    let mut a = tar::Archive::new(Cursor::new(data));
    let mut l = Listing {
        names: Vec::new(),
        whiteouts: Vec::new(),
        opaque: Vec::new(),
        size: 0,
    };
    for e in a.entries().ok()? {
        let e = e.ok()?;
        l.size = l.size.saturating_add(e.size());
        if e.header().entry_type() == tar::EntryType::XGlobalHeader {
            continue;
        }
        let Some(comps) = clean(&e.path_bytes()) else {
            continue;
        };
        let text: Vec<String> = comps
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let joined = text.join("/");
        match text.split_last() {
            Some((last, dir)) if last == ".wh..wh..opq" => l.opaque.push(dir.join("/")),
            Some((last, dir))
                if last.len() > 4
                    && last.starts_with(".wh.")
                    && !joined.starts_with(".wh..wh.") =>
            {
                let mut t = dir.to_vec();
                t.push(last[4..].to_string());
                l.whiteouts.push(t.join("/"));
            }
            _ => {}
        }
        l.names.push(joined);
    }
    Some(l)
}

fn under(p: &str, dir: &str) -> bool {
    dir.is_empty() || p == dir || p.starts_with(&format!("{dir}/"))
}

/// Applying one layer tar of arbitrary bytes onto a small tree (files,
/// nested directories, absolute and relative symlinks) under a temporary
/// root, without devices or chown.
///
/// Properties: no panic; whatever the outcome, the directory holding the
/// root holds nothing but the root, and the shared base directory
/// ([`APPLY_BASES`]) nothing but per-run directories (an
/// absolute symlink followed on the host would write there); on success,
/// the returned size is the `tar` crate's sum of entry sizes, no
/// non-directory named `.wh.*` exists, and a lower file survives a
/// whiteout of itself or an ancestor, or an opaque marker of an ancestor,
/// only when the layer has an entry at or below it.
pub fn layer_apply(data: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = apply_base();
    std::fs::create_dir_all(base).expect("base dir");
    let run: PathBuf = base.join(format!(
        "p{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let root = run.join("root");
    std::fs::create_dir_all(&root).expect("root");
    make_lower(&root);
    let opts = ApplyOptions {
        allow_devices: false,
        chown: false,
    };
    let result = apply_layer(&root, Cursor::new(data), &opts);

    let beside: Vec<String> = std::fs::read_dir(&run)
        .expect("read run dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut all = BTreeSet::new();
    let mut files = BTreeSet::new();
    walk(&root, "", &mut all, &mut files);
    let check = || {
        assert_eq!(beside, ["root"], "apply wrote beside the root");
        for e in std::fs::read_dir(base).expect("read base") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with('p') && e.file_type().expect("type").is_dir(),
                "apply wrote {name:?} into {}",
                base.display()
            );
        }
        let Ok(size) = &result else { return };
        let Some(l) = list(data) else {
            panic!("apply accepted a stream the tar crate cannot list")
        };
        assert_eq!(*size, l.size, "layer size");
        for f in &files {
            let leaf = f.rsplit('/').next().unwrap_or("");
            assert!(!leaf.starts_with(".wh."), "whiteout {f:?} materialized");
        }
        for (lower, _) in LOWER_FILES {
            if !files.contains(*lower) {
                continue;
            }
            let hit = l.whiteouts.iter().any(|w| under(lower, w))
                || l.opaque.iter().any(|o| under(lower, o) && lower != o);
            let recreated = l.names.iter().any(|n| under(n, lower));
            assert!(
                !hit || recreated,
                "{lower:?} survived a whiteout/opaque marker: {:?} {:?}",
                l.whiteouts,
                l.opaque
            );
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    remove_tree(&run).expect("remove the run directory");
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
