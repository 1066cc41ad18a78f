//! Black-box conformance of the image list (image-service.md §4.2), its
//! filters and their errors (delete-prune-filters.md §3.1–§3.3), `GetImage`
//! resolution and ID prefixes (references.md §5.2–§5.3), tagging errors
//! (references.md §6) and reference-store ordering (references.md §7.6).
//!
//! Digest references (pull-only in Docker) are added by emitting the
//! `ReferenceAdded` event `AddDigest` would, through the public `Store::write`.

mod common;
use common::builder::*;
use common::*;
use sha2::{Digest, Sha256};
use strata::{Actor, ErrorKind, EventBody, Filters, ImageService, ImageSummary, Reference};

const T0: i64 = 1_600_000_000;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn lay(name: &str, size: usize) -> Vec<u8> {
    layer(&[(name, &vec![b'x'; size][..])])
}

fn fake_digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn add_digest(svc: &ImageService, reference: &str, id: &str) {
    let r = Reference::parse_normalized_named(reference).unwrap();
    assert!(r.digest().is_some() && r.tag().is_none(), "{reference}");
    svc.store()
        .write(&Actor::default(), |w| {
            w.emit(EventBody::ReferenceAdded {
                reference: r.canonical_string(),
                image: id.to_string(),
                tag_time: false,
            })
        })
        .unwrap();
}

fn expect_err<T: std::fmt::Debug>(r: strata::Result<T>) -> (ErrorKind, String) {
    let e = r.expect_err("expected an error");
    (e.kind(), e.message().to_string())
}

fn filters(json: &str) -> Filters {
    Filters::from_json(json).unwrap()
}

async fn list(svc: &ImageService, json: &str, all: bool) -> Vec<ImageSummary> {
    match svc.images(filters(json), all, false).await {
        Ok(v) => v,
        Err(e) => panic!("images({json}, all={all}): {e}"),
    }
}

type Row = (String, Option<Vec<String>>, Option<Vec<String>>);

/// (name of the image, RepoTags, RepoDigests) in listed order, images named
/// through `names` (ID → name).
fn rows(listed: &[ImageSummary], names: &[(&str, String)]) -> Vec<Row> {
    listed
        .iter()
        .map(|s| {
            let name = names
                .iter()
                .find(|(_, id)| *id == s.id)
                .map(|(n, _)| n.to_string())
                .unwrap_or_else(|| s.id.clone());
            (name, s.repo_tags.clone(), s.repo_digests.clone())
        })
        .collect()
}

fn row(name: &str, tags: Option<&[&str]>, digests: Option<&[&str]>) -> Row {
    let v = |x: Option<&[&str]>| x.map(|l| l.iter().map(|s| s.to_string()).collect());
    (name.to_string(), v(tags), v(digests))
}

const NONE_T: Option<&[&str]> = Some(&["<none>:<none>"]);
const NONE_D: Option<&[&str]> = Some(&["<none>@<none>"]);

// ------------------------------------------------------------ §3.1 / §3.3

/// Every list filter error row, exact message and kind.
#[tokio::test]
async fn list_filter_errors() {
    let (_d, svc) = service();
    let img = base(vec![lay("e", 1)], T0, &[], &["e:1"]);
    load_imgs(&svc, &[&img]).await;
    let zeros = "0".repeat(64);
    let cases: Vec<(String, ErrorKind, String)> = vec![
        (
            r#"{"foo":["x"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'foo'".into(),
        ),
        (
            r#"{"label!":["x"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'label!'".into(),
        ),
        (
            r#"{"until":["1h"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'until'".into(),
        ),
        (
            r#"{"Dangling":["true"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'Dangling'".into(),
        ),
        (
            r#"{"dangling":["maybe"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[maybe]'".into(),
        ),
        (
            r#"{"dangling":["1"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[1]'".into(),
        ),
        (
            r#"{"dangling":["0"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[0]'".into(),
        ),
        (
            r#"{"dangling":["True"]}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[True]'".into(),
        ),
        (
            r#"{"dangling":{"true":false}}"#.into(),
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[true]'".into(),
        ),
        (
            r#"{"before":["nonexist"]}"#.into(),
            ErrorKind::NotFound,
            "No such image: nonexist:latest".into(),
        ),
        (
            r#"{"since":["e:2"]}"#.into(),
            ErrorKind::NotFound,
            "No such image: e:2".into(),
        ),
        (
            format!(r#"{{"since":["sha256:{zeros}"]}}"#),
            ErrorKind::NotFound,
            format!("No such image: sha256:{zeros}"),
        ),
        (
            r#"{"before":["Bad"]}"#.into(),
            ErrorKind::InvalidArgument,
            "invalid reference format: repository name must be lowercase".into(),
        ),
        (
            r#"{"since":["sha256:"]}"#.into(),
            ErrorKind::InvalidArgument,
            "invalid reference format".into(),
        ),
        (
            r#"{"reference":["["]}"#.into(),
            ErrorKind::Internal,
            "syntax error in pattern".into(),
        ),
        (
            r#"{"reference":["e*","[-]"]}"#.into(),
            ErrorKind::Internal,
            "syntax error in pattern".into(),
        ),
    ];
    for (json, kind, msg) in cases {
        for all in [false, true] {
            assert_eq!(
                expect_err(svc.images(filters(&json), all, false).await),
                (kind, msg.clone()),
                "{json} all={all}"
            );
        }
    }
    for (json, msg) in [
        (
            "notjson",
            "invalid character 'o' in literal null (expecting 'u')",
        ),
        (
            "invalid json",
            "invalid character 'i' looking for beginning of value",
        ),
    ] {
        assert_eq!(
            expect_err(Filters::from_json(json)),
            (ErrorKind::Internal, msg.to_string()),
            "{json}"
        );
    }
    // Legacy and current formats decode alike.
    assert_eq!(
        filters(r#"{"dangling":["true"]}"#),
        filters(r#"{"dangling":{"true":true}}"#)
    );
}

/// `syntax error in pattern` is raised only when a reference is tested.
#[tokio::test]
async fn bad_reference_pattern_needs_a_reference() {
    let (_d, svc) = service();
    assert_eq!(list(&svc, r#"{"reference":["["]}"#, true).await, vec![]);
    let untagged = base(vec![lay("u", 1)], T0, &[], &[]);
    load_imgs(&svc, &[&untagged]).await;
    assert_eq!(list(&svc, r#"{"reference":["["]}"#, true).await, vec![]);
    let tagged = base(vec![lay("t", 1)], T0 + 1, &[], &["t:1"]);
    load_imgs(&svc, &[&tagged]).await;
    assert_eq!(
        expect_err(
            svc.images(filters(r#"{"reference":["["]}"#), false, false)
                .await
        ),
        (ErrorKind::Internal, "syntax error in pattern".into())
    );
    // A label filter that excludes the tagged image first: nothing tested.
    assert_eq!(
        list(&svc, r#"{"reference":["["],"label":["nope"]}"#, false).await,
        vec![]
    );
}

// ------------------------------------------------------------ §4.2 listing

struct World {
    _dir: tempfile::TempDir,
    svc: ImageService,
    names: Vec<(&'static str, String)>,
}

impl World {
    fn id(&self, name: &str) -> String {
        let found = self.names.iter().find(|(n, _)| *n == name);
        found.map(|(_, id)| id.clone()).unwrap()
    }
}

/// base (tagged, labels a=1) ← mid (untagged intermediate) ← top (tagged
/// top:1, labels a=1,b=2); `dang` untagged childless (labels b=2);
/// `dig` digest-only; `both` tagged and digested; `nocfg` untagged without
/// a config. Creation times increase in that order.
async fn world() -> World {
    let (dir, svc) = service();
    let bl = lay("base", 5);
    let baseimg = base(vec![bl.clone()], T0, &[("a", "1")], &["base:1"]);
    let mid = child(&baseimg, Some(lay("mid", 3)), T0 + 10, &[("a", "1")], &[]);
    let top = child(&mid, None, T0 + 20, &[("a", "1"), ("b", "2")], &["top:1"]);
    let dang = base(vec![lay("dang", 2)], T0 + 30, &[("b", "2")], &[]);
    let dig = base(vec![lay("dig", 2)], T0 + 40, &[], &[]);
    let both = base(vec![lay("both", 2)], T0 + 50, &[("c", "")], &["both:1"]);
    let mut nocfg = base(vec![bl.clone()], T0 + 60, &[], &[]);
    nocfg.config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "created": "2020-09-13T12:27:40Z",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&bl)]},
    }))
    .unwrap();
    load_imgs(&svc, &[&baseimg, &mid, &top, &dang, &dig, &both, &nocfg]).await;
    add_digest(&svc, &format!("dig@{}", fake_digest('d')), &dig.id());
    add_digest(&svc, &format!("both@{}", fake_digest('b')), &both.id());
    let names = vec![
        ("base", baseimg.id()),
        ("mid", mid.id()),
        ("top", top.id()),
        ("dang", dang.id()),
        ("dig", dig.id()),
        ("both", both.id()),
        ("nocfg", nocfg.id()),
    ];
    World {
        _dir: dir,
        svc,
        names,
    }
}

/// dangling true/false, all vs intermediates, `<none>` placeholders, digest-only
/// rule, null lists, newest-first order.
#[tokio::test]
async fn dangling_and_all() {
    let w = world().await;
    let dig_d = format!("dig@{}", fake_digest('d'));
    let both_d = format!("both@{}", fake_digest('b'));
    let nocfg = row("nocfg", NONE_T, NONE_D);
    let both = row("both", Some(&["both:1"]), Some(&[both_d.as_str()]));
    let dig = row("dig", None, Some(&[dig_d.as_str()]));
    let dang = row("dang", NONE_T, NONE_D);
    let top = row("top", Some(&["top:1"]), None);
    let mid = row("mid", NONE_T, NONE_D);
    let base = row("base", Some(&["base:1"]), None);
    let cases: Vec<(&str, bool, Vec<Row>)> = vec![
        (
            "",
            false,
            vec![
                nocfg.clone(),
                both.clone(),
                dig.clone(),
                dang.clone(),
                top.clone(),
                base.clone(),
            ],
        ),
        (
            "",
            true,
            vec![
                nocfg.clone(),
                both.clone(),
                dig.clone(),
                dang.clone(),
                top.clone(),
                mid.clone(),
                base.clone(),
            ],
        ),
        (
            r#"{"dangling":["true"]}"#,
            false,
            vec![nocfg.clone(), dig.clone(), dang.clone()],
        ),
        (
            r#"{"dangling":["true"]}"#,
            true,
            vec![nocfg.clone(), dig.clone(), dang.clone()],
        ),
        // A `dangling` key without values counts as `true` (Go's vacuous
        // ExactMatch) [live].
        (
            r#"{"dangling":[]}"#,
            false,
            vec![nocfg.clone(), dig.clone(), dang.clone()],
        ),
        (
            r#"{"dangling":["true","false"]}"#,
            false,
            vec![nocfg.clone(), dig.clone(), dang.clone()],
        ),
        (
            r#"{"dangling":["false"]}"#,
            false,
            vec![both.clone(), dig.clone(), top.clone(), base.clone()],
        ),
        (
            r#"{"dangling":["false"]}"#,
            true,
            vec![both.clone(), dig.clone(), top.clone(), base.clone()],
        ),
        (
            r#"{"dangling":{"false":true,"x":false}}"#,
            false,
            vec![both.clone(), dig.clone(), top.clone(), base.clone()],
        ),
    ];
    for (json, all, want) in cases {
        assert_eq!(
            rows(&list(&w.svc, json, all).await, &w.names),
            want,
            "{json} all={all}"
        );
    }
}

/// One summary, as JSON: `RepoDigests` null for a tagged image without
/// digests, `-1` counters, `Created` in seconds, `Size` = sum of layers.
#[tokio::test]
async fn summary_json_shape() {
    let w = world().await;
    let listed = list(&w.svc, r#"{"reference":["top"]}"#, false).await;
    let (top, mid) = (&w.names[2].1, &w.names[1].1);
    assert_eq!(
        serde_json::to_value(&listed).unwrap(),
        serde_json::json!([{
            "Containers": -1,
            "Created": T0 + 20,
            "Id": top,
            "Labels": {"a": "1", "b": "2"},
            "ParentId": mid,
            "RepoDigests": null,
            "RepoTags": ["top:1"],
            "SharedSize": -1,
            "Size": 8,
            "VirtualSize": 8
        }])
    );
    let listed = list(&w.svc, r#"{"dangling":["true"]}"#, false).await;
    let nocfg = serde_json::to_value(&listed[0]).unwrap();
    assert_eq!(nocfg["Labels"], serde_json::Value::Null);
    assert_eq!(nocfg["ParentId"], "");
    assert_eq!(nocfg["RepoTags"], serde_json::json!(["<none>:<none>"]));
    assert_eq!(nocfg["RepoDigests"], serde_json::json!(["<none>@<none>"]));
}

#[tokio::test]
async fn label_filter() {
    let w = world().await;
    let cases: Vec<(&str, bool, Vec<&str>)> = vec![
        (r#"{"label":["a"]}"#, false, vec!["top", "base"]),
        (r#"{"label":["a"]}"#, true, vec!["top", "mid", "base"]),
        (r#"{"label":["a=1"]}"#, false, vec!["top", "base"]),
        (r#"{"label":["a=2"]}"#, false, vec![]),
        (r#"{"label":["b=2"]}"#, false, vec!["dang", "top"]),
        (r#"{"label":["a","b=2"]}"#, false, vec!["top"]),
        (r#"{"label":["c"]}"#, false, vec!["both"]),
        (r#"{"label":["c="]}"#, false, vec!["both"]),
        (r#"{"label":["c=x"]}"#, false, vec![]),
        (
            r#"{"label":["b"],"dangling":["true"]}"#,
            false,
            vec!["dang"],
        ),
        // No labels at all (dig) and no config (nocfg) never match.
        (r#"{"label":["zzz"]}"#, true, vec![]),
    ];
    for (json, all, want) in cases {
        let got: Vec<String> = rows(&list(&w.svc, json, all).await, &w.names)
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(got, want, "{json} all={all}");
    }
}

#[tokio::test]
async fn before_and_since() {
    let w = world().await;
    let top = w.names[2].1.clone();
    let cases: Vec<(String, bool, Vec<&str>)> = vec![
        (r#"{"before":["top:1"]}"#.into(), false, vec!["base"]),
        (r#"{"before":["top:1"]}"#.into(), true, vec!["mid", "base"]),
        (r#"{"since":["top:1"]}"#.into(), false, vec!["nocfg", "both", "dig", "dang"]),
        (format!(r#"{{"since":["{}"]}}"#, &top[7..19]), false, vec!["nocfg", "both", "dig", "dang"]),
        (format!(r#"{{"since":["{top}"]}}"#), false, vec!["nocfg", "both", "dig", "dang"]),
        (r#"{"since":["base:1"],"before":["dig@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"]}"#.into(), true, vec!["dang", "top", "mid"]),
        (r#"{"since":["top:1"],"before":["top:1"]}"#.into(), true, vec![]),
        (r#"{"before":["base:1"]}"#.into(), true, vec![]),
        (r#"{"since":["nocfg"]}"#.into(), true, vec![]),
    ];
    // `nocfg` is not a name: tag it so the last case resolves.
    w.svc
        .tag_image(&w.names[6].1, "nocfg", "latest")
        .await
        .unwrap();
    for (json, all, want) in cases {
        let got: Vec<String> = rows(&list(&w.svc, &json, all).await, &w.names)
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(got, want, "{json} all={all}");
    }
}

/// `reference` globs: `path.Match` on the familiar string, else the familiar
/// name; only matching references are listed; unmatched images are skipped.
#[tokio::test]
async fn reference_filter() {
    let (_d, svc) = service();
    let imgs = [
        ("bb", base(vec![lay("bb", 1)], T0, &[], &["busybox:latest"])),
        (
            "app",
            base(vec![lay("app", 1)], T0 + 1, &[], &["user/app:1"]),
        ),
        (
            "x",
            base(vec![lay("x", 1)], T0 + 2, &[], &["localhost:5000/x:2"]),
        ),
        (
            "imp",
            base(vec![lay("imp", 1)], T0 + 3, &[], &["imp:v1", "imp:v2"]),
        ),
        ("one", base(vec![lay("one", 1)], T0 + 4, &[], &["one:1"])),
        ("none", base(vec![lay("none", 1)], T0 + 5, &[], &[])),
    ];
    let refs: Vec<&Img> = imgs.iter().map(|(_, i)| i).collect();
    load_imgs(&svc, &refs).await;
    let dg = format!("imp@{}", fake_digest('f'));
    add_digest(&svc, &dg, &imgs[3].1.id());
    let names: Vec<(&str, String)> = imgs.iter().map(|(n, i)| (*n, i.id())).collect();
    let dgs = [dg.as_str()];
    let cases: Vec<(&str, Vec<Row>)> = vec![
        ("busybox", vec![row("bb", Some(&["busybox:latest"]), None)]),
        ("busy*", vec![row("bb", Some(&["busybox:latest"]), None)]),
        (
            "busybox:latest",
            vec![row("bb", Some(&["busybox:latest"]), None)],
        ),
        (
            "busybox:*",
            vec![row("bb", Some(&["busybox:latest"]), None)],
        ),
        ("[a-c]*", vec![row("bb", Some(&["busybox:latest"]), None)]),
        ("docker.io/library/busybox", vec![]),
        ("docker.io/library/imp:v1", vec![]),
        ("*:1", vec![row("one", Some(&["one:1"]), None)]),
        (
            "*",
            vec![
                row("one", Some(&["one:1"]), None),
                row("imp", Some(&["imp:v1", "imp:v2"]), Some(&dgs)),
                row("bb", Some(&["busybox:latest"]), None),
            ],
        ),
        (
            "*/*",
            vec![
                row("x", Some(&["localhost:5000/x:2"]), None),
                row("app", Some(&["user/app:1"]), None),
            ],
        ),
        ("user/app", vec![row("app", Some(&["user/app:1"]), None)]),
        ("us?r/*", vec![row("app", Some(&["user/app:1"]), None)]),
        (
            "localhost:5000/*",
            vec![row("x", Some(&["localhost:5000/x:2"]), None)],
        ),
        (
            "imp",
            vec![row("imp", Some(&["imp:v1", "imp:v2"]), Some(&dgs))],
        ),
        ("imp:v1", vec![row("imp", Some(&["imp:v1"]), None)]),
        (
            "imp:v?",
            vec![row("imp", Some(&["imp:v1", "imp:v2"]), None)],
        ),
        ("imp@*", vec![row("imp", None, Some(&dgs))]),
        ("nomatch", vec![]),
    ];
    for (pattern, want) in cases {
        let mut f = Filters::new();
        f.add("reference", pattern);
        let got = svc.images(f, true, false).await.unwrap();
        assert_eq!(rows(&got, &names), want, "reference={pattern}");
    }
    // Several patterns: a reference is kept if any matches.
    let got = list(&svc, r#"{"reference":["one","user/*"]}"#, false).await;
    assert_eq!(
        rows(&got, &names),
        vec![
            row("one", Some(&["one:1"]), None),
            row("app", Some(&["user/app:1"]), None)
        ]
    );
}

/// Newest first by `Created` seconds, across many images.
#[tokio::test]
async fn sorted_newest_first() {
    let (_d, svc) = service();
    let times = [T0 + 7, T0 - 100, T0 + 3, 4_000_000_000, T0, 1];
    let imgs: Vec<Img> = times
        .iter()
        .enumerate()
        .map(|(i, t)| base(vec![lay(&format!("s{i}"), 1)], *t, &[], &[]))
        .collect();
    let refs: Vec<&Img> = imgs.iter().collect();
    load_imgs(&svc, &refs).await;
    let got: Vec<i64> = list(&svc, "", false)
        .await
        .iter()
        .map(|s| s.created)
        .collect();
    let mut want = times.to_vec();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, want);
}

// ------------------------------------------------------------ references.md

/// §5.2–§5.3: `GetImage` resolution order and messages.
#[tokio::test]
async fn get_image_resolution() {
    let (_d, svc) = service();
    let x = base(vec![lay("gx", 1)], T0, &[], &["x:1"]);
    // Find an image y whose ID's first hex char differs from x's.
    let y = (0..40)
        .map(|i| base(vec![lay("gy", 1)], T0 + 1 + i, &[], &[]))
        .find(|y| y.id()[7..8] != x.id()[7..8])
        .unwrap();
    load_imgs(&svc, &[&x, &y]).await;
    let (xid, yid) = (x.id(), y.id());
    let yp = &yid[7..13];
    // A tag equal to y's ID prefix, on x: the tag wins.
    svc.tag_image("x:1", yp, "latest").await.unwrap();
    let dg = fake_digest('9');
    add_digest(&svc, &format!("r@{dg}"), &yid);
    let zeros = "0".repeat(64);
    let ok: Vec<(String, &String)> = vec![
        ("x:1".into(), &xid),
        ("docker.io/library/x:1".into(), &xid),
        (yp.into(), &xid),
        (format!("{yp}:latest"), &xid),
        (yid[7..14].into(), &yid),
        (yid[7..8].into(), &yid),
        (format!("sha256:{}", &yid[7..9]), &yid),
        (yid.clone(), &yid),
        (yid[7..].into(), &yid),
        (format!("r@{dg}"), &yid),
        (format!("r:whatever@{dg}"), &yid),
        (format!("docker.io/library/r@{dg}"), &yid),
    ];
    for (input, want) in ok {
        assert_eq!(&svc.get_image(&input).await.unwrap(), want, "{input}");
    }
    let upper = yid[7..].to_uppercase();
    let err: Vec<(String, ErrorKind, String)> = vec![
        (
            "nonexist".into(),
            ErrorKind::NotFound,
            "No such image: nonexist:latest".into(),
        ),
        (
            "x:2".into(),
            ErrorKind::NotFound,
            "No such image: x:2".into(),
        ),
        (
            "aaaaaaaaaaaa".into(),
            ErrorKind::NotFound,
            "No such image: aaaaaaaaaaaa:latest".into(),
        ),
        (
            format!("sha256:{zeros}"),
            ErrorKind::NotFound,
            format!("No such image: sha256:{zeros}"),
        ),
        (
            zeros.clone(),
            ErrorKind::NotFound,
            format!("No such image: sha256:{zeros}"),
        ),
        (
            format!("sha384:{zeros}"),
            ErrorKind::NotFound,
            format!("No such image: sha384:{zeros}"),
        ),
        (
            format!("sha256:{}", &upper[..4]),
            ErrorKind::NotFound,
            format!("No such image: sha256:{}", &upper[..4]),
        ),
        (
            format!("r:2@{}", fake_digest('8')),
            ErrorKind::NotFound,
            format!("No such image: r:2@{}", fake_digest('8')),
        ),
        (
            format!("127.0.0.1:5733/t/img:2@{}", fake_digest('8')),
            ErrorKind::NotFound,
            format!("No such image: 127.0.0.1:5733/t/img:2@{}", fake_digest('8')),
        ),
        (
            upper.clone(),
            ErrorKind::InvalidArgument,
            "invalid reference format: repository name must be lowercase".into(),
        ),
        (
            "6A".into(),
            ErrorKind::InvalidArgument,
            "invalid reference format: repository name must be lowercase".into(),
        ),
        (
            "sha256:".into(),
            ErrorKind::InvalidArgument,
            "invalid reference format".into(),
        ),
        (
            format!("x@md5:{}", "a".repeat(32)),
            ErrorKind::InvalidArgument,
            "unsupported digest algorithm".into(),
        ),
    ];
    for (input, kind, msg) in err {
        assert_eq!(
            expect_err(svc.get_image(&input).await),
            (kind, msg),
            "{input}"
        );
    }
    // Inspect wraps the message and keeps the kind (image-service.md §4.1).
    assert_eq!(
        expect_err(svc.lookup_image("nonexist").await),
        (
            ErrorKind::NotFound,
            "no such image: nonexist: No such image: nonexist:latest".into()
        )
    );
    assert_eq!(
        expect_err(svc.lookup_image("6A").await),
        (
            ErrorKind::InvalidArgument,
            "no such image: 6A: invalid reference format: repository name must be lowercase".into()
        )
    );
}

/// An ambiguous prefix is "not found", by bare hex and by `sha256:` prefix.
#[tokio::test]
async fn ambiguous_prefix_is_not_found() {
    let (_d, svc) = service();
    let mut seen: Vec<Img> = Vec::new();
    let pair = (0..40)
        .find_map(|i| {
            let img = base(vec![lay("amb", 1)], T0 + i, &[], &[]);
            if let Some(o) = seen.iter().find(|o| o.id()[7..8] == img.id()[7..8]) {
                return Some((o.clone(), img));
            }
            seen.push(img);
            None
        })
        .unwrap();
    load_imgs(&svc, &[&pair.0, &pair.1]).await;
    let p = &pair.0.id()[7..8];
    assert_eq!(
        expect_err(svc.get_image(p).await),
        (ErrorKind::NotFound, format!("No such image: {p}:latest"))
    );
    assert_eq!(
        expect_err(svc.get_image(&format!("sha256:{p}")).await),
        (ErrorKind::NotFound, format!("No such image: sha256:{p}"))
    );
}

/// §6: tag endpoint errors (kinds = Docker's statuses) and results.
#[tokio::test]
async fn tag_errors_and_results() {
    let (_d, svc) = service();
    let x = base(vec![lay("tx", 1)], T0, &[], &["x:1"]);
    let y = base(vec![lay("ty", 1)], T0 + 1, &[], &["y:1"]);
    load_imgs(&svc, &[&x, &y]).await;
    let hex64 = "a".repeat(64);
    let errs: Vec<(&str, String, String, ErrorKind, String)> = vec![
        (
            "uppercase",
            "Foo".into(),
            "".into(),
            ErrorKind::Internal,
            "invalid reference format: repository name must be lowercase".into(),
        ),
        (
            "bad tag",
            "foo".into(),
            "-bad".into(),
            ErrorKind::Internal,
            "invalid tag format".into(),
        ),
        (
            "empty repo",
            "".into(),
            "".into(),
            ErrorKind::Internal,
            "invalid reference format".into(),
        ),
        (
            "64 hex",
            hex64.clone(),
            "".into(),
            ErrorKind::Internal,
            format!(
                "invalid repository name ({hex64}), cannot specify 64-byte hexadecimal strings"
            ),
        ),
        (
            "long",
            "a".repeat(238),
            "".into(),
            ErrorKind::Internal,
            "repository name must not be more than 255 characters".into(),
        ),
        (
            "long tag",
            format!("x:{}", "t".repeat(129)),
            "".into(),
            ErrorKind::Internal,
            "invalid reference format".into(),
        ),
        (
            "sha256 name",
            "sha256".into(),
            "abc".into(),
            ErrorKind::InvalidArgument,
            "refusing to create an ambiguous tag using digest algorithm as name".into(),
        ),
        (
            "sha256:hex",
            format!("sha256:{hex64}"),
            "".into(),
            ErrorKind::InvalidArgument,
            "refusing to create an ambiguous tag using digest algorithm as name".into(),
        ),
        (
            "digest",
            format!("foo@sha256:{hex64}"),
            "".into(),
            ErrorKind::InvalidArgument,
            "refusing to create a tag with a digest reference".into(),
        ),
        (
            "digest as tag",
            "foo:bar".into(),
            format!("sha256:{hex64}"),
            ErrorKind::Internal,
            "invalid tag format".into(),
        ),
    ];
    for (what, repo, tag, kind, msg) in errs {
        assert_eq!(
            expect_err(svc.tag_image("x:1", &repo, &tag).await),
            (kind, msg),
            "{what}"
        );
    }
    assert_eq!(
        expect_err(svc.tag_image("nonexist", "foo", "1").await),
        (ErrorKind::NotFound, "No such image: nonexist:latest".into())
    );
    let oks = [
        ("docker.io/library/foo", "bar", "foo:bar"),
        ("index.docker.io/foo", "x", "foo:x"),
        ("foo:bar", "baz", "foo:baz"),
        ("foo", "", "foo:latest"),
    ];
    for (repo, tag, want) in oks {
        assert_eq!(
            svc.tag_image("x:1", repo, tag).await.unwrap(),
            want,
            "{repo} {tag}"
        );
    }
    let ins = svc.lookup_image("x:1").await.unwrap();
    assert_eq!(
        ins.repo_tags,
        ["foo:bar", "foo:baz", "foo:latest", "foo:x", "x:1"]
    );
    // An existing tag is moved.
    svc.tag_image("y:1", "foo", "bar").await.unwrap();
    assert_eq!(svc.get_image("foo:bar").await.unwrap(), y.id());
    assert_eq!(
        svc.lookup_image("x:1").await.unwrap().repo_tags,
        ["foo:baz", "foo:latest", "foo:x", "x:1"]
    );
    assert_verified(&svc);
}

/// §7.6: references sorted by canonical string (observed dockerd list).
#[tokio::test]
async fn reference_order_is_canonical() {
    let (_d, svc) = service();
    let img = base(vec![lay("o", 1)], T0, &[], &[]);
    load_imgs(&svc, &[&img]).await;
    let observed = [
        "Docker.io/x:latest",
        "FOO.com/bar:latest",
        "HOSTNAME.DOMAIN.COM:443/foo/bar:latest",
        "a-----b:latest",
        "a__b:latest",
        "library/foo/bar:latest",
        "foo2:latest",
        "foo:latest",
        "imp:v1",
        "zz:latest",
        "localhost/foo:latest",
        "localhost:5000/x:latest",
    ];
    // Tag in reverse (and scrambled) order.
    for r in observed
        .iter()
        .rev()
        .step_by(2)
        .chain(observed.iter().step_by(2))
    {
        let (repo, tag) = r.rsplit_once(':').unwrap();
        svc.tag_image(&img.id(), repo, tag).await.unwrap();
    }
    assert_eq!(
        svc.lookup_image(&img.id()).await.unwrap().repo_tags,
        observed
    );
    let listed = list(&svc, "", false).await;
    assert_eq!(listed[0].repo_tags.as_deref().unwrap(), observed);
    let hist = svc.image_history(&img.id()).await.unwrap();
    let v = serde_json::to_value(&hist[0]).unwrap();
    assert_eq!(v["Tags"], serde_json::json!(observed));
}

/// `withExtraAttrs` (system df): `Containers` counts containers of any state,
/// `SharedSize` sums the layers used by more than one listed image.
#[tokio::test]
async fn extra_attrs_containers_and_shared_size() {
    let (_d, svc) = service();
    let shared = lay("sh", 4);
    let a = base(vec![shared.clone()], T0, &[], &["a:1"]);
    let b = base(vec![shared.clone()], T0 + 1, &[], &["b:1"]);
    let c = base(vec![lay("own", 7)], T0 + 2, &[], &["c:1"]);
    let kid = child(&c, Some(lay("kid", 1)), T0 + 3, &[], &["kid:1"]);
    load_imgs(&svc, &[&a, &b, &c, &kid]).await;
    svc.create_container("a:1", None).await.unwrap();
    svc.create_container("a:1", None).await.unwrap();
    svc.create_container("kid:1", None).await.unwrap();
    let got: Vec<(String, i64, i64, i64)> = svc
        .images(Filters::new(), false, true)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.containers, s.shared_size, s.size))
        .collect();
    assert_eq!(
        got,
        vec![
            (kid.id(), 1, 7, 8),
            (c.id(), 0, 7, 7),
            (b.id(), 0, 4, 4),
            (a.id(), 2, 4, 4),
        ]
    );
    // Without extra attributes both stay -1.
    let plain = svc.images(Filters::new(), false, false).await.unwrap();
    assert!(
        plain
            .iter()
            .all(|s| s.containers == -1 && s.shared_size == -1)
    );
}

/// `TagImageWithReference`: by ID, with a parsed reference; a digest
/// reference is refused (`AddTag`), as is `sha256` as a name.
#[tokio::test]
async fn tag_image_with_reference() {
    let (_d, svc) = service();
    let x = base(vec![lay("twr", 1)], T0, &[], &[]);
    load_imgs(&svc, &[&x]).await;
    let r = |s: &str| Reference::parse_normalized_named(s).unwrap();
    svc.tag_image_with_reference(&x.id(), &r("twr"))
        .await
        .unwrap();
    svc.tag_image_with_reference(&x.id(), &r("docker.io/library/twr:2"))
        .await
        .unwrap();
    assert_eq!(
        svc.lookup_image(&x.id()).await.unwrap().repo_tags,
        ["twr:2", "twr:latest"]
    );
    assert_eq!(
        expect_err(
            svc.tag_image_with_reference(&x.id(), &r(&format!("twr@{}", fake_digest('a'))))
                .await
        ),
        (
            ErrorKind::InvalidArgument,
            "refusing to create a tag with a digest reference".into()
        )
    );
    assert_eq!(
        expect_err(svc.tag_image_with_reference(&x.id(), &r("sha256:x")).await),
        (
            ErrorKind::InvalidArgument,
            "refusing to create an ambiguous tag using digest algorithm as name".into()
        )
    );
    let zeros = format!("sha256:{}", "0".repeat(64));
    assert_eq!(
        expect_err(svc.tag_image_with_reference(&zeros, &r("twr:3")).await),
        (ErrorKind::NotFound, format!("No such image: {zeros}"))
    );
    assert_verified(&svc);
}

/// The listing is cached per version of the tables (ImageService keeps the
/// join of images, references and parents until the next write): every kind
/// of change shows in the next listing, through the same service, through a
/// read-only handle on the same store while another handle writes, and after
/// the tables are rebuilt from the log.
#[tokio::test]
async fn listing_follows_every_write() {
    let w = world().await;
    let svc = &w.svc;
    let tags = |l: &[ImageSummary]| -> Vec<String> {
        let mut t: Vec<String> = l
            .iter()
            .flat_map(|s| s.repo_tags.clone().unwrap_or_default())
            .collect();
        t.sort();
        t
    };
    let before = list(svc, "", false).await;
    let reader = ImageService::new(
        strata::Store::open_read_only(svc.store().root()).unwrap(),
        None,
    );
    assert_eq!(list(&reader, "", false).await, before);

    svc.tag_image("base:1", "extra", "1").await.unwrap();
    for s in [svc, &reader] {
        assert!(tags(&list(s, "", false).await).contains(&"extra:1".to_string()));
    }
    svc.image_delete("extra:1", false, false).await.unwrap();
    for s in [svc, &reader] {
        assert_eq!(list(s, "", false).await, before);
    }
    let top = w.id("top");
    svc.image_delete(&top, true, false).await.unwrap();
    for s in [svc, &reader] {
        let l = list(s, "", false).await;
        assert!(l.iter().all(|i| i.id != top), "{top} still listed");
        assert!(!tags(&l).contains(&"top:1".to_string()));
        // mid lost its only child: it is dangling now.
        let d = list(s, r#"{"dangling":{"true":true}}"#, false).await;
        assert!(d.iter().any(|i| i.id == w.id("mid")));
    }
    let after = list(svc, "", false).await;
    svc.store().rebuild_tables().unwrap();
    assert_eq!(list(svc, "", false).await, after);
}
