//! `Images(filters, all, withExtraAttrs)`: image-service.md §4.2.

use super::lookup::{get_image, parse_stored};
use super::{ContainerStore, ImageSummary};
use crate::digest::chain_ids;
use crate::error::{Error, Result};
use crate::filters::Filters;
use crate::pathmatch::path_match;
use crate::projection::ReadTables;
use crate::reference::Reference;
use std::collections::BTreeMap;

pub(crate) fn images(
    t: &ReadTables,
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

    let mut out = Vec::new();
    let mut chains_of: Vec<Vec<String>> = Vec::new();
    // Images, their references and the parents table are all keyed by
    // image ID: walk them side by side instead of looking each image up.
    let all_refs = t.all_image_refs()?;
    let parents = t.parents()?;
    let (mut next_ref, mut next_parent) = (0, 0);
    for (id, row) in t.images()? {
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
        let first_ref = next_ref;
        while all_refs.get(next_ref).is_some_and(|(img, _)| *img == id) {
            next_ref += 1;
        }
        let refs = &all_refs[first_ref..next_ref];
        if dangling_only && has_children {
            continue;
        }
        if before.is_some_and(|b| row.created_unix_nanos >= b) {
            continue;
        }
        if since.is_some_and(|s| row.created_unix_nanos <= s) {
            continue;
        }
        if has_label
            && (!row.has_runtime_config || !filters.match_labels("label", row.labels.as_ref()))
        {
            continue;
        }
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for (_, canonical) in refs {
            let parsed;
            let (familiar, name, digest) = match Reference::familiar_of_stored(canonical) {
                Some((familiar, name_len, digest)) => (familiar, &familiar[..name_len], digest),
                None => {
                    let r = parse_stored(canonical)?;
                    parsed = (r.familiar_string(), r.familiar_name());
                    (parsed.0.as_str(), parsed.1.as_str(), r.digest().is_some())
                }
            };
            #[cfg(debug_assertions)]
            {
                let r = parse_stored(canonical)?;
                debug_assert_eq!(
                    (familiar, name, digest),
                    (
                        r.familiar_string().as_str(),
                        r.familiar_name().as_str(),
                        r.digest().is_some()
                    ),
                    "{canonical}"
                );
            }
            if !patterns.is_empty() {
                let mut keep = false;
                for p in &patterns {
                    let bad = |_| Error::internal("syntax error in pattern");
                    if path_match(p, familiar).map_err(bad)? || path_match(p, name).map_err(bad)? {
                        keep = true;
                        break;
                    }
                }
                if !keep {
                    continue;
                }
            }
            if digest {
                digests.push(familiar.to_string());
            } else {
                tags.push(familiar.to_string());
            }
        }
        if tags.is_empty() && digests.is_empty() {
            if !all && has_children {
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
            let mut n = t.containers_of(&id)?.len();
            if let Some(ext) = containers {
                n += ext.containers_using(&id).len();
            }
            containers_count = n as i64;
            let diff_ids = image_diff_ids(t, &id)?;
            chains_of.push(chain_ids(&diff_ids));
        }
        out.push(ImageSummary {
            containers: containers_count,
            created: (row.created_unix_nanos.div_euclid(1_000_000_000)) as i64,
            id,
            labels: row.labels,
            parent_id: row.parent.unwrap_or_default(),
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
    // Newest first, then by ID: the rows came in ID order, so a stable sort
    // on the time alone gives that without comparing IDs.
    debug_assert!(out.windows(2).all(|w| w[0].id < w[1].id));
    out.sort_by_key(|s| std::cmp::Reverse(s.created));
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
