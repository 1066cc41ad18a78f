//! [`ImageService`]: Docker 20.10's `daemon/images.ImageService`, on the store.
//!
//! Reads run on a snapshot; each mutation is one [`Store::write`]. Methods
//! are async and run the store work on tokio's blocking pool.

mod adopt;
mod commit;
mod containers;
pub(crate) use containers::check_container_name;
mod delete;
mod distribution;
mod import;
mod inspect;
mod list;
pub(crate) mod lookup;
mod oci;

pub use commit::{DfContainer, DiskUsage};
pub use containers::ContainerInfo;
pub use import::ImportOptions;
pub use inspect::{HistoryItem, ImageInspect};

use crate::error::{Error, Result};
use crate::event::{Actor, EventBody, ImageSource};
use crate::filters::Filters;
use crate::projection::ImageRow;
use crate::reference::Reference;
use crate::store::{Store, TablesVersion};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A container that uses an image, as the delete conflict rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUse {
    /// Container ID (64 hex).
    pub id: String,
    /// Running, paused or restarting (Docker's "running" for conflicts).
    pub running: bool,
}

/// Containers known outside the store (a runtime's own records): the seed's
/// `containerStore`. The store's own container records are always consulted too.
pub trait ContainerStore: Send + Sync {
    /// Every container whose image is `image_id`, in any state.
    fn containers_using(&self, image_id: &str) -> Vec<ContainerUse>;
}

/// One item of a delete or prune report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum DeleteItem {
    /// A reference was removed (familiar string).
    Untagged(String),
    /// An image or a layer (ChainID) was deleted.
    Deleted(String),
}

/// What `images_prune` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PruneReport {
    /// The untag and delete records, `null` in JSON when there are none.
    #[serde(rename = "ImagesDeleted")]
    pub images_deleted: Option<Vec<DeleteItem>>,
    /// Bytes of layers freed.
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// The Engine API's ImageSummary (one row of `GET /images/json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ImageSummary {
    /// Containers using the image (-1 unless extra attributes were asked for).
    #[serde(rename = "Containers")]
    pub containers: i64,
    /// Creation time, unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    /// Image ID.
    #[serde(rename = "Id")]
    pub id: String,
    /// Config labels (shared, not copied, between the listings of one
    /// version of the store).
    #[serde(rename = "Labels")]
    pub labels: Option<Arc<BTreeMap<String, String>>>,
    /// Parent image ID or "".
    #[serde(rename = "ParentId")]
    pub parent_id: String,
    /// Digest references.
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Option<Vec<String>>,
    /// Tag references.
    #[serde(rename = "RepoTags")]
    pub repo_tags: Option<Vec<String>>,
    /// Bytes shared with other images (-1 unless extra attributes were asked for).
    #[serde(rename = "SharedSize")]
    pub shared_size: i64,
    /// Image size.
    #[serde(rename = "Size")]
    pub size: i64,
    /// Same as Size.
    #[serde(rename = "VirtualSize")]
    pub virtual_size: i64,
}

struct Inner {
    store: Store,
    containers: Option<Arc<dyn ContainerStore>>,
    pruning: AtomicBool,
    listing: list::ListingCache,
}

/// Docker's image service on a strata store. Cheap to clone; clones share the store.
///
/// ```no_run
/// # async fn demo() -> strata::Result<()> {
/// let svc = strata::ImageService::open("/tmp/strata-demo")?;
/// let file = std::fs::File::open("image.tar")?;
/// let report = svc.load_image(file, true).await?;
/// for line in &report.lines { println!("{line}"); }
/// svc.tag_image("dev/chain:1", "dev/chain", "2").await?;
/// for img in svc.images(strata::Filters::new(), false, false).await? {
///     println!("{} {:?}", img.id, img.repo_tags);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
    actor: Actor,
    /// Blocking work runs in the awaiting task (see [`ImageService::on_calling_thread`]).
    inline: bool,
}

impl std::fmt::Debug for ImageService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageService")
            .field("store", &self.inner.store)
            .field("actor", &self.actor)
            .field("inline", &self.inline)
            .finish()
    }
}

impl ImageService {
    /// Open (creating if needed) the store at `root`.
    pub fn open(root: impl AsRef<std::path::Path>) -> Result<ImageService> {
        Ok(ImageService::new(Store::open(root)?, None))
    }

    /// A service on an open store, with an optional external container store.
    pub fn new(store: Store, containers: Option<Arc<dyn ContainerStore>>) -> ImageService {
        ImageService {
            inner: Arc::new(Inner {
                store,
                containers,
                pruning: AtomicBool::new(false),
                listing: list::ListingCache::default(),
            }),
            actor: Actor::current_process("strata-library"),
            inline: false,
        }
    }

    /// The same service, recording `actor` as who asks for its mutations.
    pub fn with_actor(&self, actor: Actor) -> ImageService {
        ImageService {
            inner: self.inner.clone(),
            actor,
            inline: self.inline,
        }
    }

    /// The same service, doing the blocking part of each call (reading and
    /// writing the tables) in the task that awaits it instead of on tokio's
    /// blocking pool, so that no thread is started for it.
    ///
    /// For a program that makes one call at a time on a current-thread
    /// runtime, such as a command-line tool: there, a short call spends
    /// as long starting and ending a pool thread as doing its work. While
    /// a call runs it holds the runtime's thread, so a program serving
    /// several callers at once must not use it. Transfers (pull, push)
    /// still use the pool.
    ///
    /// ```no_run
    /// # fn demo() -> strata::Result<()> {
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let svc = strata::ImageService::open("/tmp/strata-demo")?.on_calling_thread();
    /// rt.block_on(svc.tag_image("dev/chain:1", "dev/chain", "2"))?;
    /// # Ok(()) }
    /// ```
    pub fn on_calling_thread(&self) -> ImageService {
        ImageService {
            inline: true,
            ..self.clone()
        }
    }

    /// Who this service records as the actor of its mutations.
    pub(crate) fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&ImageService) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if self.inline {
            return f(self);
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| Error::internal(format!("worker failed: {e}")))?
    }

    fn external_containers(&self) -> Option<&dyn ContainerStore> {
        self.inner.containers.as_deref()
    }

    /// `GetImage`: the ID of the image `name` (a reference, an ID or an ID prefix) resolves to.
    pub async fn get_image(&self, name: &str) -> Result<String> {
        let name = name.to_string();
        self.blocking(move |s| s.store().read(|t| Ok(lookup::get_image(t, &name)?.id)))
            .await
    }

    /// `Images`: the listing of `GET /images/json`.
    pub async fn images(
        &self,
        filters: Filters,
        all: bool,
        extra: bool,
    ) -> Result<Vec<ImageSummary>> {
        Ok(self.images_versioned(filters, all, extra).await?.1)
    }

    /// [`ImageService::images`] and the version of the tables it listed.
    /// Without `extra` a listing depends on nothing else (with it, the
    /// container counts also read the external container store).
    pub(crate) async fn images_versioned(
        &self,
        filters: Filters,
        all: bool,
        extra: bool,
    ) -> Result<(TablesVersion, Vec<ImageSummary>)> {
        self.blocking(move |s| {
            s.store().read_versioned(|version, t| {
                let cache = &s.inner.listing;
                let images = list::images(
                    t,
                    version,
                    cache,
                    s.external_containers(),
                    &filters,
                    all,
                    extra,
                )?;
                Ok((version, images))
            })
        })
        .await
    }

    /// The version of the tables a read sees now.
    pub(crate) async fn tables_version(&self) -> Result<TablesVersion> {
        self.blocking(|s| s.store().read_versioned(|version, _| Ok(version)))
            .await
    }

    /// `LookupImage`: `GET /images/{name}/json`.
    pub async fn lookup_image(&self, name: &str) -> Result<ImageInspect> {
        let name = name.to_string();
        self.blocking(move |s| s.store().read(|t| inspect::inspect(t, &name)))
            .await
    }

    /// `ImageHistory`: `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let name = name.to_string();
        self.blocking(move |s| s.store().read(|t| inspect::history(t, &name)))
            .await
    }

    /// `Children`: IDs of images whose parent is `id`.
    pub async fn children(&self, id: &str) -> Result<Vec<String>> {
        let id = id.to_string();
        self.blocking(move |s| s.store().read(|t| t.children_of(&id)))
            .await
    }

    /// `CountImages`: all images, intermediates included.
    pub async fn count_images(&self) -> Result<u64> {
        self.blocking(|s| s.store().read(|t| t.image_count())).await
    }

    /// `Map`: every image's summary row by ID.
    pub async fn map(&self) -> Result<BTreeMap<String, ImageRow>> {
        self.blocking(|s| s.store().read(|t| Ok(t.images()?.into_iter().collect())))
            .await
    }

    /// `TagImage(source, repository, tag)`: references.md §6. Returns the familiar new tag.
    pub async fn tag_image(&self, source: &str, repository: &str, tag: &str) -> Result<String> {
        let (source, repository, tag) =
            (source.to_string(), repository.to_string(), tag.to_string());
        self.blocking(move |s| {
            s.store().write(&s.actor, |w| {
                let img = lookup::get_image(w.tables(), &source)?;
                let mut r = Reference::parse_normalized_named(&repository)
                    .map_err(|e| Error::internal(e.message()))?;
                if !tag.is_empty() {
                    r = r.with_tag(&tag).map_err(|e| Error::internal(e.message()))?;
                }
                lookup::add_tag(w, &r, &img.id, lookup::TagPath::UserTag)?;
                Ok(r.tag_name_only().familiar_string())
            })
        })
        .await
    }

    /// `TagImageWithReference(id, ref)`: tag an image by ID with a parsed reference.
    pub async fn tag_image_with_reference(&self, id: &str, reference: &Reference) -> Result<()> {
        let (id, r) = (id.to_string(), reference.clone());
        self.blocking(move |s| {
            s.store().write(&s.actor, |w| {
                if !w.tables().has_image(&id)? {
                    return Err(Error::not_found(format!("No such image: {id}")));
                }
                lookup::add_tag(w, &r, &id, lookup::TagPath::UserTag)
            })
        })
        .await
    }

    /// `ImageDelete(name, force, prune)`: delete-prune-filters.md §2.
    pub async fn image_delete(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<DeleteItem>> {
        let name = name.to_string();
        self.blocking(move |s| {
            s.store().write(&s.actor, |w| {
                let mut d = delete::Deleter {
                    w,
                    containers: s.external_containers(),
                    records: Vec::new(),
                };
                d.image_delete(&name, force, prune)?;
                Ok(d.records)
            })
        })
        .await
    }

    /// `ImagesPrune(filters)`: delete-prune-filters.md §4.
    pub async fn images_prune(&self, filters: Filters) -> Result<PruneReport> {
        if self.inner.pruning.swap(true, Ordering::SeqCst) {
            return Err(Error::conflict("a prune operation is already running"));
        }
        let result = self
            .blocking(move |s| {
                let now = crate::store::now_unix_nanos() as i128;
                s.store().write(&s.actor, |w| {
                    let mut d = delete::Deleter {
                        w,
                        containers: s.external_containers(),
                        records: Vec::new(),
                    };
                    d.prune(&filters, now)
                })
            })
            .await;
        self.inner.pruning.store(false, Ordering::SeqCst);
        result
    }

    /// `LoadImage`: load a docker-archive (plain or compressed as a whole)
    /// as one write. Returns the lines Docker prints.
    pub async fn load_image(
        &self,
        input: impl std::io::Read + Send + 'static,
        _quiet: bool,
    ) -> Result<crate::archive::LoadReport> {
        self.blocking(move |s| crate::archive::load(s.store(), &s.actor, input))
            .await
    }

    /// `ExportImage`: write a docker-archive of `names` to `out`.
    pub async fn export_image(
        &self,
        names: Vec<String>,
        out: impl std::io::Write + Send + 'static,
    ) -> Result<()> {
        self.blocking(move |s| crate::archive::save(s.store(), &names, out))
            .await
    }

    /// `strata fsck` (see [`crate::fsck`]). With `repair`, a damaged or
    /// missing layer blob is also fetched again from the registry the log
    /// says it came from (newest known location first).
    pub async fn fsck(&self, repair: bool) -> Result<crate::fsck::FsckReport> {
        let mut report = self
            .blocking(move |s| crate::fsck::fsck(s.store(), repair))
            .await?;
        if !repair {
            return Ok(report);
        }
        for p in report.problems.iter_mut() {
            let places = self.store().read(|t| t.dist_metadata(&p.blob))?;
            for (digest, repository) in places.iter().rev() {
                let opts = crate::distribution::PullOptions::default();
                let fetched = crate::distribution::pull::refetch_layer(
                    self.store(),
                    repository,
                    digest,
                    &p.blob,
                    &opts,
                )
                .await;
                if fetched.is_ok() {
                    p.refetched_from = Some(format!("{repository}@{digest}"));
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Garbage-collect unreferenced blobs and orphan ingest files (see [`crate::gc`]).
    pub async fn gc(&self, dry_run: bool) -> Result<crate::gc::GcReport> {
        self.blocking(move |s| crate::gc::collect(s.store(), &s.actor, dry_run))
            .await
    }

    /// `CreateImage(config, parent)`: store `config` verbatim as an image
    /// (image-service.md §5.5); idempotent for an existing ID.
    ///
    /// As in Docker, the image is created first and its parent set second: an
    /// unknown parent fails with `failed to set parent <p>: unknown parent
    /// image ID <p>` (HTTP 500) and leaves the image created without one;
    /// for an image that already exists the parent is moved.
    pub async fn create_image(&self, config: Vec<u8>, parent: Option<&str>) -> Result<String> {
        let parent = parent.filter(|p| !p.is_empty()).map(str::to_string);
        self.blocking(move |s| {
            s.store()
                .write(&s.actor, |w| {
                    let id = crate::digest::sha256_digest(&config);
                    let known = parent
                        .as_deref()
                        .map(|p| w.tables().has_image(p))
                        .transpose()?
                        .unwrap_or(false);
                    let exists = w.tables().has_image(&id)?;
                    let at_creation = parent.as_deref().filter(|_| known && !exists);
                    create_image_in(w, config, at_creation, ImageSource::Create)
                        .map_err(|e| e.context("failed to create image"))?;
                    let Some(p) = parent.as_deref() else {
                        return Ok(Ok(id));
                    };
                    if !known {
                        return Ok(Err(Error::internal(format!(
                            "failed to set parent {p}: unknown parent image ID {p}"
                        ))));
                    }
                    let current = w.tables().image(&id)?.and_then(|r| r.parent);
                    if current.as_deref() != Some(p) {
                        w.emit(EventBody::ImageParentSet {
                            id: id.clone(),
                            parent: p.to_string(),
                        })?;
                    }
                    Ok(Ok(id))
                })
                .and_then(|r| r)
        })
        .await
    }
}

/// Validate and emit an `ImageCreated` (image-service.md §2.4), returning the ID.
pub(crate) fn create_image_in(
    w: &mut crate::store::Writer<'_>,
    config: Vec<u8>,
    parent: Option<&str>,
    source: ImageSource,
) -> Result<String> {
    let cfg = crate::config::ImageConfig::from_json(&config)?;
    let id = crate::digest::sha256_digest(&config);
    if w.tables().has_image(&id)? {
        return Ok(id);
    }
    let diff_ids = cfg
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    if let Some(top) = crate::digest::chain_ids(&diff_ids).last()
        && w.tables().layer(top)?.is_none()
    {
        return Err(Error::invalid(format!(
            "failed to get layer {top}: layer does not exist"
        )));
    }
    if let Some(p) = parent
        && !w.tables().has_image(p)?
    {
        return Err(Error::invalid(format!(
            "failed to set parent {p}: unknown parent image ID {p}"
        )));
    }
    w.emit(EventBody::ImageCreated {
        config,
        parent: parent.map(str::to_string),
        source,
    })?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::thread::ThreadId;

    /// Records the thread each call comes from.
    #[derive(Default)]
    struct Threads(Mutex<Vec<ThreadId>>);

    impl ContainerStore for Threads {
        fn containers_using(&self, _image_id: &str) -> Vec<ContainerUse> {
            self.0.lock().unwrap().push(std::thread::current().id());
            Vec::new()
        }
    }

    /// The threads a listing (with container counts) and a delete ran on.
    async fn threads_of(inline: bool) -> Vec<ThreadId> {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Threads::default());
        let svc = ImageService::new(Store::open(dir.path()).unwrap(), Some(seen.clone()));
        let svc = if inline { svc.on_calling_thread() } else { svc };
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let id = svc.create_image(config.to_vec(), None).await.unwrap();
        svc.tag_image(&id, "x/y", "1").await.unwrap();
        svc.images(Filters::new(), true, true).await.unwrap();
        svc.image_delete("x/y:1", false, true).await.unwrap();
        assert!(
            svc.images(Filters::new(), true, false)
                .await
                .unwrap()
                .is_empty()
        );
        let seen = seen.0.lock().unwrap().clone();
        assert!(seen.len() >= 2, "{seen:?}");
        seen
    }

    #[tokio::test]
    async fn on_calling_thread_starts_no_thread() {
        let me = std::thread::current().id();
        assert!(threads_of(true).await.iter().all(|t| *t == me));
        assert!(threads_of(false).await.iter().all(|t| *t != me));
    }
}
