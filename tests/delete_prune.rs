//! Black-box conformance of `ImageDelete` and `ImagesPrune` against
//! delete-prune-filters.md §2 and §4 (and references.md §5.4): every conflict
//! kind, `isSingleReference`, both delete branches, parent pruning, the
//! worked examples D1–D9 and P1–P7 on synthetic images, and every prune
//! filter error.
//!
//! Digest references (which only pull/push create in Docker) are added by
//! emitting the same `ReferenceAdded` event `AddDigest` would, through the
//! public `Store::write`.

mod common;
use common::builder::*;
use common::*;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use strata::{
    Actor, ContainerStore, ContainerUse, DeleteItem, ErrorKind, EventBody, Filters, ImageService,
    Reference, Store,
};

const T0: i64 = 1_600_000_000;

// ---------------------------------------------------------------- helpers

/// A runtime's container records (running or stopped) for the conflict rules.
#[derive(Default)]
struct Runtime(Mutex<Vec<(String, ContainerUse)>>);

impl ContainerStore for Runtime {
    fn containers_using(&self, image_id: &str) -> Vec<ContainerUse> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(img, _)| img == image_id)
            .map(|(_, c)| c.clone())
            .collect()
    }
}

impl Runtime {
    fn add(&self, image: &str, cid12: &str, running: bool) -> String {
        let id = format!("{cid12:0<64}");
        self.0.lock().unwrap().push((
            image.to_string(),
            ContainerUse {
                id: id.clone(),
                running,
            },
        ));
        id
    }
}

fn service_rt() -> (tempfile::TempDir, ImageService, Arc<Runtime>) {
    let dir = tempfile::tempdir().unwrap();
    let rt = Arc::new(Runtime::default());
    let svc = ImageService::new(
        Store::open(dir.path()).unwrap(),
        Some(rt.clone() as Arc<dyn ContainerStore>),
    );
    (dir, svc, rt)
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layer with one file `name` of `size` bytes (unique per name).
fn lay(name: &str, size: usize) -> Vec<u8> {
    layer(&[(name, &vec![b'x'; size][..])])
}

/// ChainIDs of `layers`, bottom first.
fn chains(layers: &[Vec<u8>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in layers {
        let diff = sha(l);
        let c = match out.last() {
            None => diff,
            Some(p) => sha(format!("{p} {diff}").as_bytes()),
        };
        out.push(c);
    }
    out
}

fn u(s: &str) -> DeleteItem {
    DeleteItem::Untagged(s.to_string())
}
fn d(s: &str) -> DeleteItem {
    DeleteItem::Deleted(s.to_string())
}

fn fake_digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// Add a digest reference (what pull's `AddDigest` does).
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

async fn del(svc: &ImageService, name: &str, force: bool, prune: bool) -> Vec<DeleteItem> {
    match svc.image_delete(name, force, prune).await {
        Ok(v) => v,
        Err(e) => panic!("delete {name} force={force} prune={prune}: {e}"),
    }
}

async fn del_err(svc: &ImageService, name: &str, force: bool) -> (ErrorKind, String) {
    expect_err(svc.image_delete(name, force, true).await)
}

async fn exists(svc: &ImageService, id: &str) -> bool {
    svc.get_image(id).await.is_ok()
}

async fn tags_of(svc: &ImageService, id: &str) -> Vec<String> {
    svc.lookup_image(id).await.unwrap().repo_tags
}

fn diff_size(svc: &ImageService, chain: &str) -> u64 {
    svc.store()
        .read(|t| t.layer(chain))
        .unwrap()
        .unwrap_or_else(|| panic!("no layer {chain}"))
        .diff_size
}

fn layer_exists(svc: &ImageService, chain: &str) -> bool {
    svc.store().read(|t| t.layer(chain)).unwrap().is_some()
}

fn conflict_hard(id: &str, tail: &str) -> (ErrorKind, String) {
    (
        ErrorKind::Conflict,
        format!(
            "conflict: unable to delete {} (cannot be forced) - {tail}",
            &id[7..19]
        ),
    )
}
fn conflict_soft(id: &str, tail: &str) -> (ErrorKind, String) {
    (
        ErrorKind::Conflict,
        format!(
            "conflict: unable to delete {} (must be forced) - {tail}",
            &id[7..19]
        ),
    )
}
fn conflict_ref(name: &str, cid: &str, id: &str) -> (ErrorKind, String) {
    (
        ErrorKind::Conflict,
        format!(
            "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
            &cid[..12],
            &id[7..19]
        ),
    )
}

/// Records made of groups emitted in unspecified order (prune): `got` must be
/// a concatenation of all `groups` in some order.
fn assert_groups(got: &[DeleteItem], groups: &[Vec<DeleteItem>]) {
    fn rec(got: &[DeleteItem], groups: &[Vec<DeleteItem>], used: &mut Vec<bool>) -> bool {
        if got.is_empty() {
            return used.iter().all(|u| *u);
        }
        for i in 0..groups.len() {
            if !used[i] && got.starts_with(&groups[i]) {
                used[i] = true;
                if rec(&got[groups[i].len()..], groups, used) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    let mut used = vec![false; groups.len()];
    assert!(
        rec(got, groups, &mut used),
        "records {got:#?}\nare not a permutation of the groups {groups:#?}"
    );
}

fn filters(json: &str) -> Filters {
    Filters::from_json(json).unwrap()
}

// ---------------------------------------------------------- §2.7 errors

#[tokio::test]
async fn delete_lookup_errors() {
    let (_d, svc) = service();
    let a = base(vec![lay("a", 1)], T0, &[], &["a:1"]);
    load_imgs(&svc, &[&a]).await;
    let zeros = "0".repeat(64);
    let cases: Vec<(&str, String, ErrorKind, String)> = vec![
        (
            "blank",
            "".into(),
            ErrorKind::InvalidArgument,
            "image name cannot be blank".into(),
        ),
        (
            "spaces",
            "   ".into(),
            ErrorKind::InvalidArgument,
            "image name cannot be blank".into(),
        ),
        (
            "unknown name",
            "nonexist".into(),
            ErrorKind::NotFound,
            "No such image: nonexist:latest".into(),
        ),
        (
            "unknown tag",
            "a:2".into(),
            ErrorKind::NotFound,
            "No such image: a:2".into(),
        ),
        (
            "unknown full id",
            format!("sha256:{zeros}"),
            ErrorKind::NotFound,
            format!("No such image: sha256:{zeros}"),
        ),
        (
            "unknown bare id",
            zeros.clone(),
            ErrorKind::NotFound,
            format!("No such image: sha256:{zeros}"),
        ),
        (
            "no prefix match",
            "aaaaaaaaaaaa".into(),
            ErrorKind::NotFound,
            "No such image: aaaaaaaaaaaa:latest".into(),
        ),
        (
            "uppercase",
            "Bad".into(),
            ErrorKind::InvalidArgument,
            "invalid reference format: repository name must be lowercase".into(),
        ),
        (
            "md5",
            format!("x@md5:{}", "a".repeat(32)),
            ErrorKind::InvalidArgument,
            "unsupported digest algorithm".into(),
        ),
        (
            "sha256 colon",
            "sha256:".into(),
            ErrorKind::InvalidArgument,
            "invalid reference format".into(),
        ),
    ];
    for (what, input, kind, msg) in cases {
        assert_eq!(
            del_err(&svc, &input, false).await,
            (kind, msg.clone()),
            "{what}"
        );
        assert_eq!(
            del_err(&svc, &input, true).await,
            (kind, msg),
            "{what} (force)"
        );
    }
    assert!(exists(&svc, "a:1").await);
    assert_verified(&svc);
}

#[tokio::test]
async fn delete_ambiguous_prefix_is_not_found() {
    let (_d, svc) = service();
    // Find two images whose IDs share the first hex character.
    let mut imgs = Vec::new();
    for i in 0..40 {
        let img = base(vec![lay("amb", 1)], T0 + i, &[], &[]);
        if let Some(other) = imgs.iter().find(|o: &&Img| o.id()[7..8] == img.id()[7..8]) {
            let other = other.clone();
            imgs = vec![other, img];
            break;
        }
        imgs.push(img);
    }
    assert_eq!(imgs.len(), 2);
    load_imgs(&svc, &[&imgs[0], &imgs[1]]).await;
    let p = &imgs[0].id()[7..8];
    assert_eq!(
        del_err(&svc, p, false).await,
        (ErrorKind::NotFound, format!("No such image: {p}:latest"))
    );
    assert_eq!(
        del_err(&svc, &format!("sha256:{p}"), false).await,
        (ErrorKind::NotFound, format!("No such image: sha256:{p}"))
    );
}

// ---------------------------------------------------------- §2.1 conflicts

/// The four conflict kinds, in their checking order, with and without force.
#[tokio::test]
async fn conflict_table_order_and_force() {
    struct Case {
        name: &'static str,
        child: bool,
        running: bool,
        stopped_store: bool,
        stopped_ext: bool,
        tags: &'static [&'static str],
        no_force: &'static str,
        force: Option<&'static str>,
    }
    const CHILD: &str = "image has dependent child images";
    let cases = [
        Case {
            name: "children first",
            child: true,
            running: true,
            stopped_store: true,
            stopped_ext: false,
            tags: &["x:1", "x:2"],
            no_force: "hard:children",
            force: Some("hard:children"),
        },
        Case {
            name: "children only",
            child: true,
            running: false,
            stopped_store: false,
            stopped_ext: false,
            tags: &[],
            no_force: "hard:children",
            force: Some("hard:children"),
        },
        Case {
            name: "running before refs and stopped",
            child: false,
            running: true,
            stopped_store: true,
            stopped_ext: false,
            tags: &["x:1", "x:2"],
            no_force: "hard:running",
            force: Some("hard:running"),
        },
        Case {
            name: "running, untagged",
            child: false,
            running: true,
            stopped_store: false,
            stopped_ext: false,
            tags: &[],
            no_force: "hard:running",
            force: Some("hard:running"),
        },
        Case {
            name: "refs before stopped",
            child: false,
            running: false,
            stopped_store: true,
            stopped_ext: false,
            tags: &["x:1", "x:2"],
            no_force: "soft:refs",
            force: None,
        },
        Case {
            name: "refs only (two tags one repo)",
            child: false,
            running: false,
            stopped_store: false,
            stopped_ext: false,
            tags: &["x:1", "x:2"],
            no_force: "soft:refs",
            force: None,
        },
        Case {
            name: "stopped (store record)",
            child: false,
            running: false,
            stopped_store: true,
            stopped_ext: false,
            tags: &[],
            no_force: "soft:stopped-store",
            force: None,
        },
        Case {
            name: "stopped (runtime)",
            child: false,
            running: false,
            stopped_store: false,
            stopped_ext: true,
            tags: &[],
            no_force: "soft:stopped-ext",
            force: None,
        },
        Case {
            name: "single ref + stopped: ID branch mask",
            child: false,
            running: false,
            stopped_store: true,
            stopped_ext: false,
            tags: &["x:1"],
            no_force: "soft:stopped-store",
            force: None,
        },
        Case {
            name: "single ref + running",
            child: false,
            running: true,
            stopped_store: false,
            stopped_ext: false,
            tags: &["x:1"],
            no_force: "hard:running",
            force: Some("hard:running"),
        },
    ];
    for case in cases {
        let (_d, svc, rt) = service_rt();
        let l = lay("conf", 3);
        let img = base(vec![l.clone()], T0, &[], case.tags);
        let kid = child(&img, Some(lay("kid", 1)), T0 + 1, &[], &["kid:1"]);
        if case.child {
            load_imgs(&svc, &[&img, &kid]).await;
        } else {
            load_imgs(&svc, &[&img]).await;
        }
        let id = img.id();
        let run_id = rt.add(&id, "aaaaaaaaaaaa", true);
        if !case.running {
            rt.0.lock().unwrap().clear();
        }
        let stopped_store = if case.stopped_store {
            Some(svc.create_container(&id, Some("c1")).await.unwrap())
        } else {
            None
        };
        let stopped_ext = if case.stopped_ext {
            Some(rt.add(&id, "bbbbbbbbbbbb", false))
        } else {
            None
        };
        let expected = |what: &str| match what {
            "hard:children" => conflict_hard(&id, CHILD),
            "hard:running" => conflict_hard(
                &id,
                &format!("image is being used by running container {}", &run_id[..12]),
            ),
            "soft:refs" => conflict_soft(&id, "image is referenced in multiple repositories"),
            "soft:stopped-store" => conflict_soft(
                &id,
                &format!(
                    "image is being used by stopped container {}",
                    &stopped_store.as_ref().unwrap()[..12]
                ),
            ),
            "soft:stopped-ext" => conflict_soft(
                &id,
                &format!(
                    "image is being used by stopped container {}",
                    &stopped_ext.as_ref().unwrap()[..12]
                ),
            ),
            other => panic!("{other}"),
        };
        for input in [id[7..19].to_string(), id.clone(), id[7..].to_string()] {
            assert_eq!(
                del_err(&svc, &input, false).await,
                expected(case.no_force),
                "{}: {input}",
                case.name
            );
        }
        match case.force {
            Some(what) => {
                assert_eq!(
                    del_err(&svc, &id, true).await,
                    expected(what),
                    "{} force",
                    case.name
                )
            }
            None => {
                let got = del(&svc, &id[7..19], true, true).await;
                let mut want: Vec<DeleteItem> = case.tags.iter().map(|t| u(t)).collect();
                want.push(d(&id));
                // Only a store container record holds the image's top layer;
                // a runtime container (external store) does not.
                if !case.stopped_store {
                    want.push(d(&chains(std::slice::from_ref(&l))[0]));
                }
                assert_eq!(got, want, "{} force", case.name);
                assert!(!exists(&svc, &id).await);
            }
        }
        assert_verified(&svc);
    }
}

// ------------------------------------------------------ §2.2 single reference

/// `isSingleReference` observed through the ID branch without force: single
/// → the refs are untagged and the image deleted; not single → conflict 3.
#[tokio::test]
async fn is_single_reference_table() {
    let d1 = fake_digest('1');
    let d2 = fake_digest('2');
    // (what, refs, Some(untag records) when single, None when conflict 3)
    type Case<'a> = (&'a str, Vec<String>, Option<Vec<&'a str>>);
    let cases: Vec<Case> = vec![
        ("[] (no refs)", vec![], Some(vec![])),
        ("[a:1]", vec!["a:1".into()], Some(vec!["a:1"])),
        (
            "[a:1, a@d1]",
            vec!["a:1".into(), format!("a@{d1}")],
            Some(vec!["a:1", "a@D1"]),
        ),
        (
            "[a:1, a@d1, a@d2]",
            vec!["a:1".into(), format!("a@{d1}"), format!("a@{d2}")],
            Some(vec!["a:1", "a@D1", "a@D2"]),
        ),
        (
            "[a@d1, a@d2]",
            vec![format!("a@{d1}"), format!("a@{d2}")],
            Some(vec!["a@D1", "a@D2"]),
        ),
        ("[a@d1]", vec![format!("a@{d1}")], Some(vec!["a@D1"])),
        ("[a:1, a:2]", vec!["a:1".into(), "a:2".into()], None),
        ("[a:1, b@d]", vec!["a:1".into(), format!("b@{d1}")], None),
        (
            "[a@d, b@d]",
            vec![format!("a@{d1}"), format!("b@{d1}")],
            None,
        ),
        (
            "[a:1, a@d1, b@d2]",
            vec!["a:1".into(), format!("a@{d1}"), format!("b@{d2}")],
            None,
        ),
        // Compared by full name: docker.io/library/a vs localhost/a.
        (
            "[a:1, localhost/a@d]",
            vec!["a:1".into(), format!("localhost/a@{d1}")],
            None,
        ),
    ];
    for (what, refs, outcome) in cases {
        let (_d, svc) = service();
        let l = lay("single", 2);
        let img = base(vec![l.clone()], T0, &[], &[]);
        load_imgs(&svc, &[&img]).await;
        let id = img.id();
        for r in &refs {
            if r.contains('@') {
                add_digest(&svc, r, &id);
            } else {
                let (repo, tag) = r.split_once(':').unwrap();
                svc.tag_image(&id, repo, tag).await.unwrap();
            }
        }
        match outcome {
            Some(untagged) => {
                let mut want: Vec<DeleteItem> = untagged
                    .iter()
                    .map(|s| u(&s.replace("D1", &d1).replace("D2", &d2)))
                    .collect();
                want.push(d(&id));
                want.push(d(&chains(&[l])[0]));
                assert_eq!(del(&svc, &id[7..19], false, true).await, want, "{what}");
                assert!(!exists(&svc, &id).await, "{what}");
            }
            None => {
                assert_eq!(
                    del_err(&svc, &id[7..19], false).await,
                    conflict_soft(&id, "image is referenced in multiple repositories"),
                    "{what}"
                );
                assert_eq!(
                    svc.lookup_image(&id).await.unwrap().repo_tags.len()
                        + svc.lookup_image(&id).await.unwrap().repo_digests.len(),
                    refs.len(),
                    "{what}"
                );
            }
        }
        assert_verified(&svc);
    }
}

/// `isSingleReference` through the reference branch: with a (stopped)
/// container, a single reference refuses to go without force; otherwise the
/// reference is removed and the image stays.
#[tokio::test]
async fn reference_branch_container_check_uses_single_reference() {
    let d1 = fake_digest('1');
    // (refs, name to delete, conflict?)
    let cases: Vec<(&str, Vec<String>, &str, bool)> = vec![
        ("[a:1]", vec!["a:1".into()], "a:1", true),
        (
            "[a:1, a@d]",
            vec!["a:1".into(), format!("a@{d1}")],
            "a:1",
            true,
        ),
        (
            "[a:1, a@d] digest",
            vec!["a:1".into(), format!("a@{d1}")],
            "a@D1",
            true,
        ),
        ("[a@d]", vec![format!("a@{d1}")], "a@D1", true),
        ("[a:1, a:2]", vec!["a:1".into(), "a:2".into()], "a:1", false),
        (
            "[a:1, b@d]",
            vec!["a:1".into(), format!("b@{d1}")],
            "a:1",
            false,
        ),
    ];
    for (what, refs, name, conflict) in cases {
        let name = name.replace("D1", &d1);
        let (_d, svc) = service();
        let img = base(vec![lay("rb", 2)], T0, &[], &[]);
        load_imgs(&svc, &[&img]).await;
        let id = img.id();
        for r in &refs {
            if r.contains('@') {
                add_digest(&svc, r, &id);
            } else {
                let (repo, tag) = r.split_once(':').unwrap();
                svc.tag_image(&id, repo, tag).await.unwrap();
            }
        }
        let cid = svc.create_container(&id, None).await.unwrap();
        if conflict {
            assert_eq!(
                del_err(&svc, &name, false).await,
                conflict_ref(&name, &cid, &id),
                "{what}"
            );
            // Force: the reference goes; when no reference is left the
            // helper runs with force, where a stopped container is no
            // conflict: the image goes (its layer stays with the container).
            let got = del(&svc, &name, true, true).await;
            let mut want = vec![u(&name)];
            if what == "[a:1, a@d]" {
                want.push(u(&format!("a@{d1}")));
            }
            let gone = what != "[a:1, a@d] digest";
            if gone {
                want.push(d(&id));
            }
            assert_eq!(got, want, "{what}");
            assert_eq!(exists(&svc, &id).await, !gone, "{what}");
        } else {
            assert_eq!(
                del(&svc, &name, false, true).await,
                vec![u(&name)],
                "{what}"
            );
            assert!(exists(&svc, &id).await, "{what}");
        }
        assert_verified(&svc);
    }
}

/// The conflict message quotes the input exactly as given (not normalised),
/// while the record is the normalised familiar string.
#[tokio::test]
async fn reference_branch_names_input_as_given() {
    let (_d, svc) = service();
    let l = lay("norm", 1);
    let img = base(vec![l.clone()], T0, &[], &["one:latest"]);
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    let cid = svc.create_container("one", None).await.unwrap();
    for name in [
        "one",
        "one:latest",
        "docker.io/library/one",
        "index.docker.io/library/one:latest",
    ] {
        assert_eq!(
            del_err(&svc, name, false).await,
            conflict_ref(name, &cid, &id),
            "{name}"
        );
    }
    svc.remove_container(&cid).await.unwrap();
    assert_eq!(
        del(&svc, "docker.io/library/one", false, true).await,
        vec![u("one:latest"), d(&id), d(&chains(&[l])[0])]
    );
    assert_verified(&svc);
}

// ------------------------------------------------------- §2.3 / §5.4 branches

/// D9 and references.md §5.4: a tag equal to a prefix of its image's ID, or
/// a prefix of the text `sha256:`, selects the ID branch.
#[tokio::test]
async fn id_prefix_looking_tags_select_the_id_branch() {
    let (_d, svc) = service();
    let l = lay("d9", 1);
    let img = base(vec![l.clone()], T0, &[], &[]);
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    let p4 = &id[7..11];
    let p5 = &id[7..12];
    svc.tag_image(&id, p4, "latest").await.unwrap();
    svc.tag_image(&id, "other", "1").await.unwrap();
    svc.tag_image(&id, "sha", "latest").await.unwrap();
    svc.tag_image(&id, "s", "latest").await.unwrap();
    svc.tag_image(&id, p5, "v1").await.unwrap();
    let multiple = conflict_soft(&id, "image is referenced in multiple repositories");
    for name in [p4, "sha", "s"] {
        assert_eq!(del_err(&svc, name, false).await, multiple, "{name}");
    }
    // `sha256` cannot be a tag and is no ID prefix search hit: not found;
    // `sha256:` alone does not parse.
    assert_eq!(
        del_err(&svc, "sha256", false).await,
        (ErrorKind::NotFound, "No such image: sha256:latest".into())
    );
    assert_eq!(
        del_err(&svc, "sha256:", false).await,
        (
            ErrorKind::InvalidArgument,
            "invalid reference format".into()
        )
    );
    // `<5hex>:v1` is not a prefix of the ID: reference branch, just untags.
    let t5 = format!("{p5}:v1");
    assert_eq!(del(&svc, &t5, false, true).await, vec![u(&t5)]);
    // With force, the ID branch untags everything and deletes.
    let mut want: Vec<DeleteItem> = vec![
        u(&format!("{p4}:latest")),
        u("other:1"),
        u("s:latest"),
        u("sha:latest"),
    ];
    want.sort_by_key(|x| match x {
        DeleteItem::Untagged(s) => format!("docker.io/library/{s}"),
        DeleteItem::Deleted(s) => s.clone(),
    });
    want.push(d(&id));
    want.push(d(&chains(&[l])[0]));
    assert_eq!(del(&svc, "sha", true, true).await, want);
    assert_verified(&svc);
}

/// A single tag that looks like an ID prefix: the ID branch's container
/// conflict (not the reference branch's) is reported.
#[tokio::test]
async fn id_prefix_tag_with_stopped_container_reports_id_branch_conflict() {
    let (_d, svc) = service();
    let img = base(vec![lay("sha", 1)], T0, &[], &["sha:latest"]);
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    let cid = svc.create_container(&id, None).await.unwrap();
    assert_eq!(
        del_err(&svc, "sha", false).await,
        conflict_soft(
            &id,
            &format!("image is being used by stopped container {}", &cid[..12])
        )
    );
    // `sha:latest` is not an ID prefix: reference branch.
    assert_eq!(
        del_err(&svc, "sha:latest", false).await,
        conflict_ref("sha:latest", &cid, &id)
    );
    assert_eq!(
        del(&svc, "sha", true, true).await,
        vec![u("sha:latest"), d(&id)]
    );
    assert_verified(&svc);
}

/// Tag precedence over ID prefix (references.md §5.3): `abc` resolves to the
/// tag `abc:latest` even when another image's ID starts with `abc`; deleting
/// it by that name then takes the reference branch only when the tagged
/// image's own ID does not start with it.
#[tokio::test]
async fn delete_by_sha256_prefix_and_unique_prefix() {
    let (_d, svc) = service();
    let la = lay("pa", 1);
    let a = base(vec![la.clone()], T0, &[], &[]);
    let b = base(vec![lay("pb", 1)], T0 + 1, &[], &["b:1"]);
    load_imgs(&svc, &[&a, &b]).await;
    let id = a.id();
    // Tag image b with a name equal to a's ID prefix: the tag wins.
    let pa = &id[7..13];
    assert_ne!(pa, &b.id()[7..13]);
    svc.tag_image("b:1", pa, "latest").await.unwrap();
    assert_eq!(svc.get_image(pa).await.unwrap(), b.id());
    // Deleting `pa` resolves to b; pa is not a prefix of b's ID → reference branch.
    assert_eq!(
        del(&svc, pa, false, true).await,
        vec![u(&format!("{pa}:latest"))]
    );
    // Now `pa` resolves by prefix to a: ID branch.
    assert_eq!(
        del(&svc, &format!("sha256:{}", &id[7..10]), false, true).await,
        vec![d(&id), d(&chains(&[la])[0])]
    );
    assert_verified(&svc);
}

// ------------------------------------------------------------ D1 … D9

#[tokio::test]
async fn d1_delete_by_id_with_many_tags() {
    let (_d, svc) = service();
    let l = lay("d1", 5);
    let img = base(
        vec![l.clone()],
        T0,
        &[],
        &["zz:1", "aa:1", "localhost:5000/q:1", "aa:2", "a.b/c:1"],
    );
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    assert_eq!(
        del_err(&svc, &id[7..19], false).await,
        conflict_soft(&id, "image is referenced in multiple repositories")
    );
    assert_eq!(
        del(&svc, &id[7..19], true, true).await,
        vec![
            u("a.b/c:1"),
            u("aa:1"),
            u("aa:2"),
            u("zz:1"),
            u("localhost:5000/q:1"),
            d(&id),
            d(&chains(&[l])[0]),
        ]
    );
    assert_eq!(
        del_err(&svc, &id[7..19], true).await,
        (
            ErrorKind::NotFound,
            format!("No such image: {}:latest", &id[7..19])
        )
    );
    assert_verified(&svc);
}

/// D1 ordering with tags and digests mixed (references.md §7.6): canonical
/// string order, `foo2` < `foo:` < `foo@`.
#[tokio::test]
async fn force_delete_untags_in_canonical_order() {
    let (_d, svc) = service();
    let l = lay("ord", 1);
    let img = base(
        vec![l.clone()],
        T0,
        &[],
        &[
            "foo:latest",
            "foo2:latest",
            "localhost/foo:latest",
            "FOO.com/bar:latest",
        ],
    );
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    let dg = fake_digest('e');
    add_digest(&svc, &format!("foo@{dg}"), &id);
    assert_eq!(
        del(&svc, &id, true, true).await,
        vec![
            u("FOO.com/bar:latest"),
            u("foo2:latest"),
            u("foo:latest"),
            u(&format!("foo@{dg}")),
            u("localhost/foo:latest"),
            d(&id),
            d(&chains(&[l])[0]),
        ]
    );
    assert_verified(&svc);
}

/// D2: built chain; parents pruned up to the tagged base; a layer is freed
/// only with the last image holding it.
#[tokio::test]
async fn d2_parents_pruned_until_tagged_base() {
    let (_d, svc) = service();
    let l1 = lay("bb", 10);
    let l2 = lay("hi", 3);
    let bb = base(vec![l1.clone()], T0, &[], &["busybox:latest", "foo:bar"]);
    let label = child(&bb, None, T0 + 1, &[("a", "1")], &[]);
    let run = child(&label, Some(l2.clone()), T0 + 2, &[("a", "1")], &[]);
    let env = child(&run, None, T0 + 3, &[("a", "1")], &["built:1"]);
    load_imgs(&svc, &[&bb, &label, &run, &env]).await;
    let c = chains(&[l1.clone(), l2]);
    assert_eq!(
        del(&svc, "built:1", false, true).await,
        vec![
            u("built:1"),
            d(&env.id()),
            d(&run.id()),
            d(&c[1]),
            d(&label.id())
        ]
    );
    assert!(exists(&svc, "busybox:latest").await);
    assert!(layer_exists(&svc, &c[0]));
    assert_eq!(svc.count_images().await.unwrap(), 1);
    assert_verified(&svc);
}

/// D3: noprune leaves the untagged parent as a dangling image.
#[tokio::test]
async fn d3_noprune_keeps_parents() {
    let (_d, svc) = service();
    let bb = base(vec![lay("bb", 10)], T0, &[], &["busybox:latest"]);
    let n1 = child(&bb, None, T0 + 1, &[("n", "1")], &[]);
    let n2 = child(&n1, None, T0 + 2, &[("n", "2")], &["np:1"]);
    load_imgs(&svc, &[&bb, &n1, &n2]).await;
    assert_eq!(
        del(&svc, "np:1", false, false).await,
        vec![u("np:1"), d(&n2.id())]
    );
    assert!(exists(&svc, &n1.id()).await);
    let dangling = svc
        .images(filters(r#"{"dangling":["true"]}"#), false, false)
        .await
        .unwrap();
    assert_eq!(
        dangling.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        [n1.id()]
    );
    assert_verified(&svc);
}

/// D4: stopped container (a store record).
#[tokio::test]
async fn d4_stopped_container() {
    let (_d, svc) = service();
    let l = lay("com", 4);
    let img = base(vec![l.clone()], T0, &[], &["committed:v1"]);
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    let short = &id[7..19];
    let cid = svc
        .create_container("committed:v1", Some("c1"))
        .await
        .unwrap();
    assert_eq!(
        del_err(&svc, "committed:v1", false).await,
        conflict_ref("committed:v1", &cid, &id)
    );
    assert_eq!(
        del_err(&svc, short, false).await,
        conflict_soft(
            &id,
            &format!("image is being used by stopped container {}", &cid[..12])
        )
    );
    // The container holds the image's top layer: only the image goes.
    assert_eq!(
        del(&svc, short, true, true).await,
        vec![u("committed:v1"), d(&id)]
    );
    assert_eq!(
        del_err(&svc, short, true).await,
        (
            ErrorKind::NotFound,
            format!("No such image: {short}:latest")
        )
    );
    let c = chains(&[l])[0].clone();
    assert!(layer_exists(&svc, &c));
    svc.remove_container(&cid).await.unwrap();
    assert!(!layer_exists(&svc, &c));
    assert_verified(&svc);
}

/// D5: running container (runtime).
#[tokio::test]
async fn d5_running_container() {
    let (_d, svc, rt) = service_rt();
    let img = base(vec![lay("run", 4)], T0, &[], &["run:1", "run:2"]);
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    let cid = rt.add(&id, "6d937f2e344b", true);
    let running = conflict_hard(&id, "image is being used by running container 6d937f2e344b");
    assert_eq!(del_err(&svc, &id[7..19], true).await, running);
    assert_eq!(del_err(&svc, &id[7..19], false).await, running);
    assert_eq!(del(&svc, "run:1", false, true).await, vec![u("run:1")]);
    assert_eq!(
        del_err(&svc, "run:2", false).await,
        conflict_ref("run:2", &cid, &id)
    );
    assert_eq!(del(&svc, "run:2", true, true).await, vec![u("run:2")]);
    assert!(exists(&svc, &id).await);
    let listed = svc.images(Filters::new(), false, false).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].repo_tags.as_deref(),
        Some(&["<none>:<none>".to_string()][..])
    );
    // Untagged and running: still refused.
    assert_eq!(del_err(&svc, &id[7..19], true).await, running);
    assert_verified(&svc);
}

/// D6: an image with a child cannot be deleted by ID, forced or not; its tag
/// can be removed.
#[tokio::test]
async fn d6_children() {
    let (_d, svc) = service();
    let bb = base(vec![lay("bb", 10)], T0, &[], &["busybox:latest"]);
    let kid = child(&bb, Some(lay("k", 1)), T0 + 1, &[], &["kid:1"]);
    load_imgs(&svc, &[&bb, &kid]).await;
    let id = bb.id();
    let hard = conflict_hard(&id, "image has dependent child images");
    assert_eq!(del_err(&svc, &id[7..19], false).await, hard);
    assert_eq!(del_err(&svc, &id[7..19], true).await, hard);
    assert_eq!(
        del(&svc, "busybox", false, true).await,
        vec![u("busybox:latest")]
    );
    assert!(exists(&svc, &id).await);
    assert_eq!(del_err(&svc, &id[7..19], true).await, hard);
    // Deleting the child now prunes the untagged parent too.
    let c = chains(&kid.layers);
    assert_eq!(
        del(&svc, "kid:1", false, true).await,
        vec![u("kid:1"), d(&kid.id()), d(&c[1]), d(&id), d(&c[0])]
    );
    assert_eq!(svc.count_images().await.unwrap(), 0);
    assert_verified(&svc);
}

/// D7: tag plus digest in one repository; digest cleanup; tag@digest input.
#[tokio::test]
async fn d7_digest_cleanup() {
    let dg = "sha256:5525b37d8367cf03f953916c2abe89fe7d131ccfe3f639243fb28d69ac7cdd27";
    let repo = "127.0.0.1:5733/t/img";
    let setup = || async {
        let (dir, svc) = service();
        let l = lay("d7", 4);
        let img = base(
            vec![l.clone()],
            T0,
            &[],
            &[format!("{repo}:1").as_str(), "other:9"],
        );
        load_imgs(&svc, &[&img]).await;
        add_digest(&svc, &format!("{repo}@{dg}"), &img.id());
        (dir, svc, img.id(), chains(&[l])[0].clone())
    };
    // Deleting the tag removes the same-repo digest too.
    let (_d1, svc, id, c) = setup().await;
    assert_eq!(
        del(&svc, &format!("{repo}:1"), false, true).await,
        vec![u(&format!("{repo}:1")), u(&format!("{repo}@{dg}"))]
    );
    let ins = svc.lookup_image(&id).await.unwrap();
    assert_eq!(
        (ins.repo_tags, ins.repo_digests),
        (vec!["other:9".to_string()], vec![])
    );
    assert_eq!(
        del(&svc, "other:9", false, true).await,
        vec![u("other:9"), d(&id), d(&c)]
    );
    assert_verified(&svc);

    // Deleting only the digest keeps the tag.
    let (_d2, svc, id, _) = setup().await;
    assert_eq!(
        del(&svc, &format!("{repo}@{dg}"), false, true).await,
        vec![u(&format!("{repo}@{dg}"))]
    );
    let ins = svc.lookup_image(&id).await.unwrap();
    assert_eq!(
        ins.repo_tags,
        vec![format!("{repo}:1"), "other:9".to_string()]
    );
    assert!(ins.repo_digests.is_empty());
    assert_verified(&svc);

    // name:tag@digest: record keeps the tag, only the digest ref goes.
    let (_d3, svc, id, _) = setup().await;
    assert_eq!(
        del(&svc, &format!("{repo}:1@{dg}"), false, true).await,
        vec![u(&format!("{repo}:1@{dg}"))]
    );
    let ins = svc.lookup_image(&id).await.unwrap();
    assert_eq!(
        ins.repo_tags,
        vec![format!("{repo}:1"), "other:9".to_string()]
    );
    assert!(ins.repo_digests.is_empty());
    assert_verified(&svc);
}

/// Digest cleanup happens only when no tag of the same repository is left,
/// and only for that repository's digests.
#[tokio::test]
async fn digest_cleanup_scope() {
    let (_d, svc) = service();
    let l = lay("scope", 2);
    let img = base(vec![l.clone()], T0, &[], &["r:1", "r:2"]);
    load_imgs(&svc, &[&img]).await;
    let id = img.id();
    let (da, db) = (fake_digest('a'), fake_digest('b'));
    add_digest(&svc, &format!("r@{da}"), &id);
    add_digest(&svc, &format!("s@{db}"), &id);
    assert_eq!(del(&svc, "r:1", false, true).await, vec![u("r:1")]);
    assert_eq!(
        del(&svc, "r:2", false, true).await,
        vec![u("r:2"), u(&format!("r@{da}"))]
    );
    let ins = svc.lookup_image(&id).await.unwrap();
    assert_eq!(ins.repo_digests, vec![format!("s@{db}")]);
    // Last reference is a digest: reference branch, then the helper deletes.
    assert_eq!(
        del(&svc, &format!("s@{db}"), false, true).await,
        vec![u(&format!("s@{db}")), d(&id), d(&chains(&[l])[0])]
    );
    assert_verified(&svc);
}

/// D8: one image, three layers: layers top-most first; the same layers as a
/// parent chain interleave images and layers.
#[tokio::test]
async fn d8_layer_order() {
    let ls = vec![lay("m1", 1), lay("m2", 2), lay("m3", 3)];
    let c = chains(&ls);
    {
        let (_d, svc) = service();
        let img = base(ls.clone(), T0, &[], &["ml:1"]);
        load_imgs(&svc, &[&img]).await;
        assert_eq!(
            del(&svc, "ml:1", false, true).await,
            vec![u("ml:1"), d(&img.id()), d(&c[2]), d(&c[1]), d(&c[0])]
        );
        assert_verified(&svc);
    }
    {
        let (_d, svc) = service();
        let g = base(vec![ls[0].clone()], T0, &[], &[]);
        let p = child(&g, Some(ls[1].clone()), T0 + 1, &[], &[]);
        let img = child(&p, Some(ls[2].clone()), T0 + 2, &[], &["ml:1"]);
        load_imgs(&svc, &[&g, &p, &img]).await;
        assert_eq!(
            del(&svc, "ml:1", false, true).await,
            vec![
                u("ml:1"),
                d(&img.id()),
                d(&c[2]),
                d(&p.id()),
                d(&c[1]),
                d(&g.id()),
                d(&c[0])
            ]
        );
        assert_verified(&svc);
    }
}

/// Parent walk stops silently at a parent that is tagged, has another child,
/// or is used by a stopped or running container.
#[tokio::test]
async fn parent_walk_stops() {
    for stop in ["tagged", "other child", "stopped", "running", "noprune"] {
        let (_d, svc, rt) = service_rt();
        let g = base(vec![lay("g", 1)], T0, &[], &[]);
        let ptags: &[&str] = if stop == "tagged" { &["p:1"] } else { &[] };
        let p = child(&g, Some(lay("p", 2)), T0 + 1, &[], ptags);
        let top = child(&p, Some(lay("t", 3)), T0 + 2, &[], &["top:1"]);
        let sib = child(&p, None, T0 + 3, &[], &["sib:1"]);
        if stop == "other child" {
            load_imgs(&svc, &[&g, &p, &top, &sib]).await;
        } else {
            load_imgs(&svc, &[&g, &p, &top]).await;
        }
        match stop {
            "stopped" => {
                svc.create_container(&p.id(), None).await.unwrap();
            }
            "running" => {
                rt.add(&p.id(), "cccccccccccc", true);
            }
            _ => {}
        }
        let c = chains(&top.layers);
        assert_eq!(
            del(&svc, "top:1", false, stop != "noprune").await,
            vec![u("top:1"), d(&top.id()), d(&c[2])],
            "{stop}"
        );
        assert!(exists(&svc, &p.id()).await, "{stop}");
        assert!(exists(&svc, &g.id()).await, "{stop}");
        assert_verified(&svc);
    }
}

/// A layer shared with another image is not deleted with the image.
#[tokio::test]
async fn shared_layers_survive() {
    let (_d, svc) = service();
    let l = lay("shared", 2);
    let a = base(vec![l.clone()], T0, &[], &["a:1"]);
    let b = base(vec![l.clone()], T0 + 5, &[], &["b:1"]);
    load_imgs(&svc, &[&a, &b]).await;
    assert_eq!(
        del(&svc, "a:1", false, true).await,
        vec![u("a:1"), d(&a.id())]
    );
    assert_eq!(
        del(&svc, "b:1", false, true).await,
        vec![u("b:1"), d(&b.id()), d(&chains(&[l])[0])]
    );
    assert_verified(&svc);
}

// ------------------------------------------------------------ prune §4

#[tokio::test]
async fn prune_nothing_is_null() {
    let (_d, svc) = service();
    let r = svc.images_prune(Filters::new()).await.unwrap();
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#
    );
    let a = base(vec![lay("a", 1)], T0, &[], &["a:1"]);
    load_imgs(&svc, &[&a]).await;
    let r = svc.images_prune(Filters::new()).await.unwrap();
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#
    );
    assert!(exists(&svc, "a:1").await);
    assert_verified(&svc);
}

/// P1-like: default prune deletes dangling heads and walks their untagged
/// parents up to the tagged base; shared layers are not counted; images in
/// use are silently kept.
#[tokio::test]
async fn p1_default_prune_walks_untagged_parents() {
    let (_d, svc, rt) = service_rt();
    let lb = lay("bb", 10);
    let lr = lay("q", 2);
    let ls = lay("four", 4);
    let bb = base(vec![lb.clone()], T0, &[], &["busybox:latest", "q:1"]);
    let l1 = child(&bb, None, T0 + 1, &[("q", "1")], &[]);
    let run = child(&l1, Some(lr.clone()), T0 + 2, &[("q", "1")], &[]);
    let l2 = child(&run, None, T0 + 3, &[("q2", "1")], &[]);
    let tagged4 = base(vec![ls.clone()], T0 + 4, &[], &["four:1"]);
    let imp1 = base(vec![ls.clone()], T0 + 5, &[], &[]);
    let imp2 = base(vec![ls.clone()], T0 + 6, &[], &[]);
    let used_run = base(vec![lay("used", 7)], T0 + 7, &[], &[]);
    let used_stop = base(vec![lay("used2", 7)], T0 + 8, &[], &[]);
    load_imgs(
        &svc,
        &[
            &bb, &l1, &run, &l2, &tagged4, &imp1, &imp2, &used_run, &used_stop,
        ],
    )
    .await;
    svc.create_container(&bb.id(), None).await.unwrap();
    rt.add(&used_run.id(), "dddddddddddd", true);
    svc.create_container(&used_stop.id(), None).await.unwrap();
    let c_run = chains(&[lb, lr])[1].clone();
    let run_layer_size = diff_size(&svc, &c_run);
    let r = svc.images_prune(Filters::new()).await.unwrap();
    assert_groups(
        r.images_deleted.as_deref().unwrap(),
        &[
            vec![d(&l2.id()), d(&run.id()), d(&c_run), d(&l1.id())],
            vec![d(&imp1.id())],
            vec![d(&imp2.id())],
        ],
    );
    assert_eq!(r.space_reclaimed, run_layer_size);
    assert_eq!(r.space_reclaimed, 2);
    for kept in [bb.id(), tagged4.id(), used_run.id(), used_stop.id()] {
        assert!(exists(&svc, &kept).await);
    }
    assert_eq!(svc.count_images().await.unwrap(), 4);
    // Again: nothing left to prune.
    let r = svc
        .images_prune(filters(r#"{"dangling":["true"]}"#))
        .await
        .unwrap();
    assert_eq!(r.images_deleted, None);
    assert_verified(&svc);
}

/// P2 and label rules: `label` must match, `label!` excludes images matching
/// all its values; images with no labels fail `label` and are never excluded
/// by `label!`.
#[tokio::test]
async fn p2_prune_label_filters() {
    let l = lay("lab", 1);
    let par = base(vec![l.clone()], T0, &[], &[]);
    let head = child(&par, None, T0 + 1, &[("x", "1"), ("v", "1")], &[]);
    let tagged = child(&par, None, T0 + 2, &[], &["p:1"]);
    let other = base(vec![lay("oth", 3)], T0 + 3, &[("y", "1")], &[]);
    let bare = base(vec![lay("bare", 5)], T0 + 4, &[], &[]);
    let go_other = vec![d(&other.id()), d(&chains(&other.layers)[0])];
    let go_bare = vec![d(&bare.id()), d(&chains(&bare.layers)[0])];
    let go_head = vec![d(&head.id())];
    // (what, filters, groups, SpaceReclaimed: other's layer 3 bytes, bare's 5)
    let cases: Vec<(&str, &str, Vec<Vec<DeleteItem>>, u64)> = vec![
        ("label x", r#"{"label":["x"]}"#, vec![go_head.clone()], 0),
        (
            "label x=1",
            r#"{"label":["x=1"]}"#,
            vec![go_head.clone()],
            0,
        ),
        (
            "label x=1,v=1",
            r#"{"label":{"x=1":true,"v=1":true}}"#,
            vec![go_head.clone()],
            0,
        ),
        ("label x=2", r#"{"label":["x=2"]}"#, vec![], 0),
        ("label x,y (AND)", r#"{"label":["x","y"]}"#, vec![], 0),
        ("label y", r#"{"label":["y"]}"#, vec![go_other.clone()], 3),
        (
            "label! x",
            r#"{"label!":["x"]}"#,
            vec![go_other.clone(), go_bare.clone()],
            8,
        ),
        (
            "label! x + zzz: not all match, not excluded",
            r#"{"label!":["x","zzz"]}"#,
            vec![go_head.clone(), go_other.clone(), go_bare.clone()],
            8,
        ),
        (
            "label! x=1 + v=1",
            r#"{"label!":["x=1","v=1"]}"#,
            vec![go_other.clone(), go_bare.clone()],
            8,
        ),
        (
            "label x + label! v",
            r#"{"label":["x"],"label!":["v"]}"#,
            vec![],
            0,
        ),
        (
            "label x + label! y",
            r#"{"label":["x"],"label!":["y"]}"#,
            vec![go_head.clone()],
            0,
        ),
    ];
    for (what, json, groups, freed) in cases {
        let (_d, svc) = service();
        load_imgs(&svc, &[&par, &head, &tagged, &other, &bare]).await;
        let r = svc.images_prune(filters(json)).await.unwrap();
        match &r.images_deleted {
            None => assert!(groups.is_empty(), "{what}: nothing pruned"),
            Some(got) => assert_groups(got, &groups),
        }
        assert_eq!(r.space_reclaimed, freed, "{what}");
        assert!(exists(&svc, "p:1").await, "{what}");
        assert!(exists(&svc, &par.id()).await, "{what}");
        assert_verified(&svc);
    }
}

/// Prune ignores label filters for images without a `config` (list does not).
#[tokio::test]
async fn prune_config_less_image_ignores_labels() {
    let (_d, svc) = service();
    let l = lay("nocfg", 1);
    let mut img = base(vec![l.clone()], T0, &[], &[]);
    img.config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "created": "2020-09-13T12:26:40Z",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(&l)]},
    }))
    .unwrap();
    load_imgs(&svc, &[&img]).await;
    let listed = svc
        .images(filters(r#"{"label":["nope"]}"#), false, false)
        .await
        .unwrap();
    assert!(listed.is_empty());
    let r = svc
        .images_prune(filters(r#"{"label":["nope"]}"#))
        .await
        .unwrap();
    assert_eq!(
        r.images_deleted,
        Some(vec![d(&img.id()), d(&chains(&[l])[0])])
    );
    assert_eq!(r.space_reclaimed, 1);
    assert_verified(&svc);
}

/// P3 + P4: prune -a (`dangling` false or `0`) on in-use images: a
/// multi-tag image used by a stopped container keeps only its last tag; a
/// base whose child is used loses its tag and becomes an intermediate; unused
/// tagged images are deleted with their chain.
#[tokio::test]
async fn p3_p4_prune_all() {
    for json in [
        r#"{"dangling":["false"]}"#,
        r#"{"dangling":["0"]}"#,
        r#"{"dangling":["true","false"]}"#,
        r#"{"dangling":["1","0"]}"#,
    ] {
        let (_d, svc) = service();
        let lb = lay("bb", 10);
        let bb = base(
            vec![lb.clone()],
            T0,
            &[],
            &["busybox:latest", "foo:bar", "foo:baz", "foo:x", "q:1"],
        );
        let b1 = base(vec![lay("b1", 3)], T0 + 1, &[], &["base:1"]);
        let c1 = child(&b1, Some(lay("c1", 4)), T0 + 2, &[], &["child:1"]);
        let lp = lay("pp", 6);
        let pp = base(vec![lp.clone()], T0 + 3, &[], &[]);
        let mid = child(&pp, None, T0 + 4, &[], &[]);
        let ptop = child(&mid, Some(lay("pt", 2)), T0 + 5, &[], &["p:1"]);
        let o2 = base(vec![lb.clone()], T0 + 6, &[("o", "2")], &["other:2"]);
        load_imgs(&svc, &[&bb, &b1, &c1, &pp, &mid, &ptop, &o2]).await;
        svc.create_container("busybox:latest", None).await.unwrap();
        svc.create_container("child:1", None).await.unwrap();
        let pc = chains(&ptop.layers);
        let r = svc.images_prune(filters(json)).await.unwrap();
        assert_groups(
            r.images_deleted.as_deref().unwrap(),
            &[
                vec![u("busybox:latest"), u("foo:bar"), u("foo:baz"), u("foo:x")],
                vec![u("base:1")],
                vec![
                    u("p:1"),
                    d(&ptop.id()),
                    d(&pc[1]),
                    d(&mid.id()),
                    d(&pp.id()),
                    d(&pc[0]),
                ],
                vec![u("other:2"), d(&o2.id())],
            ],
        );
        assert_eq!(r.space_reclaimed, 2 + 6, "{json}");
        assert_eq!(tags_of(&svc, &bb.id()).await, ["q:1"]);
        assert_eq!(tags_of(&svc, &b1.id()).await, Vec::<String>::new());
        assert_eq!(tags_of(&svc, &c1.id()).await, ["child:1"]);
        let top = svc.images(Filters::new(), false, false).await.unwrap();
        assert!(top.iter().all(|s| s.id != b1.id()), "{json}");
        let all = svc.images(Filters::new(), true, false).await.unwrap();
        let b1row = all.iter().find(|s| s.id == b1.id()).unwrap();
        assert_eq!(
            b1row.repo_tags.as_deref(),
            Some(&["<none>:<none>".to_string()][..])
        );
        assert_verified(&svc);
    }
}

/// Prune -a on an image with a tag and a same-repo digest: the tag's delete
/// cleans up the digest; the second (digest) delete finds nothing.
#[tokio::test]
async fn prune_all_tag_and_digest() {
    let (_d, svc) = service();
    let l = lay("td", 3);
    let img = base(vec![l.clone()], T0, &[], &["r:1"]);
    load_imgs(&svc, &[&img]).await;
    let dg = fake_digest('c');
    add_digest(&svc, &format!("r@{dg}"), &img.id());
    // Default prune: image has a tag → not dangling.
    assert_eq!(
        svc.images_prune(Filters::new())
            .await
            .unwrap()
            .images_deleted,
        None
    );
    let r = svc
        .images_prune(filters(r#"{"dangling":["false"]}"#))
        .await
        .unwrap();
    assert_eq!(
        r.images_deleted,
        Some(vec![
            u("r:1"),
            u(&format!("r@{dg}")),
            d(&img.id()),
            d(&chains(&[l])[0])
        ])
    );
    assert_eq!(r.space_reclaimed, 3);
    assert_verified(&svc);
}

/// P5: digest-only images are pruned by the default prune.
#[tokio::test]
async fn p5_digest_only_image_is_pruned() {
    let (_d, svc) = service();
    let l = lay("p5", 4);
    let img = base(vec![l.clone()], T0, &[], &[]);
    load_imgs(&svc, &[&img]).await;
    let dg = "sha256:5525b37d8367cf03f953916c2abe89fe7d131ccfe3f639243fb28d69ac7cdd27";
    let r = format!("127.0.0.1:5733/t/img@{dg}");
    add_digest(&svc, &r, &img.id());
    let report = svc.images_prune(Filters::new()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        serde_json::json!({
            "ImagesDeleted": [{"Untagged": r}, {"Deleted": img.id()}, {"Deleted": chains(&[l])[0]}],
            "SpaceReclaimed": 4
        })
    );
    assert_verified(&svc);
}

/// P6: the only dangling image is used by a running container → null.
#[tokio::test]
async fn p6_nothing_removable() {
    let (_d, svc, rt) = service_rt();
    let img = base(vec![lay("p6", 4)], T0, &[], &[]);
    load_imgs(&svc, &[&img]).await;
    rt.add(&img.id(), "eeeeeeeeeeee", true);
    for json in [r#"{"label!":["a"]}"#, "", r#"{"dangling":["false"]}"#] {
        let r = svc.images_prune(filters(json)).await.unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#,
            "{json}"
        );
    }
    assert!(exists(&svc, &img.id()).await);
}

/// `until`: images created strictly after it are kept.
#[tokio::test]
async fn prune_until() {
    let old = base(vec![lay("old", 1)], T0, &[], &[]);
    let mid = base(vec![lay("mid", 2)], T0 + 100, &[], &[]);
    let future = base(vec![lay("fut", 4)], 4_100_000_000, &[], &[]);
    let gone = |i: &Img| vec![d(&i.id()), d(&chains(&i.layers)[0])];
    let cases: Vec<(&str, Vec<Vec<DeleteItem>>)> = vec![
        ("0", vec![]),
        ("1599999999", vec![]),
        ("1600000000", vec![gone(&old)]),
        ("1600000099.999", vec![gone(&old)]),
        ("1600000100", vec![gone(&old), gone(&mid)]),
        ("2020-09-13T12:26:40Z", vec![gone(&old)]),
        ("2020-09-13T12:26:39Z", vec![]),
        ("2020-09-13", vec![]),
        ("2020-09-14", vec![gone(&old), gone(&mid)]),
        ("1h", vec![gone(&old), gone(&mid)]),
        ("-1h", vec![gone(&old), gone(&mid)]),
    ];
    for (until, groups) in cases {
        let (_d, svc) = service();
        load_imgs(&svc, &[&old, &mid, &future]).await;
        let mut f = Filters::new();
        f.add("until", until);
        let r = svc.images_prune(f).await.unwrap();
        match &r.images_deleted {
            None => assert!(groups.is_empty(), "until={until}: nothing pruned"),
            Some(got) => assert_groups(got, &groups),
        }
        assert!(exists(&svc, &future.id()).await, "until={until}");
    }
}

/// §3.4: every prune filter error, exact message and kind.
#[tokio::test]
async fn prune_filter_errors() {
    let (_d, svc) = service();
    let img = base(vec![lay("e", 1)], T0, &[], &[]);
    load_imgs(&svc, &[&img]).await;
    let cases: Vec<(&str, ErrorKind, &str)> = vec![
        (
            r#"{"foo":["x"]}"#,
            ErrorKind::InvalidArgument,
            "Invalid filter 'foo'",
        ),
        (
            r#"{"reference":["x"]}"#,
            ErrorKind::InvalidArgument,
            "Invalid filter 'reference'",
        ),
        (
            r#"{"before":["x"]}"#,
            ErrorKind::InvalidArgument,
            "Invalid filter 'before'",
        ),
        (
            r#"{"Dangling":["true"]}"#,
            ErrorKind::InvalidArgument,
            "Invalid filter 'Dangling'",
        ),
        (
            r#"{"dangling":["maybe"]}"#,
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[maybe]'",
        ),
        (
            r#"{"dangling":{"true":false}}"#,
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[true]'",
        ),
        (
            r#"{"dangling":["TRUE"]}"#,
            ErrorKind::InvalidArgument,
            "Invalid filter 'dangling=[TRUE]'",
        ),
        (
            r#"{"until":["1h","2h"]}"#,
            ErrorKind::Internal,
            "more than one until filter specified",
        ),
        (
            r#"{"until":["abc"]}"#,
            ErrorKind::Internal,
            "failed to parse value as time or duration: \"abc\"",
        ),
        (
            r#"{"until":["1d"]}"#,
            ErrorKind::Internal,
            "failed to parse value as time or duration: \"1d\"",
        ),
        (
            r#"{"until":["2020-13-01"]}"#,
            ErrorKind::Internal,
            "parsing time \"2020-13-01\": month out of range",
        ),
    ];
    for (json, kind, msg) in cases {
        assert_eq!(
            expect_err(svc.images_prune(filters(json)).await),
            (kind, msg.to_string()),
            "{json}"
        );
    }
    assert_eq!(
        expect_err(Filters::from_json("notjson")),
        (
            ErrorKind::Internal,
            "invalid character 'o' in literal null (expecting 'u')".into()
        )
    );
    // Nothing was pruned by the failed calls.
    assert!(exists(&svc, &img.id()).await);
    assert_verified(&svc);
}

/// P7: a prune while another is running → 409, checked before the filters;
/// the lock is released afterwards.
#[tokio::test]
async fn p7_concurrent_prune_conflicts() {
    let (_d, svc) = service();
    let img = base(vec![lay("p7", 1)], T0, &[], &[]);
    load_imgs(&svc, &[&img]).await;
    // Hold the store's write lock so the first prune blocks inside its write.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let svc = svc.clone();
        std::thread::spawn(move || {
            svc.store()
                .write(&Actor::default(), |_w| {
                    ready_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap()
        })
    };
    ready_rx.recv().unwrap();
    let first = svc.images_prune(Filters::new());
    tokio::pin!(first);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(100), &mut first)
            .await
            .is_err(),
        "the first prune must be blocked on the write lock"
    );
    let busy = (
        ErrorKind::Conflict,
        "a prune operation is already running".to_string(),
    );
    assert_eq!(expect_err(svc.images_prune(Filters::new()).await), busy);
    assert_eq!(
        expect_err(svc.images_prune(filters(r#"{"foo":["x"]}"#)).await),
        busy
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let r = first.await.unwrap();
    assert_eq!(
        r.images_deleted,
        Some(vec![d(&img.id()), d(&chains(&img.layers)[0])])
    );
    // Released: the next prune runs (and finds nothing).
    assert_eq!(
        svc.images_prune(Filters::new())
            .await
            .unwrap()
            .images_deleted,
        None
    );
    assert_verified(&svc);
}

/// Digest-only images with several digests (one or two repositories) are
/// pruned by the default prune, one reference at a time.
#[tokio::test]
async fn prune_multi_digest_images() {
    let (_d, svc) = service();
    let la = lay("md1", 2);
    let lb = lay("md2", 3);
    let a = base(vec![la.clone()], T0, &[], &[]);
    let b = base(vec![lb.clone()], T0 + 1, &[], &[]);
    load_imgs(&svc, &[&a, &b]).await;
    let (d1, d2, d3) = (fake_digest('1'), fake_digest('2'), fake_digest('3'));
    add_digest(&svc, &format!("a@{d1}"), &a.id());
    add_digest(&svc, &format!("a@{d2}"), &a.id());
    add_digest(&svc, &format!("a@{d3}"), &b.id());
    add_digest(&svc, &format!("b@{d1}"), &b.id());
    let r = svc.images_prune(Filters::new()).await.unwrap();
    assert_groups(
        r.images_deleted.as_deref().unwrap(),
        &[
            vec![
                u(&format!("a@{d1}")),
                u(&format!("a@{d2}")),
                d(&a.id()),
                d(&chains(&[la])[0]),
            ],
            vec![
                u(&format!("a@{d3}")),
                u(&format!("b@{d1}")),
                d(&b.id()),
                d(&chains(&[lb])[0]),
            ],
        ],
    );
    assert_eq!(r.space_reclaimed, 5);
    assert_verified(&svc);
}

/// Prune -a on a tagged base with a tagged, unused child: both go, in one of
/// the two orders Docker's unordered iteration allows.
#[tokio::test]
async fn prune_all_tagged_parent_and_child() {
    let (_d, svc) = service();
    let lb = lay("pb", 2);
    let lc = lay("pc", 3);
    let b = base(vec![lb.clone()], T0, &[], &["base:1"]);
    let c = child(&b, Some(lc.clone()), T0 + 1, &[], &["child:1"]);
    load_imgs(&svc, &[&b, &c]).await;
    let ch = chains(&[lb, lc]);
    let r = svc
        .images_prune(filters(r#"{"dangling":["false"]}"#))
        .await
        .unwrap();
    let got = r.images_deleted.unwrap();
    let child_first = vec![
        u("child:1"),
        d(&c.id()),
        d(&ch[1]),
        u("base:1"),
        d(&b.id()),
        d(&ch[0]),
    ];
    let base_first = vec![
        u("base:1"),
        u("child:1"),
        d(&c.id()),
        d(&ch[1]),
        d(&b.id()),
        d(&ch[0]),
    ];
    assert!(got == child_first || got == base_first, "{got:#?}");
    assert_eq!(r.space_reclaimed, 5);
    assert_eq!(svc.count_images().await.unwrap(), 0);
    assert_verified(&svc);
}
