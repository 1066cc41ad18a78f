//! Containers' read-write layers, commit (image-service.md §5.3), squash
//! (§5.6) and the layer housekeeping methods of §7.
//!
//! A container's read-write layer is the directory
//! `<root>/containers/<id>/rw`: a full copy of its image's filesystem (vfs
//! semantics) that the container's user changes in place. It is not in the
//! event log. Crash story: `create_container` records the container
//! (`ContainerCreated`) and then copies the image's filesystem into a
//! temporary sibling that is renamed to `rw`; a crash in between leaves a
//! record without `rw`, and [`ImageService::container_rw_path`] (and every
//! method that needs the directory) rebuilds it from the image on demand —
//! which is the same state, since nothing could have written into it yet.
//! `remove_container` records `ContainerRemoved` first and removes the
//! directory after; a crash in between leaves an orphan directory for a
//! container that no longer exists ([`ImageService::prune_orphan_layers`]
//! removes it). Changes made inside an existing `rw` are the container's
//! own data and are lost only if that directory is.
//!
//! A commit diffs `rw` against the materialized filesystem of the image
//! (`<root>/layers/<chain hex>`, see [`crate::rootfs`]), registers the tar
//! as a layer, and creates the image in one write (`LayerRegistered`,
//! `ImageCreated` with source `Commit` and the container's image as parent,
//! `ReferenceAdded` when a repository is given).

use super::ImageService;
use super::lookup::{self, TagPath, get_image};
use crate::config::{ContainerConfig, GoTime, History, ImageConfig, RootFs};
use crate::error::{Error, Result};
use crate::event::ImageSource;
use crate::layer::IngestedLayer;
use crate::reference::Reference;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// DiffID of the 1024-byte empty tar: a commit of it adds no layer.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// One container of `GET /system/df` (a subset of the Engine API's `Container`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DfContainer {
    /// Container ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// `["/<name>"]`.
    #[serde(rename = "Names")]
    pub names: Vec<String>,
    /// The image as named at creation (strata records the image ID).
    #[serde(rename = "Image")]
    pub image: String,
    /// Image ID.
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The command (`""`: strata records none).
    #[serde(rename = "Command")]
    pub command: String,
    /// Creation time, unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    /// Bytes changed in the read-write layer.
    #[serde(rename = "SizeRw")]
    pub size_rw: i64,
    /// Image size + SizeRw.
    #[serde(rename = "SizeRootFs")]
    pub size_root_fs: i64,
    /// Always `created`: strata runs no processes.
    #[serde(rename = "State")]
    pub state: String,
    /// Always `Created`.
    #[serde(rename = "Status")]
    pub status: String,
}

/// The body of `GET /system/df` (engine-api.md §4.8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// `LayersSize`: [`ImageService::layer_disk_usage`].
    #[serde(rename = "LayersSize")]
    pub layers_size: i64,
    /// `Images`: `Images(no filters, all=false, withExtraAttrs=true)`.
    #[serde(rename = "Images")]
    pub images: Vec<super::ImageSummary>,
    /// `Containers`: the store's container records.
    #[serde(rename = "Containers")]
    pub containers: Vec<DfContainer>,
    /// `Volumes`: always `[]`.
    #[serde(rename = "Volumes")]
    pub volumes: Vec<serde_json::Value>,
    /// `BuildCache`: always `null`.
    #[serde(rename = "BuildCache")]
    pub build_cache: Option<Vec<serde_json::Value>>,
    /// `BuilderSize`: always 0.
    #[serde(rename = "BuilderSize")]
    pub builder_size: i64,
}

/// Docker's `merge(userConf, imageConf)` (daemon/commit.go, also used by create).
pub(crate) fn merge(user: &mut ContainerConfig, image: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = image.user.clone();
    }
    if user.exposed_ports.as_ref().is_none_or(|p| p.is_empty()) {
        user.exposed_ports = image.exposed_ports.clone();
    } else if let (Some(u), Some(i)) = (user.exposed_ports.as_mut(), &image.exposed_ports) {
        u.extend(i.iter().cloned());
    }
    if user.env.as_ref().is_none_or(|e| e.is_empty()) {
        user.env = image.env.clone();
    } else if let Some(u) = user.env.as_mut() {
        for ie in image.env.iter().flatten() {
            let key = ie.split('=').next().unwrap_or("");
            if !u.iter().any(|ue| ue.split('=').next().unwrap_or("") == key) {
                u.push(ie.clone());
            }
        }
    }
    let labels = user.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in image.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
        if user.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            user.cmd = image.cmd.clone();
            user.args_escaped = image.args_escaped;
        }
        if user.entrypoint.is_none() {
            user.entrypoint = image.entrypoint.clone();
        }
    }
    if let Some(ih) = &image.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(ih.clone()),
            Some(uh) => {
                if uh.test.is_empty() {
                    uh.test = ih.test.clone();
                }
                if uh.interval == 0 {
                    uh.interval = ih.interval;
                }
                if uh.timeout == 0 {
                    uh.timeout = ih.timeout;
                }
                if uh.start_period == 0 {
                    uh.start_period = ih.start_period;
                }
                if uh.retries == 0 {
                    uh.retries = ih.retries;
                }
            }
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir = image.working_dir.clone();
    }
    if user.volumes.as_ref().is_none_or(|v| v.is_empty()) {
        user.volumes = image.volumes.clone();
    } else if let (Some(u), Some(i)) = (user.volumes.as_mut(), &image.volumes) {
        u.extend(i.iter().cloned());
    }
    if user.stop_signal.is_empty() {
        user.stop_signal = image.stop_signal.clone();
    }
}

/// The config `docker create IMAGE` (no command, no options) gives a
/// container: the CLI's defaults (attach stdout/stderr, empty labels), the
/// daemon's hostname (short ID), merged with the image's config. strata's
/// container records keep no config, so this is rebuilt when needed; the
/// `Image` field holds the image ID (the name used at creation is not recorded).
pub(crate) fn container_config(
    container_id: &str,
    image_id: &str,
    image: Option<&ContainerConfig>,
) -> ContainerConfig {
    let mut c = ContainerConfig {
        hostname: container_id.chars().take(12).collect(),
        attach_stdout: true,
        attach_stderr: true,
        image: image_id.to_string(),
        labels: Some(BTreeMap::new()),
        ..ContainerConfig::default()
    };
    if let Some(img) = image {
        merge(&mut c, img);
    }
    c
}

/// Docker's GOARCH name of this host.
fn host_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_string()
}

fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

/// `<root>/containers/<id>/rw`.
pub(crate) fn rw_path(root: &Path, id: &str) -> PathBuf {
    containers_dir(root).join(id).join("rw")
}

/// Make `rw` for container `id` from the filesystem `rootfs` unless it exists.
pub(crate) fn make_rw(root: &Path, id: &str, rootfs: &Path) -> Result<PathBuf> {
    let rw = rw_path(root, id);
    if rw.is_dir() {
        return Ok(rw);
    }
    let dir = containers_dir(root).join(id);
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".rw-tmp-{}", crate::store::now_unix_nanos()));
    if let Err(e) = crate::rootfs::copy_tree(rootfs, &tmp) {
        let _ = crate::rootfs::remove_tree(&tmp);
        return Err(e.context(format!("preparing the filesystem of container {id}")));
    }
    match std::fs::rename(&tmp, &rw) {
        Ok(()) => Ok(rw),
        Err(_) if rw.is_dir() => {
            let _ = crate::rootfs::remove_tree(&tmp);
            Ok(rw)
        }
        Err(e) => Err(e.into()),
    }
}

/// Remove a container's directory (best effort is the caller's choice).
pub(crate) fn remove_rw(root: &Path, id: &str) -> Result<()> {
    crate::rootfs::remove_tree(&containers_dir(root).join(id))
}

/// What a commit needs to know about the container, read in one snapshot.
struct Source {
    id: String,
    image_id: String,
    top_layer: Option<String>,
    parent: ImageConfig,
    parent_layers: Vec<IngestedLayer>,
}

fn layers_of(t: &crate::projection::ReadTables, top: Option<&str>) -> Result<Vec<IngestedLayer>> {
    let mut out = Vec::new();
    let mut cur = top.map(str::to_string);
    while let Some(c) = cur {
        let row = t
            .layer(&c)?
            .ok_or_else(|| Error::internal(format!("layer {c} does not exist")))?;
        out.push(IngestedLayer {
            diff_id: row.diff_id.clone(),
            diff_size: row.diff_size,
        });
        cur = row.parent;
    }
    out.reverse();
    Ok(out)
}

impl ImageService {
    fn container_source(&self, container: &str) -> Result<Source> {
        let root = self.store().root().to_path_buf();
        self.store().read(|t| {
            let (id, row) = super::containers::find(t, container)?;
            let Some(bytes) = t.config(&row.image)? else {
                return Err(Error::internal(format!(
                    "failed to get digest {}: open {}/imagedb/content/sha256/{}: no such file or directory",
                    row.image,
                    root.display(),
                    crate::digest::hex_part(&row.image)
                )));
            };
            let parent = ImageConfig::from_json(&bytes)?;
            let parent_layers = layers_of(t, row.top_layer.as_deref())?;
            Ok(Source {
                id,
                image_id: row.image,
                top_layer: row.top_layer,
                parent,
                parent_layers,
            })
        })
    }

    /// The container's read-write directory, rebuilt from its image when
    /// missing (`container` = ID, unique ID prefix or name).
    fn rw_of(&self, src: &Source) -> Result<(PathBuf, PathBuf)> {
        let rootfs = crate::rootfs::materialize(self.store(), src.top_layer.as_deref())?;
        let rw = make_rw(self.store().root(), &src.id, &rootfs)?;
        Ok((rw, rootfs))
    }

    /// Diff `new` against `old` into a staged layer blob.
    fn stage_diff(&self, new: &Path, old: &Path) -> Result<IngestedLayer> {
        let content = self.store().content();
        let lease = content.lease();
        let staged = content.staging_file(&lease)?;
        let file = staged.reopen()?;
        let w = crate::diff::diff_dirs(
            new,
            old,
            crate::diff::now_rounded(),
            std::io::BufWriter::new(file),
        )?;
        w.into_inner()
            .map_err(|e| Error::from(e.into_error()))?
            .sync_all()?;
        let layer =
            crate::layer::ingest_layer(content, std::fs::File::open(staged.path())?, "layer")?;
        Ok(layer)
    }

    /// The path of a container's read-write directory (`<root>/containers/<id>/rw`),
    /// creating it from the image's filesystem when it is missing.
    pub async fn container_rw_path(&self, container: &str) -> Result<PathBuf> {
        let container = container.to_string();
        self.blocking(move |s| {
            let src = s.container_source(&container)?;
            Ok(s.rw_of(&src)?.0)
        })
        .await
    }

    /// `CommitImage` via `CreateImageFromContainer` (§5.3): the container's
    /// changes become a layer on its image; `changes` (Dockerfile lines) are
    /// applied to the container's config and merged with it; `author` and
    /// `comment` go to the config and the history entry (no top-level
    /// `comment`). An empty diff adds no layer and marks the history entry
    /// `empty_layer`. With `repo`, the image is tagged `repo[:tag]`; a bad
    /// reference fails (Internal) after the image was created, as in Docker.
    /// Returns the image ID.
    ///
    /// Errors: `No such container: <name>` (NotFound), change errors
    /// (InvalidArgument), `failed to get digest …` when the container's image
    /// was deleted, filesystem errors. The container event `commit` is not
    /// recorded (the store has no container events).
    pub async fn commit_image(
        &self,
        container: &str,
        repo: Option<&str>,
        tag: Option<&str>,
        author: &str,
        comment: &str,
        changes: &[String],
    ) -> Result<String> {
        self.commit_image_with(container, repo, tag, author, comment, changes, true, None)
            .await
    }

    /// [`ImageService::commit_image`] with the remaining parameters of
    /// Docker's `CreateImageConfig`:
    ///
    /// * `pause` (Docker's default `true`): Docker pauses a running
    ///   container for the commit. strata runs no processes, so the flag is
    ///   accepted and has no effect; Docker records it nowhere (not in the
    ///   image config, not in the history), and neither does strata.
    /// * `config`: the `POST /commit` body. When given, it replaces the
    ///   container's config as the base `changes` are applied to; the
    ///   result is then merged with the container's config (empty fields
    ///   filled from it, as in dockerd's `merge`). `container_config` and
    ///   the history's `created_by` still come from the container's own
    ///   config (dockerd's `ContainerConfig: container.Config`).
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_image_with(
        &self,
        container: &str,
        repo: Option<&str>,
        tag: Option<&str>,
        author: &str,
        comment: &str,
        changes: &[String],
        pause: bool,
        config: Option<crate::config::ContainerConfig>,
    ) -> Result<String> {
        let _ = pause;
        let override_config = config;
        let container = container.to_string();
        let repo = repo.filter(|r| !r.is_empty()).map(str::to_string);
        let tag = tag.filter(|t| !t.is_empty()).map(str::to_string);
        let (author, comment) = (author.to_string(), comment.to_string());
        let changes = changes.to_vec();
        self.blocking(move |s| {
            let src = s.container_source(&container)?;
            let recorded = s.store().read(|t| t.container_config(&src.id))?;
            let own = match recorded {
                Some(bytes) => crate::config::ContainerConfig::from_json(&bytes)?,
                None => container_config(&src.id, &src.image_id, src.parent.config.as_ref()),
            };
            let base = override_config.as_ref().unwrap_or(&own);
            let mut config = crate::changes::build_from_config(base, &changes)?;
            merge(&mut config, &own);
            let (rw, rootfs) = s.rw_of(&src)?;
            let layer = s.stage_diff(&rw, &rootfs)?;
            let empty = layer.diff_id == EMPTY_LAYER_DIFF_ID;
            let created = GoTime::now_utc();
            let mut rootfs_cfg = src.parent.rootfs.clone().unwrap_or(RootFs {
                fs_type: "layers".to_string(),
                diff_ids: Vec::new(),
            });
            if !empty {
                rootfs_cfg.diff_ids.push(layer.diff_id.clone());
            }
            let mut history = src.parent.history.clone();
            history.push(History {
                created,
                author: author.clone(),
                created_by: own.cmd.clone().unwrap_or_default().join(" "),
                comment: comment.clone(),
                empty_layer: empty,
            });
            let architecture = if src.parent.architecture.is_empty() {
                host_arch()
            } else {
                src.parent.architecture.clone()
            };
            let cfg = ImageConfig {
                created,
                container: src.id.clone(),
                container_config: own,
                docker_version: crate::config::DOCKER_VERSION.to_string(),
                author,
                config: Some(config),
                architecture,
                variant: src.parent.variant.clone(),
                os: "linux".to_string(),
                rootfs: Some(rootfs_cfg),
                history,
                os_version: src.parent.os_version.clone(),
                os_features: src.parent.os_features.clone(),
                ..ImageConfig::default()
            };
            let bytes = cfg.to_docker_json();
            let mut layers = src.parent_layers.clone();
            if !empty {
                layers.push(layer);
            }
            s.store()
                .write(&s.actor, |w| {
                    crate::layer::register_layers(w, &layers)?;
                    if !w.tables().has_image(&src.image_id)? {
                        return Err(Error::internal(format!(
                            "failed to get digest {}: no such image",
                            src.image_id
                        )));
                    }
                    let id =
                        super::create_image_in(w, bytes, Some(&src.image_id), ImageSource::Commit)?;
                    let Some(repo) = &repo else {
                        return Ok(Ok(id));
                    };
                    let r = match Reference::parse_normalized_named(repo) {
                        Ok(r) => r,
                        Err(e) => return Ok(Err(Error::internal(e.message()))),
                    };
                    let r = match &tag {
                        Some(t) => match r.with_tag(t) {
                            Ok(r) => r,
                            Err(e) => return Ok(Err(Error::internal(e.message()))),
                        },
                        None => r,
                    };
                    match lookup::add_tag(w, &r, &id, TagPath::UserTag) {
                        Ok(()) => Ok(Ok(id)),
                        Err(e) => Ok(Err(e)),
                    }
                })
                .and_then(|r| r)
        })
        .await
    }

    /// `SquashImage(id, parent)` (§5.6): one layer holding the difference
    /// between image `id`'s filesystem and `parent`'s (everything when no
    /// parent), on top of the parent's layers; history entries beyond the
    /// parent's marked `empty_layer` plus a `merge <id> to <parent>` /
    /// `create new from <id>` entry. No parent metadata, tag or event.
    /// Returns the new image ID.
    pub async fn squash_image(&self, id: &str, parent: Option<&str>) -> Result<String> {
        let id = id.to_string();
        let parent = parent.filter(|p| !p.is_empty()).map(str::to_string);
        self.blocking(move |s| {
            let (img_id, img, meta_parent, top, pinfo) = s.store().read(|t| {
                let found = get_image(t, &id)?;
                let cfg = ImageConfig::from_json(
                    &t.config(&found.id)?
                        .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?,
                )?;
                let pinfo = match &parent {
                    Some(p) => {
                        let pf = get_image(t, p)
                            .map_err(|e| e.context("error getting specified parent layer"))?;
                        let pcfg = ImageConfig::from_json(&t.config(&pf.id)?.unwrap_or_default())?;
                        let layers = layers_of(t, pf.row.top_layer.as_deref())?;
                        Some((pf.id, pcfg, pf.row.top_layer, layers))
                    }
                    None => None,
                };
                // Docker's TarStreamFrom: the parent's chain must lie
                // strictly below the image's top layer.
                if let Some(Some(pchain)) = pinfo.as_ref().map(|p| p.2.as_ref()) {
                    let mut below = match found.row.top_layer.as_deref() {
                        Some(top) => t.layer(top)?.and_then(|r| r.parent),
                        None => None,
                    };
                    loop {
                        match below {
                            Some(c) if c == *pchain => break,
                            Some(c) => below = t.layer(&c)?.and_then(|r| r.parent),
                            None => {
                                return Err(Error::internal(format!(
                                    "error getting tar stream to parent: layer ID '{pchain}' \
                                     is not a parent of the specified layer: cannot provide \
                                     diff to non-parent"
                                )));
                            }
                        }
                    }
                }
                Ok((found.id, cfg, found.row.parent, found.row.top_layer, pinfo))
            })?;
            let new_fs = crate::rootfs::materialize(s.store(), top.as_deref())
                .map_err(|e| e.context("error getting image layer"))?;
            let parent_top = pinfo.as_ref().and_then(|p| p.2.clone());
            let old_fs = crate::rootfs::materialize(s.store(), parent_top.as_deref())
                .map_err(|e| e.context("error getting tar stream to parent"))?;
            let layer = s
                .stage_diff(&new_fs, &old_fs)
                .map_err(|e| e.context("error registering layer"))?;
            let now = GoTime::now_utc();
            let mut cfg = img;
            // dockerd's image store reads Parent from the metadata only
            // (empty when there is none), whatever the config says.
            cfg.parent = meta_parent.clone().unwrap_or_default();
            let (mut rootfs, parent_history, mut layers, comment) = match &pinfo {
                Some((pid, pcfg, _, layers)) => (
                    pcfg.rootfs.clone().unwrap_or(RootFs {
                        fs_type: "layers".to_string(),
                        diff_ids: Vec::new(),
                    }),
                    pcfg.history.len(),
                    layers.clone(),
                    format!("merge {img_id} to {pid}"),
                ),
                None => (
                    RootFs {
                        fs_type: "layers".to_string(),
                        diff_ids: Vec::new(),
                    },
                    0,
                    Vec::new(),
                    format!("create new from {img_id}"),
                ),
            };
            rootfs.diff_ids.push(layer.diff_id.clone());
            layers.push(layer);
            cfg.rootfs = Some(rootfs);
            for (i, h) in cfg.history.iter_mut().enumerate() {
                if i >= parent_history {
                    h.empty_layer = true;
                }
            }
            cfg.history.push(History {
                created: now,
                comment,
                ..History::default()
            });
            cfg.created = now;
            let bytes = cfg.to_docker_json();
            s.store().write(&s.actor, |w| {
                crate::layer::register_layers(w, &layers)?;
                super::create_image_in(w, bytes, None, ImageSource::Squash)
                    .map_err(|e| e.context("error creating new image after squash"))
            })
        })
        .await
    }

    /// `GetContainerLayerSize` (§7): `(SizeRw, SizeRootFs)`. SizeRw is the
    /// size of the files added or changed in the read-write layer (each
    /// hardlinked inode once), SizeRootFs the image's size plus SizeRw (0 when
    /// the container has no image layers). A failed part is -1.
    pub async fn container_layer_size(&self, container: &str) -> Result<(i64, i64)> {
        let container = container.to_string();
        self.blocking(move |s| {
            let src = s.container_source(&container)?;
            let size_rw = s
                .rw_of(&src)
                .and_then(|(rw, rootfs)| {
                    let ch = crate::diff::changes(&rw, &rootfs)?;
                    Ok(crate::diff::changes_size(&rw, &ch) as i64)
                })
                .unwrap_or(-1);
            let image_size = match &src.top_layer {
                Some(top) => s
                    .store()
                    .read(|t| Ok(t.layer(top)?.map(|l| l.size as i64)))?
                    .unwrap_or(-1),
                None => return Ok((size_rw, 0)),
            };
            let root_fs = if image_size == -1 {
                -1
            } else if size_rw == -1 {
                image_size
            } else {
                image_size + size_rw
            };
            Ok((size_rw, root_fs))
        })
        .await
    }

    /// `LayerDiskUsage` (§7): the DiffSize of every layer that is a chain
    /// prefix of an image with references or without children, each once.
    pub async fn layer_disk_usage(&self) -> Result<i64> {
        self.blocking(|s| s.store().read(layer_disk_usage_in)).await
    }

    /// `GET /system/df`: layers size, images with container counts and
    /// shared sizes, the store's containers with their sizes.
    pub async fn system_df(&self) -> Result<DiskUsage> {
        let layers_size = self.layer_disk_usage().await?;
        let images = self
            .images(crate::filters::Filters::new(), false, true)
            .await?;
        let mut containers = Vec::new();
        for c in self.containers().await? {
            let (size_rw, size_root_fs) = self.container_layer_size(&c.id).await?;
            let created = self
                .store()
                .read(|t| Ok(t.container(&c.id)?.map(|r| r.created_unix_nanos)))?
                .unwrap_or(0);
            containers.push(DfContainer {
                id: c.id,
                names: vec![format!("/{}", c.name)],
                image: c.image.clone(),
                image_id: c.image,
                command: String::new(),
                created: created.div_euclid(1_000_000_000),
                size_rw,
                size_root_fs,
                state: "created".to_string(),
                status: "Created".to_string(),
            });
        }
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
            volumes: Vec::new(),
            build_cache: None,
            builder_size: 0,
        })
    }

    /// Remove derived directories nothing refers to any more: cached layer
    /// filesystems of released chains and directories of removed
    /// containers. Returns how many were removed.
    pub async fn prune_orphan_layers(&self) -> Result<usize> {
        self.blocking(|s| {
            let mut n = crate::rootfs::prune_cache(s.store())?;
            let live: HashSet<String> = s
                .store()
                .read(|t| Ok(t.containers()?.into_iter().map(|(id, _)| id).collect()))?;
            if let Ok(rd) = std::fs::read_dir(containers_dir(s.store().root())) {
                for e in rd {
                    let e = e?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !live.contains(&name) {
                        crate::rootfs::remove_tree(&e.path())?;
                        n += 1;
                    }
                }
            }
            Ok(n)
        })
        .await
    }
}

fn layer_disk_usage_in(t: &crate::projection::ReadTables) -> Result<i64> {
    let mut counted: HashSet<String> = HashSet::new();
    let mut total = 0i64;
    for (id, row) in t.images()? {
        if t.refs_of(&id)?.is_empty() && t.has_children(&id)? {
            continue;
        }
        let mut cur = row.top_layer;
        while let Some(c) = cur {
            let Some(l) = t.layer(&c)? else { break };
            if counted.insert(c) {
                total += l.diff_size as i64;
            }
            cur = l.parent;
        }
    }
    Ok(total)
}
