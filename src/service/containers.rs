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

fn find<T: ReadableTable<&'static str, &'static [u8]>>(
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
    /// Create a container record on `image`; returns its ID.
    pub async fn create_container(&self, image: &str, name: Option<&str>) -> Result<String> {
        let (image, name) = (image.to_string(), name.map(str::to_string));
        self.blocking(move |s| {
            s.store().write(&s.actor, |w| {
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
                    image: img.id,
                })?;
                Ok(id)
            })
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
            s.store().write(&s.actor, |w| {
                let (id, row) = find(w.tables(), &container)?;
                w.emit(EventBody::ContainerRemoved { id })?;
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
                Ok(())
            })
        })
        .await
    }
}
