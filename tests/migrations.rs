//! Stores written by earlier formats open, migrate and verify.

mod common;
use common::*;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[tokio::test]
async fn the_v1_fixture_store_opens_verifies_and_lists_the_same() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stores");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures.join("v1"), dir.path());
    let svc = strata::ImageService::open(dir.path()).unwrap();
    assert_verified(&svc);
    let listed: Vec<String> = svc
        .images(strata::Filters::new(), true, false)
        .await
        .unwrap()
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    let expected = std::fs::read_to_string(fixtures.join("v1.images.jsonl")).unwrap();
    assert_eq!(listed, expected.lines().collect::<Vec<_>>());
    assert_eq!(svc.containers().await.unwrap()[0].name, "fixture-c");
    // The store keeps working after the open.
    svc.tag_image("dev/chain:1", "after", "open").await.unwrap();
    assert_verified(&svc);
}
