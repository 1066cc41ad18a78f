//! The store's own container records: enough for delete and prune conflicts
//! to be exercised end to end (no process is ever started).

use super::ImageService;
use super::lookup::get_image;
use crate::digest::sha256_digest;
use crate::error::{Error, Result};
use crate::event::EventBody;
use crate::projection::{ContainerRow, Tables};
use redb::ReadableTable;

/// A container record as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContainerInfo {
    /// 64-hex ID.
    pub id: String,
    /// Name (no leading `/`).
    pub name: String,
    /// Image ID.
    pub image: String,
}

pub(super) fn find<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &Tables<T>,
    needle: &str,
) -> Result<(String, ContainerRow)> {
    let needle = needle.trim_start_matches('/');
    let all = t.containers()?;
    if let Some((id, row)) = all.iter().find(|(id, r)| id == needle || r.name == needle) {
        return Ok((id.clone(), row.clone()));
    }
    let matches: Vec<_> = all
        .iter()
        .filter(|(id, _)| id.starts_with(needle))
        .collect();
    match matches.as_slice() {
        [(id, row)] if !needle.is_empty() => Ok((id.clone(), row.clone())),
        _ => Err(Error::not_found(format!("No such container: {needle}"))),
    }
}

impl ImageService {
    /// Create a container record on `image`, and its read-write directory
    /// (`<root>/containers/<id>/rw`, a copy of the image's filesystem; see
    /// `service/commit.rs` for the crash story); returns its ID. The
    /// directory is derived state: when it cannot be prepared now (a layer
    /// that cannot be applied, no permission for device nodes), the
    /// container is still created and the error surfaces where the
    /// directory is needed (`container_rw_path`, `commit_image`).
    pub async fn create_container(&self, image: &str, name: Option<&str>) -> Result<String> {
        self.create_container_with_config(image, name, None).await
    }

    /// [`ImageService::create_container`] recording the container's config
    /// (what `docker create` sends: Cmd, Env, Labels, ...), merged with the
    /// image's config as dockerd merges it; commit then uses it.
    pub async fn create_container_with_config(
        &self,
        image: &str,
        name: Option<&str>,
        config: Option<crate::config::ContainerConfig>,
    ) -> Result<String> {
        if let Some(n) = name {
            check_container_name(n)?;
        }
        let (image, name) = (
            image.to_string(),
            name.map(|n| n.strip_prefix('/').unwrap_or(n).to_string()),
        );
        self.blocking(move |s| {
            let (id, top) = s.store().write(&s.actor, |w| {
                let img = get_image(w.tables(), &image)?;
                let seed = format!("{}{}{:?}", img.id, w.time_unix_nanos(), name);
                let id = crate::digest::hex_part(&sha256_digest(seed.as_bytes())).to_string();
                let name = name.unwrap_or_else(|| format!("strata_{}", &id[..12]));
                if let Some((other, _)) = w
                    .tables()
                    .containers()?
                    .into_iter()
                    .find(|(_, r)| r.name == name)
                {
                    return Err(Error::conflict(format!(
                        "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                w.emit(EventBody::ContainerCreated {
                    id: id.clone(),
                    name,
                    image: img.id.clone(),
                })?;
                if let Some(mut cfg) = config {
                    if cfg.hostname.is_empty() {
                        cfg.hostname = id[..12].to_string();
                    }
                    let image_cfg = w
                        .tables()
                        .config(&img.id)?
                        .map(|b| crate::config::ImageConfig::from_json(&b))
                        .transpose()?
                        .and_then(|c| c.config);
                    if let Some(ic) = &image_cfg {
                        super::commit::merge(&mut cfg, ic);
                    }
                    w.emit(EventBody::ContainerConfigured {
                        id: id.clone(),
                        config: cfg.to_json(false),
                    })?;
                }
                Ok((id, img.row.top_layer))
            })?;
            let made = crate::rootfs::materialize(s.store(), top.as_deref())
                .and_then(|rootfs| super::commit::make_rw(s.store().root(), &id, &rootfs));
            if let Err(e) = made {
                tracing::warn!("container {id}: filesystem not prepared: {e}");
            }
            Ok(id)
        })
        .await
    }

    /// Every container record.
    pub async fn containers(&self) -> Result<Vec<ContainerInfo>> {
        self.blocking(|s| {
            s.store().read(|t| {
                Ok(t.containers()?
                    .into_iter()
                    .map(|(id, r)| ContainerInfo {
                        id,
                        name: r.name,
                        image: r.image,
                    })
                    .collect())
            })
        })
        .await
    }

    /// Remove a container record (by ID, unique ID prefix or name).
    pub async fn remove_container(&self, container: &str) -> Result<()> {
        let container = container.to_string();
        self.blocking(move |s| {
            let id = s.store().write(&s.actor, |w| {
                let (id, row) = find(w.tables(), &container)?;
                w.emit(EventBody::ContainerRemoved { id: id.clone() })?;
                // Its layer reference is gone: release what nothing else holds.
                let mut cur = row.top_layer;
                while let Some(chain) = cur {
                    let Some(layer) = w.tables().layer(&chain)? else {
                        break;
                    };
                    if layer.refcount != 0 {
                        break;
                    }
                    w.emit(EventBody::LayerReleased { chain_id: chain })?;
                    cur = layer.parent;
                }
                Ok(id)
            })?;
            // Derived state, after the record is gone (a crash in between
            // leaves an orphan directory: `prune_orphan_layers`).
            if let Err(e) = super::commit::remove_rw(s.store().root(), &id) {
                tracing::warn!("container {id}: removing its filesystem: {e}");
            }
            Ok(())
        })
        .await
    }
}

/// Docker's container name rule: `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn check_container_name(name: &str) -> Result<()> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}
