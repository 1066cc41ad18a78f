//! Events: what the log records, one per change to the store.
//!
//! An [`Envelope`] wraps each [`EventBody`] with its sequence number, wall
//! time, [`Actor`] and the blake3 hash of the previous envelope's bytes, so
//! that editing, reordering or dropping any event breaks the chain.
//!
//! Encoding is postcard (a frozen, documented wire format). Bodies are never
//! reinterpreted: a change of shape is a new variant (appended at the end of
//! the enum, since postcard encodes the variant index) or a new
//! [`FORMAT_VERSION`], upcast by a migration.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The envelope format written by this version of strata.
pub const FORMAT_VERSION: u16 = 1;

/// Who asked for a change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Numeric user id of the requester, when known (process uid or socket peer).
    pub uid: Option<u32>,
    /// User name, when known.
    pub user: Option<String>,
    /// The client: `strata-cli`, an API client's User-Agent, ...
    pub client: Option<String>,
}

impl Actor {
    /// The current process's user, as the `strata` command.
    pub fn current_process(client: &str) -> Actor {
        let uid = process_uid();
        Actor {
            uid: Some(uid),
            user: std::env::var("USER").ok().filter(|u| !u.is_empty()),
            client: Some(client.to_string()),
        }
    }

    /// A one-line description: `user(uid) via client`.
    pub fn describe(&self) -> String {
        let mut s = match (&self.user, self.uid) {
            (Some(u), Some(id)) => format!("{u}({id})"),
            (Some(u), None) => u.clone(),
            (None, Some(id)) => format!("uid {id}"),
            (None, None) => "unknown".to_string(),
        };
        if let Some(c) = &self.client {
            s.push_str(" via ");
            s.push_str(c);
        }
        s
    }
}

/// The real uid of this process (the owner of `/proc/self`).
fn process_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// How an image came to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageSource {
    /// `docker load` of an archive.
    Load,
    /// `CreateImage(config, parent)`: a builder step without a container.
    Create,
    /// Import of a rootfs tarball.
    Import,
    /// Commit of a container.
    Commit,
    /// Pull from a registry.
    Pull,
    /// Squash of another image.
    Squash,
}

/// One change to the store. The projection's `apply` folds these into tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventBody {
    /// A read-only layer with this DiffID now exists on top of `parent`
    /// (a ChainID); its bytes are the blob named by `diff_id`.
    LayerRegistered {
        /// sha256 of the uncompressed layer stream (also its blob name).
        diff_id: String,
        /// ChainID of the layer below, if any.
        parent: Option<String>,
        /// Sum of the tar entries' sizes (Docker's DiffSize).
        diff_size: u64,
    },
    /// A read-only layer (by ChainID) was removed: nothing references it any more.
    LayerReleased {
        /// The ChainID.
        chain_id: String,
    },
    /// An image was created from these exact config bytes.
    ImageCreated {
        /// The config bytes; the image ID is their sha256.
        #[serde(with = "config_bytes")]
        config: Vec<u8>,
        /// Parent image ID (metadata, not part of the config).
        parent: Option<String>,
        /// How the image was made.
        source: ImageSource,
    },
    /// An image was deleted (its references were removed by earlier events).
    ImageDeleted {
        /// The image ID.
        id: String,
    },
    /// A reference (canonical string, `name:tag` or `name@digest`) now points at `image`.
    ReferenceAdded {
        /// Canonical reference string, e.g. `docker.io/library/busybox:latest`.
        reference: String,
        /// Image ID.
        image: String,
        /// Set by the tag path (tag, import, commit): updates the image's LastTagTime.
        tag_time: bool,
    },
    /// A reference was removed.
    ReferenceRemoved {
        /// Canonical reference string.
        reference: String,
        /// The image it pointed at.
        image: String,
    },
    /// A container record (and its read-write layer) was created on an image.
    ContainerCreated {
        /// 64-hex container ID.
        id: String,
        /// Container name (without a leading `/`).
        name: String,
        /// Image ID the container was created from.
        image: String,
    },
    /// A container record was removed.
    ContainerRemoved {
        /// Container ID.
        id: String,
    },
    /// An existing image's parent (metadata) was set, as `docker load` does
    /// for parent links of images that were already present.
    ImageParentSet {
        /// The image ID.
        id: String,
        /// The new parent image ID.
        parent: String,
    },
    /// Garbage collection removed these blobs (and orphan ingest files).
    BlobsCollected {
        /// Blob digests removed.
        blobs: Vec<String>,
        /// Bytes reclaimed in all.
        bytes: u64,
    },
    /// A registry holds the layer `diff_id` as compressed blob `digest` in
    /// `repository` (Docker's v2 metadata: lets push skip or mount blobs).
    DistributionMetadataAdded {
        /// The layer's DiffID.
        diff_id: String,
        /// The compressed blob digest in the registry.
        digest: String,
        /// Full repository name, e.g. `127.0.0.1:5000/test`.
        repository: String,
    },
    /// That blob is no longer known to be in that repository.
    DistributionMetadataRemoved {
        /// The layer's DiffID.
        diff_id: String,
        /// The compressed blob digest.
        digest: String,
        /// Full repository name.
        repository: String,
    },
    /// A container's configuration (`docker create`'s Cmd, Env, ...), as
    /// container-config JSON in Go's field order.
    ContainerConfigured {
        /// Container ID.
        id: String,
        /// The config object's bytes.
        #[serde(with = "config_bytes")]
        config: Vec<u8>,
    },
    /// A tag of `image` was pushed to a registry: the registry now holds the
    /// manifest `digest` for `reference` (Docker's `push` image event). The
    /// tables do not change: the local `repository@digest` reference (the
    /// image's new RepoDigest) and the blobs learnt are recorded by the
    /// `ReferenceAdded` / `DistributionMetadataAdded` events of the same write.
    ImagePushed {
        /// Canonical reference pushed, e.g. `127.0.0.1:5000/test:1`.
        reference: String,
        /// Image ID.
        image: String,
        /// The manifest digest the registry stored.
        digest: String,
        /// Full repository name, e.g. `127.0.0.1:5000/test`.
        repository: String,
    },
    /// A pull of `reference` finished (Docker's `pull` image event), also
    /// when the image was already up to date. Recorded in the pull's final
    /// write, after its layer, image and reference events; the tables do not
    /// change.
    ImagePulled {
        /// Canonical reference as pulled, e.g. `127.0.0.1:5000/test:1`,
        /// `…@sha256:…`, or a bare repository for all its tags.
        reference: String,
        /// The image `reference` names after the pull (`""` when it names
        /// none, as a bare repository without a `latest` tag).
        image: String,
    },
}

impl EventBody {
    /// A short kind name for listings and filters (`image-created`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::LayerRegistered { .. } => "layer-registered",
            EventBody::LayerReleased { .. } => "layer-released",
            EventBody::ImageCreated { .. } => "image-created",
            EventBody::ImageDeleted { .. } => "image-deleted",
            EventBody::ReferenceAdded { .. } => "reference-added",
            EventBody::ReferenceRemoved { .. } => "reference-removed",
            EventBody::ContainerCreated { .. } => "container-created",
            EventBody::ContainerRemoved { .. } => "container-removed",
            EventBody::ImageParentSet { .. } => "image-parent-set",
            EventBody::BlobsCollected { .. } => "blobs-collected",
            EventBody::ContainerConfigured { .. } => "container-configured",
            EventBody::DistributionMetadataAdded { .. } => "distribution-metadata-added",
            EventBody::DistributionMetadataRemoved { .. } => "distribution-metadata-removed",
            EventBody::ImagePushed { .. } => "image-pushed",
            EventBody::ImagePulled { .. } => "image-pulled",
        }
    }
}

/// Config bytes: raw bytes in postcard (the same wire format as a plain
/// `Vec<u8>`), readable text in JSON exports (`hex:` + hex when the bytes
/// are not UTF-8, which a JSON object never starts with).
mod config_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(v);
        }
        match std::str::from_utf8(v) {
            Ok(text) if !text.starts_with("hex:") => s.serialize_str(text),
            _ => s.serialize_str(&format!("hex:{}", hex::encode(v))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if !d.is_human_readable() {
            return serde_bytes_buf(d);
        }
        let s = String::deserialize(d)?;
        match s.strip_prefix("hex:") {
            Some(h) => hex::decode(h).map_err(serde::de::Error::custom),
            None => Ok(s.into_bytes()),
        }
    }

    fn serde_bytes_buf<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// An event as stored: body plus sequence, time, actor and hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope format version ([`FORMAT_VERSION`]).
    pub version: u16,
    /// Sequence number, 1-based, dense.
    pub seq: u64,
    /// Wall time of the commit, unix nanoseconds (UTC).
    pub time_unix_nanos: i64,
    /// Who asked.
    pub actor: Actor,
    /// blake3 of the previous envelope's encoded bytes (zeros for the first).
    pub prev_hash: [u8; 32],
    /// What happened.
    pub body: EventBody,
}

impl Envelope {
    /// The postcard encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::internal(format!("encoding event: {e}")))
    }

    /// Decode exactly one envelope from `bytes`; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Envelope> {
        let (env, rest): (Envelope, &[u8]) = postcard::take_from_bytes(bytes)
            .map_err(|e| Error::corrupt(format!("undecodable event: {e}")))?;
        if !rest.is_empty() {
            return Err(Error::corrupt(format!(
                "undecodable event: {} trailing bytes",
                rest.len()
            )));
        }
        if env.version != FORMAT_VERSION {
            return Err(Error::corrupt(format!(
                "event {} has format version {}, this strata reads {}",
                env.seq, env.version, FORMAT_VERSION
            )));
        }
        Ok(env)
    }

    /// The chain hash of encoded envelope bytes.
    pub fn hash_bytes(bytes: &[u8]) -> [u8; 32] {
        *blake3::hash(bytes).as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            version: FORMAT_VERSION,
            seq: 7,
            time_unix_nanos: 1_700_000_000_000_000_000,
            actor: Actor {
                uid: Some(0),
                user: Some("root".into()),
                client: Some("test".into()),
            },
            prev_hash: [3; 32],
            body: EventBody::ReferenceAdded {
                reference: "docker.io/library/busybox:latest".into(),
                image: format!("sha256:{}", "a".repeat(64)),
                tag_time: true,
            },
        }
    }

    #[test]
    fn round_trip() {
        let e = sample();
        let bytes = e.encode().unwrap();
        assert_eq!(Envelope::decode(&bytes).unwrap(), e);
    }

    #[test]
    fn config_bytes_keep_plain_vec_wire_format() {
        #[derive(serde::Serialize)]
        struct Plain(u8, Vec<u8>);
        let body = EventBody::ImageCreated {
            config: b"{\"a\":1}".to_vec(),
            parent: None,
            source: ImageSource::Load,
        };
        let ours = postcard::to_allocvec(&body).unwrap();
        // variant index 2, then the bytes as a length-prefixed sequence.
        let plain = postcard::to_allocvec(&Plain(2, b"{\"a\":1}".to_vec())).unwrap();
        assert_eq!(&ours[..plain.len()], &plain[..]);
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"ImageCreated":{"config":"{\"a\":1}","parent":null,"source":"Load"}}"#
        );
        let back: EventBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, body);
        let binary = EventBody::ImageCreated {
            config: vec![0xff, 0],
            parent: None,
            source: ImageSource::Load,
        };
        let json = serde_json::to_string(&binary).unwrap();
        assert!(json.contains("\"hex:ff00\""), "{json}");
        assert_eq!(serde_json::from_str::<EventBody>(&json).unwrap(), binary);
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = sample().encode().unwrap();
        bytes.push(0);
        let err = Envelope::decode(&bytes).unwrap_err();
        assert!(err.message().contains("trailing"), "{err}");
    }

    #[test]
    fn truncation_rejected_at_every_length() {
        let bytes = sample().encode().unwrap();
        for n in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..n]).is_err(), "prefix {n} decoded");
        }
    }
}
