//! Garbage collection: what it removes, what leases protect, and that it
//! never races an in-flight load.

mod common;
use common::builder::*;
use common::*;
use std::io::Write;

#[tokio::test]
async fn deleted_images_blobs_are_collected_once() {
    let (d, svc) = service();
    load(&svc, "imported.tar").await;
    load(&svc, "chain-tagged.tar").await;
    // Blobs committed in this process are leased for an hour: nothing goes yet.
    svc.image_delete("dev/imported:1", false, true)
        .await
        .unwrap();
    let report = svc.gc(false).await.unwrap();
    assert_eq!(report.blobs, Vec::<String>::new(), "fresh blobs are leased");
    // A new process (no leases) collects the imported image's layer.
    drop(svc);
    let svc = strata::ImageService::open(d.path()).unwrap();
    let dry = svc.gc(true).await.unwrap();
    assert_eq!(dry.unreferenced.count, 1);
    assert_eq!(dry.unreferenced.bytes, 10240);
    assert!(dry.dry_run);
    let head = svc.store().head().unwrap();
    let report = svc.gc(false).await.unwrap();
    assert_eq!(report.blobs, dry.blobs);
    assert_eq!(report.total_bytes(), 10240);
    assert_eq!(
        svc.store().head().unwrap().next_seq,
        head.next_seq + 1,
        "gc is one event"
    );
    let last = svc.store().events(head.next_seq, head.next_seq).unwrap();
    assert_eq!(last[0].body.kind(), "blobs-collected");
    assert_eq!(svc.gc(false).await.unwrap().total_bytes(), 0);
    assert_verified(&svc);
    // What is still referenced survives.
    let out = d.path().join("x.tar");
    svc.export_image(
        vec!["dev/chain:1".into()],
        std::fs::File::create(&out).unwrap(),
    )
    .await
    .unwrap();
    assert!(std::fs::read(&out).unwrap() == read_fixture("chain-tagged.tar"));
}

#[tokio::test]
async fn orphan_ingest_files_and_expired_leases_go() {
    let (d, svc) = service();
    let mut f = std::fs::File::create(d.path().join("ingest/ingest-crashed")).unwrap();
    f.write_all(b"half a layer").unwrap();
    let content = svc.store().content();
    let mut w = content.ingest().unwrap();
    w.write_all(b"in flight").unwrap();
    // A committed blob with an explicit lease that has already expired.
    let lease = content.lease();
    let mut w2 = content.ingest().unwrap();
    w2.write_all(b"old download").unwrap();
    let (old, _) = w2.commit().unwrap();
    lease.protect(&old);
    lease.expire_after(std::time::Duration::ZERO);
    let report = svc.gc(false).await.unwrap();
    assert_eq!(
        report.orphan_ingest,
        strata::gc::Tally {
            count: 1,
            bytes: 12
        }
    );
    assert_eq!(
        report.unreferenced.count, 0,
        "the ingest's own lease still holds {old}"
    );
    drop(w);
    assert!(!d.path().join("ingest/ingest-crashed").exists());
    assert_eq!(
        std::fs::read_dir(d.path().join("ingest")).unwrap().count(),
        0
    );
}

#[test]
fn gc_never_eats_a_blob_an_in_flight_load_needs() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_d, svc) = service();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gc = {
            let (svc, stop) = (svc.clone(), stop.clone());
            tokio::spawn(async move {
                let mut runs = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    svc.gc(false).await.unwrap();
                    runs += 1;
                }
                runs
            })
        };
        for i in 0..40u32 {
            let img = base(
                vec![layer(&[("f", format!("{i}").as_bytes())])],
                1_600_000_000 + i as i64,
                &[],
                &[&format!("race:{i}")],
            );
            load_imgs(&svc, &[&img]).await;
            // Half of them go away again, so gc has real work.
            if i % 2 == 0 {
                svc.image_delete(&format!("race:{i}"), false, true)
                    .await
                    .unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(gc.await.unwrap() > 0);
        assert_verified(&svc);
        assert_eq!(
            svc.images(strata::Filters::new(), false, false)
                .await
                .unwrap()
                .len(),
            20
        );
    });
}
