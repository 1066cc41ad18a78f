//! The `oci_layout` target: loading OCI image layout tars.

use crate::builder::{archive, base, layer};
use crate::{assert_no_symlinks, assert_verified, block_on};
use std::io::Cursor;
use std::sync::OnceLock;
use strata::{Filters, ImageService};

/// A small docker-archive loaded into every store first, so that a failed
/// load has something to leave unchanged (and layers to share).
fn preload() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let l = layer(&[("etc/hostname", b"box\n")]);
        let img = base(vec![l], 1_600_000_000, &[], &["fuzz/pre:1"]);
        archive(&[&img])
    })
}

/// Everything a failed load must leave as it was: the log head, the image
/// list (JSON) and the content store's blobs.
fn snapshot(svc: &ImageService) -> (String, String, Vec<String>) {
    let head = svc.store().head().expect("log head");
    let images = block_on(svc.images(Filters::new(), true, false)).expect("images");
    let blobs = svc.store().content().list().expect("content list");
    (
        format!("{head:?}"),
        serde_json::to_string(&images).expect("images to JSON"),
        blobs,
    )
}

/// Loading an OCI image layout tar (or anything else `load_image` takes)
/// of arbitrary bytes into a store holding one small image.
///
/// Properties: no panic; `audit::verify` passes after the load, ok or
/// not; a failed load leaves the log head, the image list and the content
/// store unchanged; nothing is created beside the store directory and no
/// symlink inside it; a successful load can be repeated, and the loaded
/// images exported with `export_oci` load into a fresh store with the same
/// image IDs.
pub fn oci_layout(data: &[u8]) {
    // tmpfs when there is one: a store's fsyncs are what makes this slow.
    let shm = std::path::Path::new("/dev/shm");
    let parent = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let root = parent.path().join("store");
    let svc = ImageService::open(&root).expect("open store");
    block_on(svc.load_image(Cursor::new(preload().to_vec()), true)).expect("preload");
    let before = snapshot(&svc);
    let result = block_on(svc.load_image(Cursor::new(data.to_vec()), true));
    assert_verified(&svc, "after load");
    match result {
        Err(e) => {
            assert_eq!(
                snapshot(&svc),
                before,
                "failed load ({e}) changed the store"
            );
        }
        Ok(report) => {
            let again = block_on(svc.load_image(Cursor::new(data.to_vec()), true))
                .unwrap_or_else(|e| panic!("second load of a layout that loaded failed: {e}"));
            assert_eq!(again.images, report.images, "second load");
            assert_verified(&svc, "after second load");
            if !report.images.is_empty() {
                round_trip(&svc, &report.images, parent.path());
            }
        }
    }
    let beside: Vec<String> = std::fs::read_dir(parent.path())
        .expect("read parent")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "again")
        .collect();
    assert_eq!(beside, ["store"], "load wrote beside the store directory");
    assert_no_symlinks(&root);
}

/// `export_oci(ids)` loads into a fresh store as the same images.
fn round_trip(svc: &ImageService, ids: &[String], parent: &std::path::Path) {
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = SharedVec(out.clone());
    block_on(svc.export_oci(ids.to_vec(), writer))
        .unwrap_or_else(|e| panic!("export_oci of loaded images {ids:?} failed: {e}"));
    let bytes = std::mem::take(&mut *out.lock().unwrap());
    let fresh = ImageService::open(parent.join("again")).expect("open second store");
    let r = block_on(fresh.load_image(Cursor::new(bytes), true))
        .unwrap_or_else(|e| panic!("export_oci output of {ids:?} does not load: {e}"));
    let mut got = r.images.clone();
    let mut want = ids.to_vec();
    got.sort();
    got.dedup();
    want.sort();
    want.dedup();
    assert_eq!(got, want, "export_oci round trip");
    assert_verified(&fresh, "after reloading the export");
}

struct SharedVec(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedVec {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
