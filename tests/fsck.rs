//! `strata fsck`: damaged and missing blobs, damaged table rows, repair.

mod common;
use common::*;
use strata::Filters;

fn blob_path(d: &tempfile::TempDir, digest: &str) -> std::path::PathBuf {
    d.path().join("blobs/sha256").join(&digest[7..])
}

#[tokio::test]
async fn damaged_and_missing_blobs_are_named_with_their_images() {
    let (d, svc) = service();
    load(&svc, "chain-tagged.tar").await;
    load(&svc, "imported.tar").await;
    let clean = strata::fsck::fsck(svc.store(), false).unwrap();
    assert!(clean.problems.is_empty() && clean.bad_rows.is_empty());
    assert_eq!(clean.checked, 4);

    let chain = svc.lookup_image("dev/chain:1").await.unwrap();
    let bottom = chain.root_fs.layers[0].clone();
    let imported = svc.lookup_image("dev/imported:1").await.unwrap();
    let only = imported.root_fs.layers[0].clone();
    let mut bytes = std::fs::read(blob_path(&d, &bottom)).unwrap();
    bytes[600] ^= 0xff;
    std::fs::write(blob_path(&d, &bottom), bytes).unwrap();
    std::fs::remove_file(blob_path(&d, &only)).unwrap();

    let r = strata::fsck::fsck(svc.store(), false).unwrap();
    assert_eq!(r.problems.len(), 2);
    let damaged = r.problems.iter().find(|p| p.state == "damaged").unwrap();
    assert_eq!(damaged.blob, bottom);
    assert_eq!(damaged.images, [CHAIN_ID.to_string()]);
    assert!(damaged.actual.as_deref().unwrap().starts_with("sha256:"));
    let missing = r.problems.iter().find(|p| p.state == "missing").unwrap();
    assert_eq!(
        (missing.blob.as_str(), missing.images.as_slice()),
        (only.as_str(), &[IMPORTED_ID.to_string()][..])
    );

    // Repair quarantines the damaged blob; loading the image again restores it.
    let repaired = strata::fsck::fsck(svc.store(), true).unwrap();
    let q = repaired
        .problems
        .iter()
        .find_map(|p| p.quarantined_to.clone())
        .unwrap();
    assert!(std::path::Path::new(&q).is_file());
    assert!(!blob_path(&d, &bottom).exists());
    load(&svc, "chain-tagged.tar").await;
    load(&svc, "imported.tar").await;
    let after = strata::fsck::fsck(svc.store(), false).unwrap();
    assert_eq!(after.problems, vec![]);
    assert_verified(&svc);
}

#[tokio::test]
async fn a_damaged_row_is_skipped_reported_and_rebuilt_from_the_log() {
    let (d, svc) = service();
    load(&svc, "chain-all.tar").await;
    let before = svc.images(Filters::new(), true, false).await.unwrap();
    drop(svc);
    {
        let db = redb::Database::open(d.path().join("strata.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("images");
            let mut t = txn.open_table(def).unwrap();
            t.insert(CHAIN_ID, &b"\xff\xff\xff garbage"[..]).unwrap();
        }
        txn.commit().unwrap();
    }
    let svc = strata::ImageService::open(d.path()).unwrap();
    let listed = svc.images(Filters::new(), true, false).await.unwrap();
    assert_eq!(listed.len(), before.len() - 1, "the rest is still served");
    assert!(strata::audit::verify(svc.store()).unwrap().is_err());
    let r = strata::fsck::fsck(svc.store(), false).unwrap();
    assert_eq!(r.bad_rows, [format!("images/{CHAIN_ID}")]);
    assert!(r.tables_differ.is_some());
    let fixed = strata::fsck::fsck(svc.store(), true).unwrap();
    assert!(fixed.tables_rebuilt);
    assert_eq!(
        svc.images(Filters::new(), true, false).await.unwrap(),
        before
    );
    assert_verified(&svc);
}
