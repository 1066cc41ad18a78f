//! Standard output for the commands' results, ending quietly when its
//! reader goes away.
//!
//! `strata images | head -1` closes the pipe while strata still writes.
//! The docker CLI then dies of SIGPIPE without a word; Rust ignores
//! SIGPIPE, so the write fails with `EPIPE` instead. [`Stdout`] marks that
//! failure ([`ReaderGone`]) so that the command stops without printing
//! "Broken pipe" (see `From<std::io::Error> for Failure`). Only standard
//! output is marked: a broken socket or file is still an error to report.

use std::io::{self, Write};

/// The process's standard output, locked, with a gone reader marked.
pub(super) struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    pub(super) fn lock() -> Stdout {
        Stdout(io::stdout().lock())
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark)
    }
}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, ReaderGone)
    } else {
        e
    }
}

/// Standard output's reader has gone away.
#[derive(Debug)]
pub(super) struct ReaderGone;

impl std::fmt::Display for ReaderGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for ReaderGone {}

/// Whether `e` is a write to standard output whose reader has gone.
pub(super) fn reader_gone(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<ReaderGone>())
}
