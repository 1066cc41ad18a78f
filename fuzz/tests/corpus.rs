//! Replays every checked-in corpus file through every target function, so
//! the fuzz properties are checked by a plain `cargo test` (no libFuzzer).
//! Each file runs through all targets, not only its own: seeds of one target
//! are interesting inputs for the others.

use std::path::{Path, PathBuf};

fn corpus_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("corpus dir") {
        let dir = dir.expect("entry").path();
        for f in std::fs::read_dir(&dir).expect("target corpus dir") {
            files.push(f.expect("entry").path());
        }
    }
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, _) in strata_fuzz::TARGETS {
        let dir = root.join(name);
        let n = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .count();
        assert!(n > 0, "corpus/{name} is empty");
    }
}

#[test]
fn replay_corpus_through_every_target() {
    let files = corpus_files();
    assert!(files.len() >= 8, "only {} corpus files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        for (name, target) in strata_fuzz::TARGETS {
            // The store-level targets are slow: feed them their own corpus
            // and the small files of the others; `oci_layout` (the same
            // `load_image` as `load_archive`, plus the unchanged-store and
            // export checks) only archives.
            let dir = file.parent().and_then(|p| p.file_name());
            let own = dir == Some(name.as_ref());
            if !own && matches!(*name, "load_archive" | "store_model") && data.len() > 4096 {
                continue;
            }
            if *name == "oci_layout" && !own && dir != Some("load_archive".as_ref()) {
                continue;
            }
            let result = std::panic::catch_unwind(|| target(&data));
            if result.is_err() {
                failures.push(format!("{name} <- {}", file.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "targets panicked:\n{}",
        failures.join("\n")
    );
}
