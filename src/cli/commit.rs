//! `strata commit`, `strata container create` (with the read-write
//! directory) and `strata system df`.

use super::Failure;
use super::render;
use std::io::Write;
use strata::ImageService;

/// The client's ContainerCommit: the familiar name and tag (default
/// `latest`) a commit is tagged with, or `None` without a reference.
pub(crate) fn commit_target(reference: Option<&str>) -> Result<Option<(String, String)>, Failure> {
    let Some(r) = reference.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let parsed = strata::Reference::parse_normalized_named(r)
        .map_err(|e| Failure(e.message().to_string()))?;
    if parsed.digest().is_some() {
        return Err(Failure(
            "refusing to create a tag with a digest reference".to_string(),
        ));
    }
    let parsed = parsed.tag_name_only();
    let tag = parsed.tag().unwrap_or("latest").to_string();
    Ok(Some((parsed.familiar_name(), tag)))
}

/// `strata commit [-m MSG] [-a AUTHOR] [-c CHANGE]... CONTAINER [REPO[:TAG]]`.
///
/// As the docker CLI: the reference is parsed first (`REPO[:TAG]`, a
/// digest is refused, no tag means `latest`), then the daemon commits;
/// prints `sha256:<id>`. `pause` (`-p`, `--pause`, default true) is
/// accepted and has no effect: strata runs no processes.
#[allow(clippy::too_many_arguments)]
pub async fn commit(
    svc: &ImageService,
    out: &mut impl Write,
    message: Option<String>,
    author: Option<String>,
    changes: Vec<String>,
    container: String,
    reference: Option<String>,
    pause: bool,
) -> Result<(), Failure> {
    let target = commit_target(reference.as_deref())?;
    let (repo, tag) = target.unzip();
    let id = svc
        .commit_image_with(
            &container,
            repo.as_deref(),
            tag.as_deref(),
            author.as_deref().unwrap_or(""),
            message.as_deref().unwrap_or(""),
            &changes,
            pause,
            None,
        )
        .await?;
    writeln!(out, "{id}")?;
    Ok(())
}

/// `strata squash [--parent P] [-t REPO[:TAG]] IMAGE`: prints `sha256:<id>`.
/// The tag is checked before anything is made; the new image and its tag
/// are two writes (the tag is the last).
pub async fn squash(
    svc: &ImageService,
    out: &mut impl Write,
    image: String,
    parent: Option<String>,
    tag: Option<String>,
) -> Result<(), Failure> {
    let reference = match tag.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => {
            let r = strata::Reference::parse_normalized_named(t)
                .map_err(|e| Failure(e.message().to_string()))?;
            if r.digest().is_some() {
                return Err(Failure(
                    "refusing to create a tag with a digest reference".to_string(),
                ));
            }
            Some(r.tag_name_only())
        }
        None => None,
    };
    let id = svc.squash_image(&image, parent.as_deref()).await?;
    if let Some(r) = reference {
        svc.tag_image_with_reference(&id, &r).await?;
    }
    writeln!(out, "{id}")?;
    Ok(())
}

/// `strata container create [--name NAME] IMAGE`: prints `ID\tRWPATH`.
pub async fn container_create(
    svc: &ImageService,
    out: &mut impl Write,
    name: Option<String>,
    image: String,
) -> Result<(), Failure> {
    let id = svc.create_container(&image, name.as_deref()).await?;
    let rw = svc.container_rw_path(&id).await?;
    writeln!(out, "{id}\t{}", rw.display())?;
    Ok(())
}

/// `strata system df [--format json]`: docker CLI 20.10's table, or the
/// Engine API body as one JSON line.
pub async fn system_df(
    svc: &ImageService,
    out: &mut impl Write,
    json: bool,
) -> Result<(), Failure> {
    print_system_df(out, &svc.system_df().await?, json)
}

/// Print `du` as `strata system df` does (local and remote paths).
pub(super) fn print_system_df(
    out: &mut impl Write,
    du: &strata::DiskUsage,
    json: bool,
) -> Result<(), Failure> {
    if json {
        let line = serde_json::to_string(du).map_err(|e| Failure(e.to_string()))?;
        writeln!(out, "{line}")?;
        return Ok(());
    }
    let view = render::DiskUsage {
        layers_size: du.layers_size,
        images: du
            .images
            .iter()
            .map(|i| render::DfImage {
                containers: i.containers,
                virtual_size: i.virtual_size,
                shared_size: i.shared_size,
            })
            .collect(),
        containers: du
            .containers
            .iter()
            .map(|c| render::DfContainer {
                state: c.state.clone(),
                size_rw: c.size_rw,
            })
            .collect(),
        volumes: Vec::new(),
        build_cache: Vec::new(),
    };
    write!(out, "{}", render::render_system_df(&view))?;
    Ok(())
}
