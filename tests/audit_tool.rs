//! `strata audit`: queries, blame, time travel, export/import, and reading a
//! store that another process holds for writing.

mod common;
use common::*;
use strata::audit::{self, LogQuery};
use strata::{Actor, Filters, ImageService};

fn actor(client: &str) -> Actor {
    Actor {
        uid: Some(1000),
        user: Some("alice".into()),
        client: Some(client.into()),
    }
}

/// chain-tagged loaded by "loader", tagged by "tagger", untagged by "deleter".
async fn history() -> (tempfile::TempDir, ImageService) {
    let (d, svc) = service();
    let f = std::fs::File::open(fixture("chain-tagged.tar")).unwrap();
    svc.with_actor(actor("loader"))
        .load_image(f, true)
        .await
        .unwrap();
    svc.with_actor(actor("tagger"))
        .tag_image("dev/chain:1", "web", "v2")
        .await
        .unwrap();
    svc.with_actor(actor("deleter"))
        .image_delete("web:v2", false, true)
        .await
        .unwrap();
    (d, svc)
}

#[tokio::test]
async fn log_filters() {
    let (_d, svc) = history().await;
    let store = svc.store();
    let all = audit::query(store, &LogQuery::default()).unwrap();
    assert_eq!(all.len(), 7);
    let by_ref = audit::query(
        store,
        &LogQuery {
            reference: Some("web:v2".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let kinds: Vec<&str> = by_ref.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["reference-added", "reference-removed"]);
    assert_eq!(by_ref[1].actor, "alice(1000) via deleter");
    let by_actor = audit::query(
        store,
        &LogQuery {
            actor: Some("loader".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(by_actor.len(), 5);
    let by_kind_and_seq = audit::query(
        store,
        &LogQuery {
            kind: Some("layer-registered".into()),
            from_seq: Some(2),
            to_seq: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        by_kind_and_seq.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    let by_image = audit::query(
        store,
        &LogQuery {
            image: Some("17d9e0c0".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        by_image.len(),
        4,
        "created, tagged dev/chain:1, web:v2 added and removed"
    );
    let future = audit::query(
        store,
        &LogQuery {
            since: Some(audit::parse_time("2100-01-01T00:00:00Z").unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(future.is_empty());
}

#[tokio::test]
async fn blame_answers_who_removed_a_tag() {
    let (_d, svc) = history().await;
    let lines: Vec<String> = audit::blame(svc.store(), "web:v2")
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {}", r.seq, r.kind, r.actor))
        .collect();
    assert_eq!(
        lines,
        [
            "4 image-created alice(1000) via loader",
            "6 reference-added alice(1000) via tagger",
            "7 reference-removed alice(1000) via deleter"
        ],
        "the reference's events, and the creation of the image it named"
    );
    let by_id = audit::blame(svc.store(), "17d9e0c043f9").unwrap();
    assert_eq!(by_id.first().unwrap().kind, "image-created");
    assert_eq!(by_id.len(), 4);
    let err = audit::blame(svc.store(), "never:seen").unwrap_err();
    assert_eq!(err.message(), "no event ever touched never:seen");
}

#[tokio::test]
async fn replay_travels_back_in_time() {
    let (d, svc) = history().await;
    let past = d.path().join("past");
    let back = svc.store().replay_into(&past, 6).unwrap();
    let old = ImageService::new(back, None);
    let tags = old.images(Filters::new(), false, false).await.unwrap()[0]
        .repo_tags
        .clone()
        .unwrap();
    assert_eq!(
        tags,
        ["dev/chain:1", "web:v2"],
        "web:v2 still exists at seq 6"
    );
    assert_verified(&old);
    // The replayed log is the original prefix, byte for byte (same chain).
    assert_eq!(
        old.store().events(1, 6).unwrap(),
        svc.store().events(1, 6).unwrap()
    );
    // The replayed store works like any other.
    assert_eq!(
        old.image_delete("web:v2", false, true).await.unwrap(),
        [strata::DeleteItem::Untagged("web:v2".into())]
    );
    assert!(
        svc.store().replay_into(&past, 3).is_err(),
        "target must be empty"
    );
}

#[tokio::test]
async fn export_then_import_rebuilds_the_same_state() {
    let (d, svc) = history().await;
    let mut buf = Vec::new();
    assert_eq!(audit::export(svc.store(), &mut buf).unwrap(), 7);
    let (_d2, fresh) = service();
    let n = audit::import(fresh.store(), &buf[..], Some(d.path())).unwrap();
    assert_eq!(n, 7);
    assert_verified(&fresh);
    assert_eq!(
        fresh.images(Filters::new(), true, false).await.unwrap(),
        svc.images(Filters::new(), true, false).await.unwrap()
    );
    let a = audit::query(fresh.store(), &LogQuery::default()).unwrap();
    let b = audit::query(svc.store(), &LogQuery::default()).unwrap();
    assert_eq!(a, b, "times and actors are kept");
    // A second import into a non-empty store is refused; so is a bad line.
    assert!(audit::import(fresh.store(), &buf[..], None).is_err());
    let (_d3, other) = service();
    let err = audit::import(other.store(), &b"{\"seq\":1}\n"[..], None).unwrap_err();
    assert!(err.message().starts_with("line 1: "), "{err}");
    let err = audit::import(other.store(), &buf[..], None).unwrap_err();
    assert!(err.message().contains("is not in the store"), "{err}");
    assert_eq!(other.store().head().unwrap(), strata::LogHead::EMPTY);
}

#[tokio::test]
async fn read_only_open_follows_a_writer() {
    let (d, svc) = history().await;
    let reader = strata::Store::open_read_only(d.path()).unwrap();
    assert_eq!(reader.head().unwrap(), svc.store().head().unwrap());
    svc.tag_image("dev/chain:1", "later", "1").await.unwrap();
    assert_eq!(
        reader.head().unwrap().next_seq,
        9,
        "the reader sees new commits"
    );
    assert!(audit::verify(&reader).unwrap().is_ok());
    let err = reader.write(&Actor::default(), |_| Ok(())).unwrap_err();
    assert_eq!(err.message(), "the store is open read-only");
}

#[tokio::test]
async fn verify_finds_a_damaged_blob() {
    let (d, svc) = history().await;
    let blob = std::fs::read_dir(d.path().join("blobs/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let problem = audit::verify(svc.store()).unwrap().unwrap_err();
    assert!(
        problem.contains("is damaged: its content hashes to sha256:"),
        "{problem}"
    );
}
