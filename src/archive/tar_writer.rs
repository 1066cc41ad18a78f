//! A minimal ustar writer that produces exactly the headers Go's
//! `archive/tar` writes for `docker save` (formats.md §A.1): octal fields
//! zero-padded with a trailing NUL, the checksum as six digits, NUL, space,
//! `uname`/`gname` `root`, and two zero blocks at the end with no record
//! padding.

use crate::error::{Error, Result};
use std::io::{self, Read, Write};

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (mode `0100644`).
    File,
    /// A directory (mode `040755`), name ending in `/`.
    Dir,
    /// A symbolic link (mode `0120777`).
    Symlink,
}

/// Writes ustar entries to `W`.
pub struct TarWriter<W: Write> {
    out: W,
}

fn octal(field: &mut [u8], value: u64) -> Result<()> {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return Err(Error::internal(format!(
            "value {value} does not fit a tar header field"
        )));
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

impl<W: Write> TarWriter<W> {
    /// A writer on `out`.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    fn header(&mut self, name: &str, kind: Kind, size: u64, mtime: i64, link: &str) -> Result<()> {
        let mut h = [0u8; 512];
        let (name_field, prefix_field) = split_name(name)?;
        h[..name_field.len()].copy_from_slice(name_field.as_bytes());
        let (mode, flag) = match kind {
            Kind::File => (0o100644, b'0'),
            Kind::Dir => (0o40755, b'5'),
            Kind::Symlink => (0o120777, b'2'),
        };
        octal(&mut h[100..108], mode)?;
        octal(&mut h[108..116], 0)?;
        octal(&mut h[116..124], 0)?;
        octal(&mut h[124..136], size)?;
        octal(&mut h[136..148], mtime.max(0) as u64)?;
        h[156] = flag;
        if link.len() > 100 {
            return Err(Error::internal(format!("link target {link:?} is too long")));
        }
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        octal(&mut h[329..337], 0)?;
        octal(&mut h[337..345], 0)?;
        h[345..345 + prefix_field.len()].copy_from_slice(prefix_field.as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        octal(&mut h[148..155], sum)?;
        h[155] = b' ';
        self.out.write_all(&h)?;
        Ok(())
    }

    /// A regular file whose bytes come from `data` (exactly `size` of them).
    pub fn file(&mut self, name: &str, mtime: i64, size: u64, data: impl Read) -> Result<()> {
        self.header(name, Kind::File, size, mtime, "")?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(Error::corrupt(format!(
                "{name}: expected {size} bytes, read {copied}"
            )));
        }
        self.pad(size)
    }

    /// A directory; `name` must end with `/`.
    pub fn dir(&mut self, name: &str, mtime: i64) -> Result<()> {
        self.header(name, Kind::Dir, 0, mtime, "")
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, mtime: i64, target: &str) -> Result<()> {
        self.header(name, Kind::Symlink, 0, mtime, target)
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (size % 512) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    /// Two zero blocks; returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Split a path into ustar `name` (≤ 100 bytes) and `prefix` (≤ 155 bytes).
fn split_name(name: &str) -> Result<(&str, &str)> {
    if name.len() <= 100 {
        return Ok((name, ""));
    }
    let bytes = name.as_bytes();
    let limit = bytes.len().min(156);
    for i in (1..limit).rev() {
        if bytes[i] == b'/' && bytes.len() - i - 1 <= 100 && i <= 155 {
            return Ok((&name[i + 1..], &name[..i]));
        }
    }
    Err(Error::internal(format!(
        "path {name:?} is too long for a ustar header"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_crate_reads_what_we_write() {
        let mut w = TarWriter::new(Vec::new());
        w.dir("d/", 5).unwrap();
        w.file("d/f", 6, 3, &b"abc"[..]).unwrap();
        w.symlink("l", 7, "d/f").unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len(), 512 * 4 + 1024);
        let mut a = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["d/", "d/f", "l"]);
    }
}
