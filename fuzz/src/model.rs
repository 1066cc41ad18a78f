//! The model-based target: an arbitrary sequence of bounded operations on
//! one store, checked after every step.

use crate::builder::{self, Img};
use crate::{assert_verified, block_on};
use arbitrary::{Arbitrary, Unstructured};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::OnceLock;
use strata::{Filters, ImageService};

/// At most this many operations per input.
const MAX_OPS: usize = 24;

const T0: i64 = 1_600_000_000;

/// Tags that archives carry and `tag` creates.
const TAGS: &[&str] = &[
    "fz/a:1",
    "fz/a:2",
    "fz/b:latest",
    "busybox:latest",
    "localhost:5000/fz/c:v1",
    "docker.io/library/fz:x",
];

/// Tag targets (repository, tag) of `tag_image`.
const TAG_TARGETS: &[(&str, &str)] = &[
    ("fz/a", "1"),
    ("fz/a", "3"),
    ("fz/b", ""),
    ("busybox", "latest"),
    ("localhost:5000/fz/c", "v1"),
    ("FZ/upper", "x"),
    ("fz/d", "-bad"),
    ("sha256", "abc"),
];

/// The fixed pool of synthetic images: bases sharing a layer, children
/// with and without a new layer, and a grandchild.
fn pool() -> &'static [Img] {
    static POOL: OnceLock<Vec<Img>> = OnceLock::new();
    POOL.get_or_init(|| {
        let l1 = builder::layer(&[("a.txt", b"a")]);
        let l2 = builder::layer(&[("b.txt", b"bb")]);
        let l3 = builder::layer(&[("c.txt", b"ccc")]);
        let empty = builder::layer(&[]);
        let a = builder::base(vec![l1.clone()], T0, &[], &[]);
        let b = builder::child(&a, Some(l2.clone()), T0 + 10, &[("k", "v")], &[]);
        let c = builder::child(&a, None, T0 + 20, &[], &[]);
        let d = builder::child(&b, Some(l3), T0 + 30, &[("k", "w")], &[]);
        let e = builder::base(vec![l1, l2, empty], T0 + 40, &[], &[]);
        vec![a, b, c, d, e]
    })
}

/// Names that operations refer to images by: tags, full IDs, short IDs,
/// `sha256:` prefixes, and names that resolve to nothing.
fn names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v: Vec<String> = TAGS.iter().map(|s| s.to_string()).collect();
        for img in pool() {
            v.push(img.id());
            v.push(img.short());
            v.push(img.id()[..15].to_string());
        }
        v.extend(
            [
                "fz/a",
                "nonexist",
                "sha256:",
                "",
                "Foo",
                "a",
                "fz/b@sha256:0000",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        v
    })
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Load an archive of the pool images in `images` (a bitmask), each
    /// tagged with the tags selected by `tags` (two bits per image).
    Load {
        images: u8,
        tags: u16,
    },
    Tag {
        source: u8,
        target: u8,
    },
    Delete {
        name: u8,
        force: bool,
        prune: bool,
    },
    Prune {
        all: bool,
        filter: PruneFilter,
    },
    CreateContainer {
        image: u8,
    },
    RemoveContainer {
        index: u8,
    },
    /// `export_image` of some names, loaded back into the same store.
    ExportReload {
        first: u8,
        second: Option<u8>,
    },
    Gc {
        dry_run: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum PruneFilter {
    None,
    Label,
    LabelNot,
    UntilEpoch,
    UntilBetween,
    UntilDuration,
}

/// (child, parent) indices in `pool()`, deepest first.
const PARENTS: &[(usize, usize)] = &[(3, 1), (1, 0), (2, 0)];

fn pick<T>(items: &[T], i: u8) -> &T {
    &items[i as usize % items.len()]
}

/// The model-based target. Input: bytes read by `arbitrary` as up to
/// `MAX_OPS` operations on one fresh store.
///
/// Properties: no panic; after every step `audit::verify` passes (which
/// includes live tables == replay of the log) and `count_images` equals the
/// length of `images(all)`; after all steps the store reopens to the same
/// image map and still verifies.
pub fn store_model(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    if ops.is_empty() {
        return;
    }
    let parent = tempfile::tempdir().expect("tempdir");
    let root = parent.path().join("store");
    let svc = ImageService::open(&root).expect("open store");
    let mut containers: Vec<String> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        run(&svc, op, &mut containers);
        let when = format!("after step {step} {op:?}");
        assert_verified(&svc, &when);
        let listed = block_on(svc.images(Filters::new(), true, false)).expect("images");
        let count = block_on(svc.count_images()).expect("count_images");
        assert_eq!(count, listed.len() as u64, "count_images {when}");
    }
    let before: BTreeMap<_, _> = block_on(svc.map()).expect("map");
    drop(svc);
    let svc = ImageService::open(&root).expect("reopen store");
    assert_verified(&svc, "after reopen");
    let after: BTreeMap<_, _> = block_on(svc.map()).expect("map");
    assert_eq!(before, after, "image map changed across reopen");
}

fn run(svc: &ImageService, op: &Op, containers: &mut Vec<String>) {
    match *op {
        Op::Load { images, tags } => {
            // A child needs its parent in the archive (or the store): add ancestors.
            let mut images = images;
            for (child, parent) in PARENTS {
                if images & (1 << child) != 0 {
                    images |= 1 << parent;
                }
            }
            let mut chosen: Vec<Img> = Vec::new();
            for (i, img) in pool().iter().enumerate() {
                if images & (1 << i) == 0 {
                    continue;
                }
                let mut img = img.clone();
                let sel = (tags >> (2 * i)) & 3;
                img.tags = match sel {
                    0 => vec![],
                    1 => vec![pick(TAGS, i as u8).to_string()],
                    2 => vec![pick(TAGS, i as u8 + 1).to_string()],
                    _ => vec![
                        pick(TAGS, i as u8 + 2).to_string(),
                        pick(TAGS, 0).to_string(),
                    ],
                };
                chosen.push(img);
            }
            if chosen.is_empty() {
                return;
            }
            let refs: Vec<&Img> = chosen.iter().collect();
            let bytes = builder::archive(&refs);
            block_on(svc.load_image(Cursor::new(bytes), true))
                .unwrap_or_else(|e| panic!("loading a well-formed synthetic archive failed: {e}"));
        }
        Op::Tag { source, target } => {
            let (repo, tag) = pick(TAG_TARGETS, target);
            let _ = block_on(svc.tag_image(pick(names(), source).as_str(), repo, tag));
        }
        Op::Delete { name, force, prune } => {
            let _ = block_on(svc.image_delete(pick(names(), name).as_str(), force, prune));
        }
        Op::Prune { all, ref filter } => {
            let mut f = Filters::new();
            f.add("dangling", if all { "false" } else { "true" });
            match filter {
                PruneFilter::None => {}
                PruneFilter::Label => f.add("label", "k"),
                PruneFilter::LabelNot => f.add("label!", "k=v"),
                PruneFilter::UntilEpoch => f.add("until", "0"),
                PruneFilter::UntilBetween => f.add("until", &(T0 + 15).to_string()),
                PruneFilter::UntilDuration => f.add("until", "1h"),
            }
            let _ = block_on(svc.images_prune(f));
        }
        Op::CreateContainer { image } => {
            if let Ok(id) = block_on(svc.create_container(pick(names(), image).as_str(), None)) {
                containers.push(id);
            }
        }
        Op::RemoveContainer { index } => {
            if containers.is_empty() {
                return;
            }
            let id = containers.remove(index as usize % containers.len());
            block_on(svc.remove_container(&id))
                .unwrap_or_else(|e| panic!("removing container {id} failed: {e}"));
        }
        Op::ExportReload { first, second } => {
            let mut wanted = vec![pick(names(), first).clone()];
            if let Some(s) = second {
                wanted.push(pick(names(), s).clone());
            }
            let out = SharedBuf::default();
            if block_on(svc.export_image(wanted.clone(), out.clone())).is_ok() {
                let bytes = out.take();
                block_on(svc.load_image(Cursor::new(bytes), true)).unwrap_or_else(|e| {
                    panic!("reloading an export of {wanted:?} into the same store failed: {e}")
                });
            }
        }
        Op::Gc { dry_run } => {
            block_on(svc.gc(dry_run)).unwrap_or_else(|e| panic!("gc failed: {e}"));
        }
    }
}

/// A `Write` whose bytes can be taken after the writer was moved away.
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}
