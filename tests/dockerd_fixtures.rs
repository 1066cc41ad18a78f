//! Load and save against archives written by the real dockerd 20.10, and
//! compare what strata reports with what dockerd printed for them.

mod common;
use common::*;
use strata::Filters;

#[tokio::test]
async fn fixture_ids_match_dockerd() {
    let (_d, svc) = service();
    for (file, id, tag) in [
        ("chain-tagged.tar", CHAIN_ID, "dev/chain:1"),
        ("imported.tar", IMPORTED_ID, "dev/imported:1"),
        ("committed.tar", COMMITTED_ID, "dev/committed:1"),
    ] {
        let report = load(&svc, file).await;
        assert_eq!(report.lines, [format!("Loaded image: {tag}")], "{file}");
        assert_eq!(report.images, [id.to_string()], "{file}");
        assert_eq!(svc.get_image(tag).await.unwrap(), id);
    }
    assert_verified(&svc);
}

#[tokio::test]
async fn single_image_save_is_byte_identical_to_dockerd() {
    let (dir, svc) = service();
    for (file, tag) in [
        ("chain-tagged.tar", "dev/chain:1"),
        ("imported.tar", "dev/imported:1"),
        ("committed.tar", "dev/committed:1"),
    ] {
        load(&svc, file).await;
        let out = dir.path().join("out.tar");
        let f = std::fs::File::create(&out).unwrap();
        svc.export_image(vec![tag.to_string()], f).await.unwrap();
        let ours = std::fs::read(&out).unwrap();
        let theirs = read_fixture(file);
        assert!(
            ours == theirs,
            "{file}: strata's save differs from dockerd's ({} vs {} bytes)",
            ours.len(),
            theirs.len()
        );
    }
}

#[tokio::test]
async fn chain_all_restores_parents_and_hides_intermediates() {
    let (_d, svc) = service();
    let report = load(&svc, "chain-all.tar").await;
    assert_eq!(report.images.len(), 6);
    assert!(
        report
            .lines
            .contains(&"Loaded image: dev/chain:1".to_string())
    );
    let top = svc.images(Filters::new(), false, false).await.unwrap();
    assert_eq!(top.len(), 1, "intermediates must be hidden without -a");
    assert_eq!(top[0].id, CHAIN_ID);
    let all = svc.images(Filters::new(), true, false).await.unwrap();
    assert_eq!(all.len(), 6);
    // Compare with `docker images -a --no-trunc` as dockerd printed it.
    let expected = std::fs::read_to_string(fixture("images-after.jsonl")).unwrap();
    for line in expected.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = v["ID"].as_str().unwrap();
        if id == IMPORTED_ID || id == COMMITTED_ID {
            continue;
        }
        let ours = all
            .iter()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("{id} missing"));
        let size = v["Size"].as_str().unwrap().trim_end_matches('B');
        assert_eq!(ours.size.to_string(), size, "{id}");
    }
    let inspect = svc.lookup_image("dev/chain:1").await.unwrap();
    assert_eq!(
        inspect.parent,
        "sha256:1b12e7b8849f88a5bf900c962e646c28879ef224b7e586984f01482a2ebe3fd6"
    );
    assert_verified(&svc);
}

/// Inspect output equals dockerd's, except LastTagTime (load does not set it).
#[tokio::test]
async fn inspect_matches_dockerd() {
    for (file, name, golden) in [
        ("chain-all.tar", "dev/chain:1", "dev_chain_1.inspect.json"),
        (
            "imported.tar",
            "dev/imported:1",
            "dev_imported_1.inspect.json",
        ),
        (
            "committed.tar",
            "dev/committed:1",
            "dev_committed_1.inspect.json",
        ),
    ] {
        let (_d, svc) = service();
        load(&svc, file).await;
        let ours = serde_json::to_value(svc.lookup_image(name).await.unwrap()).unwrap();
        let mut theirs: serde_json::Value = serde_json::from_slice(&read_fixture(golden)).unwrap();
        let theirs = theirs.as_array_mut().unwrap().remove(0);
        let mut ours_cmp = ours.clone();
        let mut theirs_cmp = theirs.clone();
        ours_cmp["Metadata"] = serde_json::Value::Null;
        theirs_cmp["Metadata"] = serde_json::Value::Null;
        if file != "chain-all.tar" {
            // Saved without its parents: the parent link cannot be restored.
            theirs_cmp["Parent"] = ours_cmp["Parent"].clone();
        }
        assert_eq!(ours_cmp, theirs_cmp, "{name}");
        assert_eq!(ours["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
    }
}

#[tokio::test]
async fn history_matches_dockerd() {
    for (file, name, golden) in [
        ("chain-all.tar", "dev/chain:1", "dev_chain_1.history.jsonl"),
        (
            "imported.tar",
            "dev/imported:1",
            "dev_imported_1.history.jsonl",
        ),
        (
            "committed.tar",
            "dev/committed:1",
            "dev_committed_1.history.jsonl",
        ),
    ] {
        let (_d, svc) = service();
        load(&svc, file).await;
        let ours = svc.image_history(name).await.unwrap();
        let theirs: Vec<serde_json::Value> = std::fs::read_to_string(fixture(golden))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!(o.created_by, t["CreatedBy"].as_str().unwrap(), "{name}");
            assert_eq!(o.comment, t["Comment"].as_str().unwrap(), "{name}");
            assert_eq!(
                format!("{}B", o.size),
                t["Size"].as_str().unwrap(),
                "{name}"
            );
            if file == "chain-all.tar" {
                assert_eq!(o.id, t["ID"].as_str().unwrap(), "{name}");
            }
        }
    }
}

/// dockerd sets parent links from an archive on images it already had.
#[tokio::test]
async fn loading_the_chain_after_its_top_image_restores_the_parent() {
    let (_d, svc) = service();
    load(&svc, "chain-tagged.tar").await;
    load(&svc, "chain-all.tar").await;
    let top = svc.images(Filters::new(), false, false).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(
        svc.lookup_image("dev/chain:1").await.unwrap().parent,
        "sha256:1b12e7b8849f88a5bf900c962e646c28879ef224b7e586984f01482a2ebe3fd6"
    );
    let pruned = svc.images_prune(Filters::new()).await.unwrap();
    assert_eq!(
        pruned.images_deleted, None,
        "intermediates are not dangling"
    );
    assert_verified(&svc);
}
