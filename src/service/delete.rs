//! `ImageDelete` and `ImagesPrune`: delete-prune-filters.md §2 and §4, step
//! for step, inside one write transaction.

use super::lookup::{get_image, parse_stored, store_key};
use super::{ContainerStore, ContainerUse, DeleteItem, PruneReport};
use crate::error::{Error, ErrorKind, Result};
use crate::event::EventBody;
use crate::filters::{Filters, parse_until};
use crate::reference::{Reference, go_quote, is_image_id_prefix, is_single_reference, truncate_id};
use crate::store::Writer;
use std::collections::BTreeMap;

/// One delete (or prune) in progress.
pub(crate) struct Deleter<'a, 'w> {
    pub w: &'a mut Writer<'w>,
    pub containers: Option<&'a dyn ContainerStore>,
    pub records: Vec<DeleteItem>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Conflict {
    Children,
    Running,
    Referenced,
    Stopped,
}

const HARD: &[Conflict] = &[Conflict::Children, Conflict::Running];
const ALL: &[Conflict] = &[
    Conflict::Children,
    Conflict::Running,
    Conflict::Referenced,
    Conflict::Stopped,
];
const HARD_AND_STOPPED: &[Conflict] = &[Conflict::Children, Conflict::Running, Conflict::Stopped];

struct Found {
    kind: Conflict,
    message: String,
}

impl<'a, 'w> Deleter<'a, 'w> {
    fn refs(&self, id: &str) -> Result<Vec<Reference>> {
        self.w
            .tables()
            .refs_of(id)?
            .iter()
            .map(|s| parse_stored(s))
            .collect()
    }

    fn containers_using(&self, id: &str) -> Result<Vec<ContainerUse>> {
        let mut out: Vec<ContainerUse> = self
            .w
            .tables()
            .containers_of(id)?
            .into_iter()
            .map(|id| ContainerUse { id, running: false })
            .collect();
        if let Some(ext) = self.containers {
            out.extend(ext.containers_using(id));
        }
        Ok(out)
    }

    fn untag(&mut self, r: &Reference, id: &str) -> Result<()> {
        self.w.emit(EventBody::ReferenceRemoved {
            reference: r.canonical_string(),
            image: id.to_string(),
        })?;
        self.records.push(DeleteItem::Untagged(r.familiar_string()));
        Ok(())
    }

    /// `ImageDelete(name, force, prune)`: §2.3.
    pub fn image_delete(&mut self, name: &str, force: bool, prune: bool) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::invalid("image name cannot be blank"));
        }
        let found = get_image(self.w.tables(), name)?;
        let id = found.id;
        let mut refs = self.refs(&id)?;
        if !is_image_id_prefix(&id, name) {
            // Reference branch.
            if !force
                && is_single_reference(&refs)
                && let Some(c) = self.containers_using(&id)?.first()
            {
                return Err(Error::conflict(format!(
                    "conflict: unable to remove repository reference {} (must force) - container {} is using its referenced image {}",
                    go_quote(name),
                    truncate_id(&c.id),
                    truncate_id(&id)
                )));
            }
            let parsed = Reference::parse_normalized_named(name)
                .map_err(|e| Error::invalid(e.message()))?
                .tag_name_only();
            let key = store_key(&parsed);
            let key_str = key.canonical_string();
            if self.w.tables().resolve(&key_str)?.as_deref() != Some(id.as_str()) {
                return Err(Error::not_found("reference does not exist"));
            }
            self.w.emit(EventBody::ReferenceRemoved {
                reference: key_str,
                image: id.clone(),
            })?;
            self.records
                .push(DeleteItem::Untagged(parsed.familiar_string()));
            refs = self.refs(&id)?;
            if parsed.digest().is_none() {
                let repo = parsed.name();
                let tag_left = refs
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == repo);
                if !tag_left {
                    let mut keep = Vec::new();
                    for r in refs {
                        if r.digest().is_some() && r.name() == repo {
                            self.untag(&r, &id)?;
                        } else {
                            keep.push(r);
                        }
                    }
                    refs = keep;
                }
            }
            if !refs.is_empty() {
                return Ok(());
            }
            return self.helper(&id, force, prune, true);
        }
        // ID branch.
        if is_single_reference(&refs) {
            let mask = if force { HARD } else { HARD_AND_STOPPED };
            if let Some(c) = self.conflict(&id, mask)? {
                return Err(Error::conflict(c.message));
            }
            for r in &refs {
                self.untag(r, &id)?;
            }
        }
        self.helper(&id, force, prune, false)
    }

    fn conflict(&self, id: &str, mask: &[Conflict]) -> Result<Option<Found>> {
        let short = truncate_id(id).to_string();
        let hard = |tail: String| {
            format!("conflict: unable to delete {short} (cannot be forced) - {tail}")
        };
        let soft =
            |tail: String| format!("conflict: unable to delete {short} (must be forced) - {tail}");
        let mut users: Option<Vec<ContainerUse>> = None;
        for kind in ALL.iter().filter(|k| mask.contains(k)) {
            let found = match kind {
                Conflict::Children => self
                    .w
                    .tables()
                    .has_children(id)?
                    .then(|| hard("image has dependent child images".into())),
                Conflict::Referenced => (!self.w.tables().refs_of(id)?.is_empty())
                    .then(|| soft("image is referenced in multiple repositories".into())),
                Conflict::Running | Conflict::Stopped => {
                    if users.is_none() {
                        users = Some(self.containers_using(id)?);
                    }
                    let running = *kind == Conflict::Running;
                    users
                        .as_ref()
                        .and_then(|u| u.iter().find(|c| c.running == running))
                        .map(|c| {
                            let cid = truncate_id(&c.id);
                            if running {
                                hard(format!("image is being used by running container {cid}"))
                            } else {
                                soft(format!("image is being used by stopped container {cid}"))
                            }
                        })
                }
            };
            if let Some(message) = found {
                return Ok(Some(Found {
                    kind: *kind,
                    message,
                }));
            }
        }
        Ok(None)
    }

    /// `imageDeleteHelper`: §2.4.
    fn helper(&mut self, id: &str, force: bool, prune: bool, quiet: bool) -> Result<()> {
        let mask = if force { HARD } else { ALL };
        if let Some(c) = self.conflict(id, mask)? {
            let used = matches!(c.kind, Conflict::Running | Conflict::Stopped);
            let dangling =
                self.w.tables().refs_of(id)?.is_empty() && !self.w.tables().has_children(id)?;
            if quiet && (!dangling || used) {
                return Ok(());
            }
            return Err(Error::conflict(c.message));
        }
        let row = self
            .w
            .tables()
            .image(id)?
            .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?;
        for r in self.refs(id)? {
            self.untag(&r, id)?;
        }
        self.w
            .emit(EventBody::ImageDeleted { id: id.to_string() })?;
        self.records.push(DeleteItem::Deleted(id.to_string()));
        self.release_layers(row.top_layer.as_deref())?;
        match (&row.parent, prune) {
            (Some(parent), true) => self.helper(parent, false, true, true),
            _ => Ok(()),
        }
    }

    /// Release layers from `top` down while nothing references them.
    fn release_layers(&mut self, top: Option<&str>) -> Result<()> {
        let mut cur = top.map(str::to_string);
        while let Some(chain) = cur {
            let Some(layer) = self.w.tables().layer(&chain)? else {
                break;
            };
            if layer.refcount != 0 {
                break;
            }
            self.w.emit(EventBody::LayerReleased {
                chain_id: chain.clone(),
            })?;
            self.records.push(DeleteItem::Deleted(chain));
            cur = layer.parent;
        }
        Ok(())
    }

    /// `ImagesPrune(filters)`: §4.1 steps 2–11 (the caller holds the prune lock).
    pub fn prune(&mut self, filters: &Filters, now_unix_nanos: i128) -> Result<PruneReport> {
        filters.validate(&["dangling", "label", "label!", "until"])?;
        let dangling_only = filters.prune_dangling_only()?;
        let until = match filters.single_until()? {
            Some(v) => Some(parse_until(v, now_unix_nanos, 0)?),
            None => None,
        };
        let sizes: BTreeMap<String, u64> = self
            .w
            .tables()
            .layers()?
            .into_iter()
            .map(|(k, l)| (k, l.diff_size))
            .collect();
        let mut tops = Vec::new();
        for (id, row) in self.w.tables().images()? {
            let has_children = self.w.tables().has_children(&id)?;
            if dangling_only && has_children {
                continue;
            }
            let refs = self.refs(&id)?;
            if refs.is_empty() && has_children {
                continue;
            }
            if let Some(u) = until
                && row.created_unix_nanos > u
            {
                continue;
            }
            if row.has_runtime_config {
                let labels = row.labels.as_ref();
                if filters.contains("label") && !filters.match_labels("label", labels) {
                    continue;
                }
                if filters.contains("label!") && filters.match_labels("label!", labels) {
                    continue;
                }
            }
            tops.push((id, refs));
        }
        for (id, refs) in tops {
            if refs.is_empty() {
                self.tolerate(crate::digest::hex_part(&id))?;
                continue;
            }
            if dangling_only && refs.iter().any(|r| r.digest().is_none()) {
                continue;
            }
            for r in refs {
                self.tolerate(&r.canonical_string())?;
            }
        }
        let reclaimed = self
            .records
            .iter()
            .filter_map(|r| match r {
                DeleteItem::Deleted(d) => sizes.get(d),
                DeleteItem::Untagged(_) => None,
            })
            .sum();
        Ok(PruneReport {
            images_deleted: (!self.records.is_empty()).then(|| self.records.clone()),
            space_reclaimed: reclaimed,
        })
    }

    /// A delete inside prune: conflicts and vanished images are skipped.
    fn tolerate(&mut self, name: &str) -> Result<()> {
        let before = self.records.len();
        match self.image_delete(name, false, true) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => {
                // Conflicts are found before anything is emitted, so nothing to undo.
                self.records.truncate(before);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
