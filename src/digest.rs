//! Digests: streaming sha256, DiffIDs and ChainIDs exactly as Docker computes them.
//!
//! Every identifier strata stores is the text `sha256:<64 lowercase hex>`:
//! an image ID (sha256 of the config bytes), a DiffID (sha256 of an
//! uncompressed layer stream) or a ChainID (see [`chain_id`]).

use sha2::{Digest as _, Sha256};
use std::io::{self, Write};

/// The DiffID of the canonical empty layer: a tar of 1024 zero bytes.
/// (Commit treats a layer with this DiffID as empty.)
#[allow(dead_code)]
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The 64 hex characters of a `sha256:` digest (the text itself if it has no prefix).
pub fn hex_part(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The ChainID of `parent` (a ChainID, or `None` for the bottom layer) plus `diff_id`:
/// `sha256(parent + " " + diff_id)`, or `diff_id` itself at the bottom.
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => sha256_digest(format!("{p} {diff_id}").as_bytes()),
    }
}

/// The ChainIDs of every prefix of `diff_ids`, bottom first.
pub fn chain_ids<S: AsRef<str>>(diff_ids: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last().map(String::as_str), d.as_ref());
        out.push(next);
    }
    out
}

/// A streaming sha256 that counts bytes.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }
    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }
    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }
    /// The `sha256:<hex>` digest of everything fed.
    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.inner.finalize()))
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tar_diff_id() {
        assert_eq!(sha256_digest(&[0u8; 1024]), EMPTY_LAYER_DIFF_ID);
    }

    #[test]
    fn chain_ids_match_docker() {
        // formats.md §D worked example.
        let diffs = [
            "sha256:f702e6d48e704fd465186fdabefee94aab518a197cbb3b2837f1c482340f31a7",
            "sha256:c25f37d16ec01690ba61b2f157e462a4408da60020efcf69df938f6dcb294d43",
            "sha256:c79becc34dee0eb9d866cb3348237d5fc3ccd6b01bf355c4b597890e3b0da0d1",
            "sha256:9ca2cc1a77a20b2e2dfd5805f988c41f8b59ed924d103c13e9fd7a6e1647afac",
        ];
        let chains = chain_ids(&diffs);
        assert_eq!(chains[0], diffs[0]);
        assert_eq!(
            chains[1],
            "sha256:d4fe00292cd1262bc09d6301b703acb10a797e61bbebfd22acd94c1dedd0199d"
        );
        assert_eq!(
            chains[2],
            "sha256:8bf772818f44f21ffd0e237ef8ed3e59d7bf9d19ec96772dca00e2c18641f391"
        );
        assert_eq!(
            chains[3],
            "sha256:c59201b71c6c69affd30071385257b7723e92d25a426590cb41b8ef79d31f829"
        );
    }
}
