//! The audit log: tamper detection and replay equality.

mod common;
use common::*;

async fn loaded() -> (tempfile::TempDir, strata::ImageService, u64) {
    let (d, svc) = service();
    load(&svc, "chain-all.tar").await;
    svc.tag_image("dev/chain:1", "x", "1").await.unwrap();
    svc.image_delete("x:1", false, true).await.unwrap();
    let n = strata::audit::verify(svc.store()).unwrap().unwrap();
    (d, svc, n)
}

#[tokio::test]
async fn every_operation_leaves_a_verified_log() {
    let (_d, svc, n) = loaded().await;
    // 6 layers? No: chain-all has 3 distinct layers, 6 images, 1 tag, then tag + untag.
    assert_eq!(n, 3 + 6 + 1 + 2);
    let events = svc.store().events(1, n).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.body.kind()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "layer-registered").count(),
        3
    );
    assert_eq!(kinds.iter().filter(|k| **k == "image-created").count(), 6);
    assert_eq!(
        kinds[n as usize - 2..],
        ["reference-added", "reference-removed"]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
}

#[tokio::test]
async fn flipping_a_byte_of_any_event_names_that_event() {
    let (_d, svc, n) = loaded().await;
    for seq in [1, n / 2, n] {
        let len = svc.store().events(seq, seq).unwrap().len();
        assert_eq!(len, 1);
        let mut size = 0;
        svc.store()
            .tamper_with_event(seq, |b| size = b.len())
            .unwrap();
        for offset in (0..size).step_by(3) {
            let store = svc.store();
            let mut original = Vec::new();
            store
                .tamper_with_event(seq, |b| {
                    original = b.clone();
                    b[offset] ^= 0x01;
                })
                .unwrap();
            let problem = strata::audit::verify(store).unwrap().unwrap_err();
            assert!(
                problem.starts_with(&format!("event {seq}:")),
                "tampering with event {seq} at {offset}: {problem}"
            );
            store
                .tamper_with_event(seq, |b| *b = original.clone())
                .unwrap();
            assert!(strata::audit::verify(store).unwrap().is_ok());
        }
    }
}

#[tokio::test]
async fn the_log_survives_reopening() {
    let (d, svc, n) = loaded().await;
    let before = svc
        .images(strata::Filters::new(), true, false)
        .await
        .unwrap();
    drop(svc);
    let svc = strata::ImageService::open(d.path()).unwrap();
    assert_eq!(
        svc.images(strata::Filters::new(), true, false)
            .await
            .unwrap(),
        before
    );
    assert_eq!(strata::audit::verify(svc.store()).unwrap(), Ok(n));
}

#[tokio::test]
async fn a_second_process_gets_a_clear_error() {
    let (d, _svc, _) = loaded().await;
    let err = strata::ImageService::open(d.path()).unwrap_err();
    assert_eq!(err.kind(), strata::ErrorKind::Unavailable);
    assert!(
        err.message().contains("is in use by another process"),
        "{err}"
    );
}
