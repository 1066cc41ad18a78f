//! `strata serve`.

use super::Failure;
use std::path::PathBuf;
use strata::ImageService;

/// Run the Engine API server on `socket` until SIGINT/SIGTERM.
pub async fn run(svc: ImageService, socket: PathBuf) -> Result<(), Failure> {
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    strata::server::serve(svc, &socket, shutdown)
        .await
        .map_err(|e| Failure(format!("strata serve: {}", e.message())))
}
