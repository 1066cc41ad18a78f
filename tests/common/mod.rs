#![allow(dead_code)]
//! Shared helpers for the integration tests.

pub mod builder;
pub mod serve;

use std::path::PathBuf;

/// Deterministic bytes gzip cannot shrink (xorshift64 from `seed | 1`).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Path of a fixture archive made by the real dockerd 20.10.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dockerd")
        .join(name)
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

pub const CHAIN_ID: &str =
    "sha256:17d9e0c043f938644efebd9f8d4b4fae42cfd1b0ea194014ade0da90e8e48894";
pub const IMPORTED_ID: &str =
    "sha256:d04abc690f013bbb2020b5d386e38f7804ee69f50a9780d89f9aa9452d9d02ae";
pub const COMMITTED_ID: &str =
    "sha256:82d0c3bbee2fa56a832a01a0f27f026674266f9100790de26c2557e3096ce564";

/// A fresh service in a temporary directory.
pub fn service() -> (tempfile::TempDir, strata::ImageService) {
    let dir = tempfile::tempdir().unwrap();
    let svc = strata::ImageService::open(dir.path()).unwrap();
    (dir, svc)
}

pub async fn load(svc: &strata::ImageService, name: &str) -> strata::archive::LoadReport {
    let f = std::fs::File::open(fixture(name)).unwrap();
    svc.load_image(f, true).await.unwrap()
}

/// Fail unless the store passes `audit verify`.
pub fn assert_verified(svc: &strata::ImageService) {
    match strata::audit::verify(svc.store()).unwrap() {
        Ok(_) => {}
        Err(problem) => panic!("audit verify failed: {problem}"),
    }
}
