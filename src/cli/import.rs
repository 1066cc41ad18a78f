//! `strata import`: `docker import` on the store.

use super::Failure;
use std::io::Write;
use strata::{ImageService, ImportOptions};

/// `strata import [-m MSG] [-c CHANGE]... FILE|URL|- [REPOSITORY[:TAG]]`.
///
/// Like the docker CLI, a file is sent as the body with source name `-`
/// (so the default message is `Imported from -`), and the reference is
/// checked before anything is read. An `http://` or `https://` source is
/// downloaded (the daemon's `fromSrc=<url>`): the CLI prints the stream's
/// status lines, `Downloading from <url>` (progress bars are not printed
/// when not on a terminal). Prints `sha256:<id>`.
pub async fn run(
    svc: &ImageService,
    out: &mut impl Write,
    message: Option<String>,
    changes: Vec<String>,
    file: String,
    reference: Option<String>,
) -> Result<(), Failure> {
    if let Some(r) = reference.as_deref().filter(|r| !r.is_empty())
        && let Err(e) = strata::Reference::parse_normalized_named(r)
    {
        return Err(Failure(e.message().to_string()));
    }
    if file.starts_with("http://") || file.starts_with("https://") {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let import = svc.import_image_url(
            &file,
            reference.as_deref(),
            None,
            message.as_deref(),
            &changes,
            ImportOptions::default(),
            Some(tx),
        );
        tokio::pin!(import);
        let id = loop {
            tokio::select! {
                r = &mut import => break r?,
                Some(p) = rx.recv() => {
                    if let Some(l) = p.plain_line() {
                        writeln!(out, "{l}")?;
                    }
                }
            }
        };
        while let Ok(p) = rx.try_recv() {
            if let Some(l) = p.plain_line() {
                writeln!(out, "{l}")?;
            }
        }
        writeln!(out, "{id}")?;
        return Ok(());
    }
    let input: Box<dyn std::io::Read + Send> = if file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&file)
                .map_err(|e| Failure(format!("open {file}: {}", go_io_error(&e))))?,
        )
    };
    let id = svc
        .import_image(
            input,
            reference.as_deref(),
            None,
            message.as_deref(),
            &changes,
            ImportOptions::default(),
        )
        .await?;
    writeln!(out, "{id}")?;
    Ok(())
}

/// Go's text for the common open errors.
fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}
