//! `strata import`. (Being built; see issue 3.)

use super::Failure;
use std::io::Write;
use strata::ImageService;

/// `strata import [-m MSG] [-c CHANGE]... FILE|- [REPOSITORY[:TAG]]`.
pub async fn run(
    _svc: &ImageService,
    _out: &mut impl Write,
    _message: Option<String>,
    _changes: Vec<String>,
    file: String,
    _reference: Option<String>,
) -> Result<(), Failure> {
    Err(Failure(format!("strata import {file}: not implemented yet")))
}
