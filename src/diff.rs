//! Layers from directories: Docker's naive diff (`ChangesDirs` +
//! `ExportChanges`, formats.md C.4) with Docker's tar headers (C.5).
//!
//! Both trees are walked without following symlinks. A path present in both
//! is changed when its mode (type and permission bits), uid, gid or rdev
//! differ, or — for non-directories — its mtime (same seconds and equal
//! nanoseconds, or either side with 0 ns, counts as equal) or size differ,
//! or its `security.capability` xattr differs. Only-new paths are added with
//! their subtree, only-old ones deleted (one whiteout for a whole
//! directory), and every directory holding a change is emitted as modified.
//! The stream is Go's `archive/tar` writer output: ustar headers, PAX
//! extended headers only when a field needs one, content padded to 512
//! bytes, 1024 zero bytes at the end. An empty diff is exactly the 1024-byte
//! empty tar.

use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What happened to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Changed (or a directory holding changes).
    Modify,
    /// Only in the new tree.
    Add,
    /// Only in the old tree.
    Delete,
}

/// One change: `path` is absolute within the tree (`/etc/passwd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// `/`-rooted path bytes.
    pub path: Vec<u8>,
    /// The kind of change.
    pub kind: ChangeKind,
}

#[derive(Clone, Debug)]
struct Node {
    mode: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    size: u64,
    mtime: (i64, i64),
    capability: Option<Vec<u8>>,
    children: BTreeMap<Vec<u8>, Node>,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
}

fn capability(path: &Path) -> Option<Vec<u8>> {
    let n = rustix::fs::lgetxattr_query(path, "security.capability").ok()?;
    let mut buf = vec![0u8; n];
    let n = rustix::fs::lgetxattr(path, "security.capability", &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn collect(path: &Path) -> Result<Node> {
    let md = std::fs::symlink_metadata(path)
        .map_err(|e| Error::from(e).context(format!("lstat {}", path.display())))?;
    let mut node = Node {
        mode: md.mode(),
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev(),
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        capability: capability(path),
        children: BTreeMap::new(),
    };
    if md.is_dir() {
        for e in std::fs::read_dir(path)? {
            let e = e?;
            let name = e.file_name().as_bytes().to_vec();
            node.children.insert(name, collect(&e.path())?);
        }
    }
    Ok(node)
}

fn same_time(a: (i64, i64), b: (i64, i64)) -> bool {
    a == b || (a.0 == b.0 && (a.1 == 0 || b.1 == 0))
}

fn stat_different(old: &Node, new: &Node) -> bool {
    old.mode != new.mode
        || old.uid != new.uid
        || old.gid != new.gid
        || old.rdev != new.rdev
        || (old.mode & 0o170000 != 0o040000
            && (!same_time(old.mtime, new.mtime) || old.size != new.size))
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent == b"/" {
        [b"/", name].concat()
    } else {
        [parent, b"/", name].concat()
    }
}

/// Docker's `addChanges`: `added` says whether `new` itself was already reported.
fn add_changes(new: &Node, old: Option<&Node>, path: &[u8], added: bool, out: &mut Vec<Change>) {
    let at_entry = out.len();
    let mut added = added;
    if old.is_none() {
        out.push(Change {
            path: path.to_vec(),
            kind: ChangeKind::Add,
        });
        added = true;
    }
    let mut old_children: BTreeMap<&Vec<u8>, &Node> = BTreeMap::new();
    if let Some(o) = old
        && new.is_dir()
    {
        old_children.extend(o.children.iter());
    }
    for (name, child) in &new.children {
        let child_path = join(path, name);
        let old_child = old_children.remove(name);
        let mut child_added = false;
        if let Some(oc) = old_child
            && (stat_different(oc, child) || oc.capability != child.capability)
        {
            out.push(Change {
                path: child_path.clone(),
                kind: ChangeKind::Modify,
            });
            child_added = true;
        }
        add_changes(child, old_child, &child_path, child_added, out);
    }
    for name in old_children.keys() {
        out.push(Change {
            path: join(path, name),
            kind: ChangeKind::Delete,
        });
    }
    if out.len() > at_entry && new.is_dir() && !added && path != b"/" {
        out.insert(
            at_entry,
            Change {
                path: path.to_vec(),
                kind: ChangeKind::Modify,
            },
        );
    }
}

/// `ChangesDirs(new, old)`: the changes turning `old` into `new`, sorted by path.
pub fn changes(new: &Path, old: &Path) -> Result<Vec<Change>> {
    let new_tree = collect(new)?;
    let old_tree = collect(old)?;
    let mut out = Vec::new();
    add_changes(&new_tree, Some(&old_tree), b"/", false, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `ChangesSize`: bytes of added or modified non-directories in `new`
/// (each hardlinked inode once).
pub fn changes_size(new: &Path, changes: &[Change]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut size = 0;
    for c in changes {
        if c.kind == ChangeKind::Delete {
            continue;
        }
        let p = new.join(std::ffi::OsStr::from_bytes(&c.path[1..]));
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() || (md.nlink() > 1 && !seen.insert(md.ino())) {
            continue;
        }
        size += md.size();
    }
    size
}

// ---------------------------------------------------------------------------
// Go's archive/tar writer, as Docker drives it.

/// A header as Docker fills it.
#[derive(Clone, Debug, Default)]
struct Header {
    name: Vec<u8>,
    linkname: Vec<u8>,
    mode: i64,
    uid: i64,
    gid: i64,
    size: i64,
    mtime: i64,
    typeflag: u8,
    devmajor: i64,
    devminor: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn fits_octal(len: usize, x: i64) -> bool {
    let bits = (len as u32 - 1) * 3;
    x >= 0 && (len >= 22 || x < (1i64 << bits))
}

fn put_str(b: &mut [u8], s: &[u8]) {
    let n = s.len().min(b.len());
    b[..n].copy_from_slice(&s[..n]);
}

fn put_octal(b: &mut [u8], x: i64) {
    let x = if fits_octal(b.len(), x) { x } else { 0 };
    let s = format!("{x:o}");
    let pad = (b.len() - 1).saturating_sub(s.len());
    let full = format!("{}{s}", "0".repeat(pad));
    put_str(b, full.as_bytes());
}

fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|b| *b < 0x80).collect()
}

fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|b| *b < 0x80)
}

/// Go's `splitUSTARPath`.
fn split_ustar(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = s.len();
    if length <= 100 || !is_ascii(s) {
        return None;
    } else if length > 156 {
        length = 156;
    } else if s[length - 1] == b'/' {
        length -= 1;
    }
    let i = s[..length].iter().rposition(|&b| b == b'/')?;
    let nlen = s.len() - i - 1;
    if i == 0 || nlen > 100 || nlen == 0 || i > 155 {
        return None;
    }
    Some((&s[..i], &s[i + 1..]))
}

fn pax_record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let mut size = k.len() + v.len() + 3;
    size += size.to_string().len();
    let mut rec = [size.to_string().as_bytes(), b" ", k, b"=", v, b"\n"].concat();
    if rec.len() != size {
        size = rec.len();
        rec = [size.to_string().as_bytes(), b" ", k, b"=", v, b"\n"].concat();
    }
    rec
}

fn block(
    name: &[u8],
    linkname: &[u8],
    h: &Header,
    size: i64,
    prefix: &[u8],
    typeflag: u8,
) -> [u8; 512] {
    let mut b = [0u8; 512];
    put_str(&mut b[0..100], name);
    put_octal(&mut b[100..108], h.mode);
    put_octal(&mut b[108..116], h.uid);
    put_octal(&mut b[116..124], h.gid);
    put_octal(&mut b[124..136], size);
    put_octal(&mut b[136..148], h.mtime);
    b[156] = typeflag;
    put_str(&mut b[157..257], linkname);
    put_octal(&mut b[329..337], h.devmajor);
    put_octal(&mut b[337..345], h.devminor);
    put_str(&mut b[345..500], prefix);
    finish_block(&mut b);
    b
}

fn finish_block(b: &mut [u8; 512]) {
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    let sum: i64 = b
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                32
            } else {
                x as i64
            }
        })
        .sum();
    put_octal(&mut b[148..155], sum);
    b[155] = b' ';
}

struct TarWriter<W: Write> {
    w: W,
}

impl<W: Write> TarWriter<W> {
    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (512 - len % 512) % 512;
        self.w.write_all(&vec![0u8; rem as usize])
    }

    /// Go's `Writer.WriteHeader` for formats USTAR|PAX (whichever fits, USTAR first).
    fn write_header(&mut self, h: &Header) -> io::Result<()> {
        let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut ustar = true;
        if h.name.len() > 100 || !is_ascii(&h.name) {
            if split_ustar(&h.name).is_none() {
                ustar = false;
            }
            pax.insert(b"path".to_vec(), h.name.clone());
        }
        if h.linkname.len() > 100 || !is_ascii(&h.linkname) {
            ustar = false;
            pax.insert(b"linkpath".to_vec(), h.linkname.clone());
        }
        for (key, v, len) in [("uid", h.uid, 8), ("gid", h.gid, 8), ("size", h.size, 12)] {
            if !fits_octal(len, v) {
                ustar = false;
                pax.insert(key.as_bytes().to_vec(), v.to_string().into_bytes());
            }
        }
        if !fits_octal(12, h.mtime) {
            ustar = false;
            pax.insert(b"mtime".to_vec(), h.mtime.to_string().into_bytes());
        }
        for (k, v) in &h.xattrs {
            ustar = false;
            pax.insert([b"SCHILY.xattr.", k.as_slice()].concat(), v.clone());
        }
        if ustar {
            let (prefix, name) = split_ustar(&h.name).unwrap_or((b"", &h.name));
            let b = block(name, &h.linkname, h, h.size, prefix, h.typeflag);
            return self.w.write_all(&b);
        }
        let data: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        // `path.Join(dir, "PaxHeaders.0", file)`.
        let (dir, file) = match h.name.iter().rposition(|&b| b == b'/') {
            Some(i) => (&h.name[..=i], &h.name[i + 1..]),
            None => (&b""[..], &h.name[..]),
        };
        let mut xname = [dir, b"PaxHeaders.0"].concat();
        if !file.is_empty() {
            xname.push(b'/');
            xname.extend_from_slice(file);
        }
        let mut xname = to_ascii(&xname);
        xname.truncate(100);
        while xname.last() == Some(&b'/') {
            xname.pop();
        }
        let mut xb = [0u8; 512];
        put_str(&mut xb[0..100], &xname);
        put_octal(&mut xb[100..108], 0);
        put_octal(&mut xb[108..116], 0);
        put_octal(&mut xb[116..124], 0);
        put_octal(&mut xb[124..136], data.len() as i64);
        put_octal(&mut xb[136..148], 0);
        xb[156] = b'x';
        finish_block(&mut xb);
        self.w.write_all(&xb)?;
        self.w.write_all(&data)?;
        self.pad(data.len() as u64)?;
        let b = block(
            &to_ascii(&h.name),
            &to_ascii(&h.linkname),
            h,
            h.size,
            b"",
            h.typeflag,
        );
        self.w.write_all(&b)
    }

    fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; 1024])?;
        Ok(self.w)
    }
}

/// The `security.capability` record Docker writes (revision 3 rewritten to 2).
fn capability_record(path: &Path) -> Option<Vec<u8>> {
    let mut cap = capability(path)?;
    if cap.len() > 3 && cap[3] == 3 {
        cap[3] = 2;
        cap.truncate(20);
    }
    Some(cap)
}

/// `ExportChanges(dir, changes)`: write the layer tar of `changes` (paths in
/// `dir`) to `out`. `now_unix` is the whiteouts' mtime (Docker: wall clock,
/// rounded to the second).
pub fn export_changes<W: Write>(
    dir: &Path,
    changes: &[Change],
    now_unix: i64,
    out: W,
) -> Result<W> {
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut tw = TarWriter { w: out };
    let mut seen: HashMap<u64, Vec<u8>> = HashMap::new();
    for c in sorted {
        let rel = c.path.strip_prefix(b"/").unwrap_or(&c.path);
        if c.kind == ChangeKind::Delete {
            let (d, base) = match rel.iter().rposition(|&b| b == b'/') {
                Some(i) => (&rel[..=i], &rel[i + 1..]),
                None => (&b""[..], rel),
            };
            let h = Header {
                name: [d, b".wh.", base].concat(),
                mtime: now_unix,
                typeflag: b'0',
                ..Header::default()
            };
            tw.write_header(&h)?;
            continue;
        }
        let path: PathBuf = dir.join(std::ffi::OsStr::from_bytes(rel));
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue; // vanished meanwhile: Docker logs and goes on
        };
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        let (typeflag, type_bits) = if ft.is_file() {
            (b'0', 0o100000)
        } else if ft.is_dir() {
            (b'5', 0o040000)
        } else if ft.is_symlink() {
            (b'2', 0o120000)
        } else if ft.is_char_device() {
            (b'3', 0o020000)
        } else if ft.is_block_device() {
            (b'4', 0o060000)
        } else if ft.is_fifo() {
            (b'6', 0o010000)
        } else {
            continue; // sockets: "archive/tar: sockets not supported", skipped
        };
        let mut name = rel.to_vec();
        if ft.is_dir() {
            name.push(b'/');
        }
        let linkname = if ft.is_symlink() {
            std::fs::read_link(&path)?.as_os_str().as_bytes().to_vec()
        } else {
            Vec::new()
        };
        let rdev = md.rdev();
        let mut h = Header {
            name,
            linkname,
            mode: (md.mode() & 0o7777) as i64 | type_bits,
            uid: md.uid() as i64,
            gid: md.gid() as i64,
            size: if ft.is_file() { md.size() as i64 } else { 0 },
            mtime: md.mtime(),
            typeflag,
            devmajor: rustix::fs::major(rdev) as i64,
            devminor: rustix::fs::minor(rdev) as i64,
            xattrs: Vec::new(),
        };
        if let Some(cap) = capability_record(&path) {
            h.xattrs.push((b"security.capability".to_vec(), cap));
        }
        if !ft.is_dir() && md.nlink() > 1 {
            if let Some(first) = seen.get(&md.ino()) {
                h.typeflag = b'1';
                h.linkname = first.clone();
                h.size = 0;
            } else {
                seen.insert(md.ino(), rel.to_vec());
            }
        }
        tw.write_header(&h)?;
        if h.typeflag == b'0' && h.size > 0 {
            let f = std::fs::File::open(&path)?;
            let mut limited = f.take(h.size as u64);
            let n = io::copy(&mut limited, &mut tw.w)?;
            if n < h.size as u64 {
                // The file shrank: pad with zeros as the header promised.
                tw.w.write_all(&vec![0u8; (h.size as u64 - n) as usize])?;
            }
            tw.pad(h.size as u64)?;
        }
    }
    Ok(tw.finish()?)
}

/// The layer tar turning `old` into `new`, written to `out`.
pub fn diff_dirs<W: Write>(new: &Path, old: &Path, now_unix: i64, out: W) -> Result<W> {
    let ch = changes(new, old)?;
    export_changes(new, &ch, now_unix, out)
}

/// The current time in whole seconds, rounded as Go's `Time.Round(time.Second)`.
pub fn now_rounded() -> i64 {
    let n = crate::store::now_unix_nanos();
    let (s, ns) = (n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000));
    if ns >= 500_000_000 { s + 1 } else { s }
}
