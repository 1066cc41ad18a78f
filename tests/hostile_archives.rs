//! Untrusted archives: each gets a clear error naming what is wrong, and the
//! store's log, tables, blobs and ingest directory are left exactly as they
//! were. Layers over 1 MiB take the streaming path (written into an ingest as
//! the archive streams by), so the cases are run with small and large layers.

mod common;
use common::builder::*;
use common::*;

/// One raw tar entry: name, type flag, link target, content.
struct Raw<'a>(&'a str, u8, &'a str, &'a [u8]);

/// A tar written header by header, so names the `tar` crate would refuse
/// (`../x`, absolute paths) can be produced.
fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for Raw(name, flag, link, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = *flag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn good_image() -> Img {
    base(
        vec![layer(&[("etc/hostname", b"box\n")])],
        1_600_000_000,
        &[],
        &["good:1"],
    )
}

fn manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!([{"Config": config, "RepoTags": ["bad:1"], "Layers": layers}]),
    )
    .unwrap()
}

/// Load `bytes` into a store that already holds one image; expect an error
/// containing `want`, and an unchanged store.
async fn refused(case: &str, bytes: Vec<u8>, want: &str) {
    let (_d, svc) = service();
    load_imgs(&svc, &[&good_image()]).await;
    let head = svc.store().head().unwrap();
    let blobs = svc.store().content().list().unwrap();
    let listing = svc
        .images(strata::Filters::new(), true, false)
        .await
        .unwrap();
    let err = svc
        .load_image(std::io::Cursor::new(bytes), true)
        .await
        .expect_err(case);
    assert_eq!(
        err.kind(),
        strata::ErrorKind::InvalidArgument,
        "{case}: {err}"
    );
    assert!(
        err.message().contains(want),
        "{case}: {:?} does not contain {want:?}",
        err.message()
    );
    assert_eq!(svc.store().head().unwrap(), head, "{case}: the log changed");
    assert_eq!(
        svc.store().content().list().unwrap(),
        blobs,
        "{case}: the blob set changed"
    );
    assert_eq!(
        std::fs::read_dir(svc.store().root().join("ingest"))
            .unwrap()
            .count(),
        0,
        "{case}: files were left in ingest/"
    );
    assert_eq!(
        svc.images(strata::Filters::new(), true, false)
            .await
            .unwrap(),
        listing,
        "{case}"
    );
    assert_verified(&svc);
}

#[tokio::test]
async fn hostile_archives_are_refused_and_change_nothing() {
    let img = good_image();
    let cfg_name = format!("{}.json", &img.id()[7..]);
    let layer_bytes = img.layers[0].clone();
    let ok_manifest = manifest(&cfg_name, &["l.tar"]);

    refused("not a tar", vec![7u8; 4096], "invalid tar header").await;
    refused("empty input", Vec::new(), "no manifest.json").await;
    refused(
        "dot-dot entry",
        raw_tar(&[Raw("../evil", b'0', "", b"x")]),
        "\"../evil\" is outside of the archive",
    )
    .await;
    refused(
        "absolute entry",
        raw_tar(&[Raw("/etc/evil", b'0', "", b"x")]),
        "\"/etc/evil\" has an absolute path",
    )
    .await;
    refused(
        "symlink out of the archive",
        raw_tar(&[Raw("manifest.json", b'2', "../../etc/passwd", b"")]),
        "links to \"../../etc/passwd\", outside of the archive",
    )
    .await;
    refused(
        "absolute symlink",
        raw_tar(&[Raw("manifest.json", b'2', "/etc/passwd", b"")]),
        "links to the absolute path \"/etc/passwd\"",
    )
    .await;
    refused(
        "hardlink out of the archive",
        raw_tar(&[Raw("l.tar", b'1', "../../x", b"")]),
        "links to \"../../x\", outside of the archive",
    )
    .await;
    refused(
        "manifest names a missing layer",
        raw_tar(&[
            Raw(&cfg_name, b'0', "", &img.config),
            Raw("manifest.json", b'0', "", &ok_manifest),
        ]),
        "archive has no file \"l.tar\" named in manifest.json",
    )
    .await;
    refused(
        "manifest path escapes",
        raw_tar(&[Raw(
            "manifest.json",
            b'0',
            "",
            &manifest("../../../../etc/hostname", &[]),
        )]),
        "path \"../../../../etc/hostname\" in manifest.json is outside of the archive",
    )
    .await;
    let mut other = img.config.clone();
    other.push(b' ');
    refused(
        "config does not match its digest name",
        raw_tar(&[
            Raw(&cfg_name, b'0', "", &other),
            Raw("l.tar", b'0', "", &layer_bytes),
            Raw("manifest.json", b'0', "", &ok_manifest),
        ]),
        "does not match its digest",
    )
    .await;
    let tampered = layer(&[("etc/hostname", b"EVIL\n")]);
    refused(
        "layer does not match its DiffID (even though the store has that layer)",
        raw_tar(&[
            Raw(&cfg_name, b'0', "", &img.config),
            Raw("l.tar", b'0', "", &tampered),
            Raw("manifest.json", b'0', "", &ok_manifest),
        ]),
        "invalid diffID for layer 0: expected",
    )
    .await;
    refused(
        "layers length mismatch",
        raw_tar(&[
            Raw(&cfg_name, b'0', "", &img.config),
            Raw("manifest.json", b'0', "", &manifest(&cfg_name, &[])),
        ]),
        "invalid manifest, layers length mismatch: expected 0, got 1",
    )
    .await;
    let escaping_layer = raw_tar(&[Raw("../../outside", b'0', "", b"x")]);
    let esc = base(vec![escaping_layer.clone()], 1_600_000_000, &[], &["bad:1"]);
    let esc_cfg = format!("{}.json", &esc.id()[7..]);
    refused(
        "layer entry escapes the layer root",
        raw_tar(&[
            Raw(&esc_cfg, b'0', "", &esc.config),
            Raw("l.tar", b'0', "", &escaping_layer),
            Raw("manifest.json", b'0', "", &manifest(&esc_cfg, &["l.tar"])),
        ]),
        "entry \"../../outside\" is outside of the layer root",
    )
    .await;
    let whole = archive(&[&img]);
    refused("truncated archive", whole[..whole.len() / 2].to_vec(), "").await;
    refused(
        "config without rootfs",
        raw_tar(&[
            Raw("c.json", b'0', "", br#"{"os":"linux"}"#),
            Raw("manifest.json", b'0', "", &manifest("c.json", &[])),
        ]),
        "invalid image JSON, no RootFS key",
    )
    .await;
    refused(
        "windows image",
        raw_tar(&[
            Raw(
                "c.json",
                b'0',
                "",
                br#"{"os":"windows","rootfs":{"type":"layers"}}"#,
            ),
            Raw("manifest.json", b'0', "", &manifest("c.json", &[])),
        ]),
        "cannot load windows image on linux",
    )
    .await;
    refused(
        "manifest is not JSON",
        raw_tar(&[Raw("manifest.json", b'0', "", b"{not json")]),
        "invalid manifest.json",
    )
    .await;
}

/// 2 MiB of incompressible-looking bytes, so a layer holding them is large.
fn big_file(seed: u8) -> Vec<u8> {
    noise(0x9e37_79b9_7f4a_7c15 ^ ((seed as u64) << 8), 2 << 20)
}

#[tokio::test]
async fn large_hostile_layers_are_refused_and_change_nothing() {
    let big = big_file(1);
    let img = base(
        vec![layer(&[("data.bin", &big)])],
        1_600_000_000,
        &[],
        &["big:1"],
    );
    let cfg_name = format!("{}.json", &img.id()[7..]);
    let ok_manifest = manifest(&cfg_name, &["l.tar"]);
    let tampered = layer(&[("data.bin", &big_file(2))]);
    refused(
        "large layer does not match its DiffID",
        raw_tar(&[
            Raw(&cfg_name, b'0', "", &img.config),
            Raw("l.tar", b'0', "", &tampered),
            Raw("manifest.json", b'0', "", &ok_manifest),
        ]),
        &format!(
            "invalid diffID for layer 0: expected {:?}, got {:?}",
            sha(&img.layers[0]),
            sha(&tampered)
        ),
    )
    .await;
    let escaping = raw_tar(&[Raw("../../outside", b'0', "", &big)]);
    let esc = base(vec![escaping.clone()], 1_600_000_000, &[], &["bad:1"]);
    let esc_cfg = format!("{}.json", &esc.id()[7..]);
    refused(
        "large layer entry escapes the layer root",
        raw_tar(&[
            Raw(&esc_cfg, b'0', "", &esc.config),
            Raw("l.tar", b'0', "", &escaping),
            Raw("manifest.json", b'0', "", &manifest(&esc_cfg, &["l.tar"])),
        ]),
        "layer 0 (l.tar): entry \"../../outside\" is outside of the layer root",
    )
    .await;
    let mut not_tar = big.clone();
    not_tar[..512].fill(0xff);
    let nt = base(vec![not_tar.clone()], 1_600_000_000, &[], &["bad:1"]);
    let nt_cfg = format!("{}.json", &nt.id()[7..]);
    refused(
        "large layer is not a tar",
        raw_tar(&[
            Raw(&nt_cfg, b'0', "", &nt.config),
            Raw("l.tar", b'0', "", &not_tar),
            Raw("manifest.json", b'0', "", &manifest(&nt_cfg, &["l.tar"])),
        ]),
        "layer 0 (l.tar): invalid tar stream",
    )
    .await;
    let two_items = serde_json::to_vec(&serde_json::json!([
        {"Config": cfg_name, "RepoTags": ["big:1"], "Layers": ["l.tar"]},
        {"Config": cfg_name, "RepoTags": ["big:2"], "Layers": ["missing.tar"]},
    ]))
    .unwrap();
    refused(
        "a good large layer, then an image whose layer is missing",
        raw_tar(&[
            Raw(&cfg_name, b'0', "", &img.config),
            Raw("l.tar", b'0', "", &img.layers[0]),
            Raw("manifest.json", b'0', "", &two_items),
        ]),
        "archive has no file \"missing.tar\" named in manifest.json",
    )
    .await;
    let fresh = layer(&[("etc/hostname", b"fresh\n")]);
    let fresh_img = base(vec![fresh.clone()], 1_600_000_000, &[], &["f:1"]);
    let fresh_cfg = format!("{}.json", &fresh_img.id()[7..]);
    let fresh_then_missing = serde_json::to_vec(&serde_json::json!([
        {"Config": fresh_cfg, "RepoTags": ["f:1"], "Layers": ["s.tar"]},
        {"Config": fresh_cfg, "RepoTags": ["f:2"], "Layers": ["missing.tar"]},
    ]))
    .unwrap();
    refused(
        "a good small layer, then an image whose layer is missing",
        raw_tar(&[
            Raw(&fresh_cfg, b'0', "", &fresh_img.config),
            Raw("s.tar", b'0', "", &fresh),
            Raw("manifest.json", b'0', "", &fresh_then_missing),
        ]),
        "archive has no file \"missing.tar\" named in manifest.json",
    )
    .await;
}

/// A large uncompressed layer (streamed into the content store as the
/// archive is read) and a config over 1 MiB load as the small ones do: the
/// same IDs, the layer's blob named by its DiffID, nothing left in ingest/.
#[tokio::test]
async fn large_entries_load_like_small_ones() {
    let big = big_file(3);
    let label = "x".repeat(1 << 20);
    let img = base(
        vec![
            layer(&[("small", b"s")]),
            layer(&[("data.bin", &big)]),
            layer(&[("data.bin", &big)]),
        ],
        1_600_000_000,
        &[("big", &label)],
        &["big:1"],
    );
    assert!(img.config.len() > 1 << 20);
    let (_d, svc) = service();
    let report = svc
        .load_image(std::io::Cursor::new(archive(&[&img])), true)
        .await
        .unwrap();
    assert_eq!(report.lines, vec!["Loaded image: big:1".to_string()]);
    assert_eq!(report.images, vec![img.id()]);
    let blobs = svc.store().content().list().unwrap();
    for l in &img.layers {
        assert!(blobs.contains(&sha(l)), "layer blob {} missing", sha(l));
        assert_eq!(
            std::fs::read(svc.store().content().path(&sha(l))).unwrap(),
            *l
        );
    }
    assert_eq!(
        std::fs::read_dir(svc.store().root().join("ingest"))
            .unwrap()
            .count(),
        0
    );
    let inspect = svc.lookup_image("big:1").await.unwrap();
    assert_eq!(inspect.id, img.id());
    assert_eq!(
        inspect.size,
        img.layers.iter().map(|l| diff_size(l)).sum::<u64>() as i64
    );
    assert_verified(&svc);
}

/// The sum of the sizes of a layer tar's entries (Docker's DiffSize).
fn diff_size(tar_bytes: &[u8]) -> u64 {
    tar::Archive::new(tar_bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().size())
        .sum()
}

#[tokio::test]
async fn empty_manifest_loads_nothing() {
    let (_d, svc) = service();
    let report = svc
        .load_image(
            std::io::Cursor::new(raw_tar(&[Raw("manifest.json", b'0', "", b"[]")])),
            true,
        )
        .await
        .unwrap();
    assert!(report.lines.is_empty() && report.images.is_empty());
    assert_eq!(svc.store().head().unwrap(), strata::LogHead::EMPTY);
}
