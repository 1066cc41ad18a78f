//! `strata migrate from-docker PATH [--driver vfs|overlay2]`.

use super::Failure;
use std::io::Write;
use std::path::PathBuf;
use strata::ImageService;

/// Adopt a dockerd data root; print what was adopted, then any notes.
///
/// ```text
/// Adopted image: dev/chain:1
/// Adopted 6 images, 3 layers, 2 references from /var/lib/docker (vfs)
/// note: ...
/// ```
pub async fn run(
    svc: &ImageService,
    out: &mut impl Write,
    source: PathBuf,
    driver: Option<String>,
) -> Result<(), Failure> {
    let report = svc.adopt_docker_root(source.clone(), driver).await?;
    for r in &report.references {
        writeln!(out, "Adopted image: {r}")?;
    }
    writeln!(
        out,
        "Adopted {} images, {} layers, {} references from {} ({})",
        report.images.len(),
        report.layers,
        report.references.len(),
        source.display(),
        report.driver
    )?;
    if report.last_tag_times_dropped > 0 {
        writeln!(
            out,
            "note: LastTagTime of {} images not carried (the store sets it only when tagging)",
            report.last_tag_times_dropped
        )?;
    }
    if report.distribution_entries > 0 {
        writeln!(
            out,
            "note: {} distribution metadata entries carried",
            report.distribution_entries
        )?;
    }
    for n in &report.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
