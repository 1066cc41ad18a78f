mod common;
use common::builder::*;
use common::*;

#[tokio::test]
async fn built_archives_load_with_parents_and_tags() {
    let (_d, svc) = service();
    let b = base(vec![layer(&[("a", b"1")])], 1_600_000_000, &[], &["base:1"]);
    let c = child(&b, None, 1_600_000_100, &[("k", "v")], &[]);
    let d = child(
        &c,
        Some(layer(&[("b", b"22")])),
        1_600_000_200,
        &[],
        &["top:1"],
    );
    let report = load_imgs(&svc, &[&b, &c, &d]).await;
    assert_eq!(
        report.lines,
        ["Loaded image: base:1", "Loaded image: top:1"]
    );
    assert_eq!(svc.lookup_image("top:1").await.unwrap().parent, c.id());
    assert_eq!(svc.lookup_image(&c.id()).await.unwrap().parent, b.id());
    assert_verified(&svc);
}
