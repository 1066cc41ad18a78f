//! `Images(filters, all, withExtraAttrs)`: image-service.md §4.2.

use super::lookup::{get_image, parse_stored};
use super::{ContainerStore, ImageSummary};
use crate::digest::chain_ids;
use crate::error::{Error, Result};
use crate::filters::Filters;
use crate::pathmatch::path_match;
use crate::projection::{ImageRow, ReadTables};
use crate::reference::Reference;
use crate::store::TablesVersion;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What every listing starts from: each image with its references in
/// familiar form and whether it has children, in the listing's order
/// (newest first, then by ID). It is one join of three tables, so it is
/// built once per [`TablesVersion`] and shared by the listings until the
/// next write.
pub(crate) struct Joined {
    version: TablesVersion,
    images: Vec<JoinedImage>,
}

struct JoinedImage {
    id: String,
    /// The row, its labels moved to `labels`.
    row: ImageRow,
    labels: Option<Arc<BTreeMap<String, String>>>,
    refs: Vec<JoinedRef>,
    has_children: bool,
}

struct JoinedRef {
    /// The familiar string, e.g. `busybox:1` or `busybox@sha256:…`.
    familiar: String,
    /// Length of the familiar name at the start of `familiar`.
    name_len: usize,
    /// A digest reference (else a tag).
    digest: bool,
}

/// The last [`Joined`], for the listings of one service.
#[derive(Default)]
pub(crate) struct ListingCache(Mutex<Option<Arc<Joined>>>);

impl ListingCache {
    /// The join as of `version` (the version `t` shows): the cached one when
    /// it is of that version, else a new one (kept unless a newer one was
    /// stored meanwhile).
    fn joined(&self, version: TablesVersion, t: &ReadTables) -> Result<Arc<Joined>> {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(j) = lock().as_ref().filter(|j| j.version == version) {
            return Ok(j.clone());
        }
        let j = Arc::new(join(version, t)?);
        let mut slot = lock();
        if slot.as_ref().is_none_or(|old| old.version <= version) {
            *slot = Some(j.clone());
        }
        Ok(j)
    }
}

/// Images, their references and the parents table are all keyed by image
/// ID: walk them side by side instead of looking each image up.
fn join(version: TablesVersion, t: &ReadTables) -> Result<Joined> {
    let all_refs = t.all_image_refs()?;
    let parents = t.parents()?;
    let (mut next_ref, mut next_parent) = (0, 0);
    let mut images = Vec::new();
    for (id, mut row) in t.images()? {
        while parents
            .get(next_parent)
            .is_some_and(|p| p.as_str() < id.as_str())
        {
            next_parent += 1;
        }
        let has_children = parents.get(next_parent) == Some(&id);
        while all_refs
            .get(next_ref)
            .is_some_and(|(img, _)| img.as_str() < id.as_str())
        {
            next_ref += 1;
        }
        let mut refs = Vec::new();
        while let Some((_, canonical)) = all_refs.get(next_ref).filter(|(img, _)| *img == id) {
            next_ref += 1;
            refs.push(match Reference::familiar_of_stored(canonical) {
                Some((familiar, name_len, digest)) => JoinedRef {
                    familiar: familiar.to_string(),
                    name_len,
                    digest,
                },
                None => {
                    let r = parse_stored(canonical)?;
                    JoinedRef {
                        name_len: r.familiar_name().len(),
                        familiar: r.familiar_string(),
                        digest: r.digest().is_some(),
                    }
                }
            });
        }
        images.push(JoinedImage {
            id,
            labels: row.labels.take().map(Arc::new),
            row,
            refs,
            has_children,
        });
    }
    // Newest first, then by ID: the rows came in ID order, so a stable sort
    // on the time alone gives that without comparing IDs.
    images.sort_by_key(|i| std::cmp::Reverse(i.row.created_unix_nanos.div_euclid(1_000_000_000)));
    Ok(Joined { version, images })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn images(
    t: &ReadTables,
    version: TablesVersion,
    cache: &ListingCache,
    containers: Option<&dyn ContainerStore>,
    filters: &Filters,
    all: bool,
    extra: bool,
) -> Result<Vec<ImageSummary>> {
    filters.validate(&["dangling", "label", "before", "since", "reference"])?;
    let dangling = filters.list_dangling()?;
    let dangling_only = dangling == Some(true);
    let bound = |key: &str| -> Result<Option<i128>> {
        let mut out = None;
        for v in filters.values(key) {
            out = Some(get_image(t, v)?.row.created_unix_nanos);
        }
        Ok(out)
    };
    let before = bound("before")?;
    let since = bound("since")?;
    let patterns = filters.values("reference");
    let has_label = filters.contains("label");

    let joined = cache.joined(version, t)?;
    let mut out = Vec::new();
    let mut chains_of: Vec<Vec<String>> = Vec::new();
    for image in &joined.images {
        let row = &image.row;
        if dangling_only && image.has_children {
            continue;
        }
        if before.is_some_and(|b| row.created_unix_nanos >= b) {
            continue;
        }
        if since.is_some_and(|s| row.created_unix_nanos <= s) {
            continue;
        }
        if has_label
            && (!row.has_runtime_config || !filters.match_labels("label", image.labels.as_deref()))
        {
            continue;
        }
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for r in &image.refs {
            if !patterns.is_empty() {
                let mut keep = false;
                for p in &patterns {
                    let bad = |_| Error::internal("syntax error in pattern");
                    if path_match(p, &r.familiar).map_err(bad)?
                        || path_match(p, &r.familiar[..r.name_len]).map_err(bad)?
                    {
                        keep = true;
                        break;
                    }
                }
                if !keep {
                    continue;
                }
            }
            if r.digest {
                digests.push(r.familiar.clone());
            } else {
                tags.push(r.familiar.clone());
            }
        }
        if tags.is_empty() && digests.is_empty() {
            if !all && image.has_children {
                continue;
            }
            if dangling == Some(false) || !patterns.is_empty() {
                continue;
            }
            tags.push("<none>:<none>".to_string());
            digests.push("<none>@<none>".to_string());
        } else if dangling_only && !tags.is_empty() {
            continue;
        }
        let mut containers_count = -1;
        if extra {
            let mut n = t.containers_of(&image.id)?.len();
            if let Some(ext) = containers {
                n += ext.containers_using(&image.id).len();
            }
            containers_count = n as i64;
            let diff_ids = image_diff_ids(t, &image.id)?;
            chains_of.push(chain_ids(&diff_ids));
        }
        out.push(ImageSummary {
            containers: containers_count,
            created: (row.created_unix_nanos.div_euclid(1_000_000_000)) as i64,
            id: image.id.clone(),
            labels: image.labels.clone(),
            parent_id: row.parent.clone().unwrap_or_default(),
            repo_digests: (!digests.is_empty()).then_some(digests),
            repo_tags: (!tags.is_empty()).then_some(tags),
            shared_size: -1,
            size: row.size as i64,
            virtual_size: row.size as i64,
        });
    }
    if extra {
        let mut usage: BTreeMap<&str, u32> = BTreeMap::new();
        for chains in &chains_of {
            for c in chains {
                *usage.entry(c.as_str()).or_default() += 1;
            }
        }
        for (summary, chains) in out.iter_mut().zip(&chains_of) {
            let mut shared = 0u64;
            for c in chains {
                if usage.get(c.as_str()).copied().unwrap_or(0) > 1 {
                    let layer = t.layer(c)?.ok_or_else(|| {
                        Error::internal(format!("layer {c} was not found (corruption?)"))
                    })?;
                    shared += layer.diff_size;
                }
            }
            summary.shared_size = shared as i64;
        }
    }
    Ok(out)
}

/// The DiffIDs of an image's layers, bottom first (from the layer chain).
pub(crate) fn image_diff_ids(t: &ReadTables, id: &str) -> Result<Vec<String>> {
    let row = t
        .image(id)?
        .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?;
    let mut out = Vec::new();
    let mut cur = row.top_layer;
    while let Some(c) = cur {
        let l = t
            .layer(&c)?
            .ok_or_else(|| Error::internal(format!("layer {c} was not found (corruption?)")))?;
        out.push(l.diff_id);
        cur = l.parent;
    }
    out.reverse();
    Ok(out)
}
