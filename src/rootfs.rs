//! Layers as filesystems: applying layer tars to a directory (Docker's
//! `UnpackLayer`, formats.md C.3), copying trees (vfs "copy-up"), and the
//! cache of materialized read-only layers under `<root>/layers/<chain hex>/`.
//!
//! Every write goes through directory file descriptors. Only the tree's
//! root is opened by path; each entry's parent directory is then resolved
//! with `openat2(RESOLVE_IN_ROOT)`, so symlinks (absolute ones included)
//! resolve as if the tree were `/` — Docker's chroot semantics — and the
//! kernel guarantees that nothing outside the tree is ever reached, whatever
//! the layer contains. The last component is never followed (`*at` calls
//! with `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW`).
//!
//! What is preserved: file types (regular, directory, symlink, hardlink,
//! char/block devices, fifos), permission bits including setuid/setgid/
//! sticky, ownership (only when running as root; otherwise skipped),
//! mtimes with nanoseconds, and xattrs (`SCHILY.xattr.*` records on apply,
//! on regular files, directories, symlinks, device nodes and fifos — the
//! last three with `lsetxattr` as Docker does; all xattrs of regular files
//! and directories on copy). ENOTSUP/EPERM are ignored with a warning as
//! Docker does: Linux refuses `user.*` xattrs on symlinks and device nodes,
//! and `trusted.*` needs CAP_SYS_ADMIN. Not supported: AUFS hardlink
//! targets under `.wh..wh.plnk/` (such hardlinks fail as dangling).
//!
//! The cache is derived state: a directory `<root>/layers/<chain hex>/` is
//! the full filesystem of that chain (vfs semantics: no sharing between
//! layers). It is built in a temporary sibling (`.tmp-…`) and renamed into
//! place, so a crash leaves at worst a temporary directory, never a partial
//! layer under its final name. A chain's content never changes (ChainIDs
//! are content addresses), so a cached directory is valid forever; removing
//! it only costs a rebuild.

use crate::error::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What applying a layer may do beyond creating files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Create character and block device nodes (else a layer with one is refused).
    pub allow_devices: bool,
    /// `lchown` entries to the header's uid/gid.
    pub chown: bool,
}

impl ApplyOptions {
    /// What this process may do: devices and ownership only as root.
    pub fn for_process() -> ApplyOptions {
        let root = is_root();
        ApplyOptions {
            allow_devices: root,
            chown: root,
        }
    }
}

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn errno(e: Errno) -> Error {
    Error::from(io::Error::from(e))
}

fn ctx(e: Errno, what: impl std::fmt::Display) -> Error {
    Error::internal(format!("{what}: {}", io::Error::from(e)))
}

fn cstr(b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| Error::invalid("path contains a NUL byte"))
}

/// Open the root of a tree (the only path-based open).
fn open_root(dir: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, format!("open {}", dir.display())))
}

/// Open directory `rel` (components joined by `/`, empty = the root itself)
/// resolved inside `root` as if `root` were `/`.
fn open_in_root(root: BorrowedFd<'_>, rel: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let p = if rel.is_empty() { &b"."[..] } else { rel };
    rustix::fs::openat2(
        root,
        p,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

fn open_dir_path(root: BorrowedFd<'_>, rel: &[u8]) -> rustix::io::Result<OwnedFd> {
    open_in_root(root, rel, OFlags::PATH | OFlags::DIRECTORY)
}

/// A cleaned tar name: its components, or `None` when it climbs out.
fn clean_name(name: &[u8]) -> Option<Vec<Vec<u8>>> {
    let absolute = name.starts_with(b"/");
    let mut out: Vec<Vec<u8>> = Vec::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() && !absolute {
                    return None;
                }
            }
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Go's `filepath.Join(dir, rel)` (cleaned), for messages.
fn lexical_join(dir: &Path, rel: &[u8]) -> String {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let base = dir.as_os_str().as_bytes();
    for comp in base.split(|&b| b == b'/').chain(rel.split(|&b| b == b'/')) {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c.to_vec()),
        }
    }
    format!("/{}", show(&join(&parts)))
}

/// Make sure the directory `comps` exists (creating missing ones with
/// mode 0600, Docker's quirk) and open it.
fn ensure_dir(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> Result<OwnedFd> {
    match open_dir_path(root, &join(comps)) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(ctx(e, format!("open {:?}", show(&join(comps))))),
    }
    let mut cur = open_dir_path(root, b"").map_err(errno)?;
    for i in 0..comps.len() {
        let prefix = join(&comps[..=i]);
        match open_dir_path(root, &prefix) {
            Ok(fd) => cur = fd,
            Err(Errno::NOENT) => {
                rustix::fs::mkdirat(&cur, comps[i].as_slice(), Mode::from_raw_mode(0o600))
                    .map_err(|e| ctx(e, format!("mkdir {:?}", show(&prefix))))?;
                cur = open_dir_path(root, &prefix)
                    .map_err(|e| ctx(e, format!("open {:?}", show(&prefix))))?;
            }
            Err(e) => return Err(ctx(e, format!("open {:?}", show(&prefix)))),
        }
    }
    Ok(cur)
}

fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<Stat> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode as _) == FileType::Directory
}

/// `os.RemoveAll(dir/name)` without following any symlink.
fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<()> {
    let st = match lstat_at(dir, name) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if is_dir(&st) {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for child in list_dir(fd.as_fd())? {
            remove_all(fd.as_fd(), &child)?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())
    }
}

/// Names in a directory (an fd opened for reading), without `.` and `..`.
fn list_dir(fd: BorrowedFd<'_>) -> rustix::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for entry in Dir::read_from(fd)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    out.sort();
    Ok(out)
}

fn open_read_dir(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn timespec(secs: i64, nanos: u32) -> Timespec {
    Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    }
}

/// A header's time as (seconds, nanoseconds): the PAX record if any, else the ustar field.
fn pax_time(value: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(value).ok()?;
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let secs: i64 = int.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().ok()?;
    if int.starts_with('-') && nanos > 0 {
        // "-1.5" is 1.5 s before the epoch.
        return Some((secs - 1, 1_000_000_000 - nanos));
    }
    Some((secs, nanos))
}

struct Pending {
    comps: Vec<Vec<u8>>,
    mtime: (i64, u32),
}

/// Apply one layer tar stream to the tree at `dir` (C.3). Returns the
/// layer's size (sum of entry sizes). Errors name the offending entry;
/// what was applied before an error stays (the caller discards the tree).
pub fn apply_layer(dir: &Path, reader: impl Read, opts: &ApplyOptions) -> Result<u64> {
    let root_fd = open_root(dir)?;
    let root = root_fd.as_fd();
    let mut archive = tar::Archive::new(reader);
    let mut unpacked: HashSet<Vec<u8>> = HashSet::new();
    let mut dirs: Vec<Pending> = Vec::new();
    let mut size = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| Error::invalid(format!("invalid tar stream: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::invalid(format!("invalid tar stream: {e}")))?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        size = size.saturating_add(entry.size());
        let raw_name = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let (mut mtime, mut atime) = ((header.mtime().unwrap_or(0) as i64, 0u32), None);
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for ext in pax.flatten() {
                let key = ext.key_bytes();
                if let Some(x) = key.strip_prefix(b"SCHILY.xattr.") {
                    xattrs.push((x.to_vec(), ext.value_bytes().to_vec()));
                } else if key == b"mtime" {
                    if let Some(t) = pax_time(ext.value_bytes()) {
                        mtime = t;
                    }
                } else if key == b"atime" {
                    atime = pax_time(ext.value_bytes());
                }
            }
        }
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let Some(comps) = clean_name(&raw_name) else {
            return Err(Error::invalid(format!(
                "{:?} is outside of {:?}",
                show(&raw_name),
                dir.display().to_string()
            )));
        };
        let name = join(&comps);
        // AUFS metadata (top-level `.wh..wh.*`), except the root opaque marker.
        if name.starts_with(b".wh..wh.") && name != b".wh..wh..opq" {
            continue;
        }
        // Ensure the parent exists (mode 0600 for created ones).
        let parent_comps: &[Vec<u8>] = if comps.is_empty() {
            &[]
        } else {
            &comps[..comps.len() - 1]
        };
        let parent = if raw_name.ends_with(b"/") {
            match open_dir_path(root, &join(parent_comps)) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => ensure_dir(root, parent_comps)?,
                Err(e) => return Err(ctx(e, format!("open parent of {:?}", show(&name)))),
            }
        } else {
            ensure_dir(root, parent_comps)?
        };
        let base: Vec<u8> = comps.last().cloned().unwrap_or_else(|| b".".to_vec());
        if let Some(orig) = base.strip_prefix(b".wh.") {
            if base == b".wh..wh..opq" {
                lstat_at(parent.as_fd(), b".")
                    .map_err(|e| ctx(e, format!("opaque {:?}", show(&name))))?;
                let dfd = open_in_root(
                    root,
                    &join(parent_comps),
                    OFlags::RDONLY | OFlags::DIRECTORY,
                )
                .map_err(|e| ctx(e, format!("opaque {:?}", show(&name))))?;
                remove_not_unpacked(dfd.as_fd(), parent_comps.to_vec(), &unpacked)
                    .map_err(|e| ctx(e, format!("opaque {:?}", show(&name))))?;
            } else {
                remove_all(parent.as_fd(), orig)
                    .map_err(|e| ctx(e, format!("whiteout {:?}", show(&name))))?;
            }
            continue;
        }
        let pfd = parent.as_fd();
        let here = if comps.is_empty() {
            &b"."[..]
        } else {
            &base[..]
        };
        if !comps.is_empty()
            && let Ok(st) = lstat_at(pfd, here)
            && !(is_dir(&st) && kind == tar::EntryType::Directory)
        {
            remove_all(pfd, here).map_err(|e| ctx(e, format!("remove {:?}", show(&name))))?;
        }
        let mode = header.mode().unwrap_or(0) & 0o7777;
        let what = |e: Errno| ctx(e, format!("{:?}", show(&name)));
        let mut chmod_ok = true;
        match kind {
            tar::EntryType::Directory => match lstat_at(pfd, here) {
                Ok(st) if is_dir(&st) => {}
                _ => {
                    rustix::fs::mkdirat(pfd, here, Mode::from_raw_mode(mode as _)).map_err(what)?
                }
            },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let fd = rustix::fs::openat(
                    pfd,
                    here,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(mode as _),
                )
                .map_err(what)?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut entry, &mut file)
                    .map_err(|e| Error::internal(format!("{:?}: {e}", show(&name))))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (ft, is_dev) = match kind {
                    tar::EntryType::Char => (FileType::CharacterDevice, true),
                    tar::EntryType::Block => (FileType::BlockDevice, true),
                    _ => (FileType::Fifo, false),
                };
                if is_dev && !opts.allow_devices {
                    return Err(Error::invalid(format!(
                        "device node {:?} not permitted (creating devices needs root)",
                        show(&name)
                    )));
                }
                let dev = rustix::fs::makedev(
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                rustix::fs::mknodat(pfd, here, ft, Mode::from_raw_mode(mode as _), dev)
                    .map_err(what)?;
            }
            tar::EntryType::Link => {
                let target = link.clone().unwrap_or_default();
                let tcomps =
                    clean_name(&target).filter(|_| !crate::layer::escapes_from(0, &target));
                let Some((tbase, tparent)) = tcomps.as_deref().and_then(<[_]>::split_last) else {
                    return Err(Error::invalid(format!(
                        "invalid hardlink {:?} -> {:?}",
                        lexical_join(dir, &target),
                        show(&target)
                    )));
                };
                let tdir = open_dir_path(root, &join(tparent)).map_err(what)?;
                rustix::fs::linkat(tdir.as_fd(), tbase.as_slice(), pfd, here, AtFlags::empty())
                    .map_err(what)?;
                if let Ok(st) = lstat_at(tdir.as_fd(), tbase)
                    && FileType::from_raw_mode(st.st_mode as _) == FileType::Symlink
                {
                    chmod_ok = false;
                }
            }
            tar::EntryType::Symlink => {
                let target = link.clone().unwrap_or_default();
                if crate::layer::escapes_from(parent_comps.len(), &target) {
                    return Err(Error::invalid(format!(
                        "invalid symlink {:?} -> {:?}",
                        format!("{}/{}", dir.display(), show(&name)),
                        show(&target)
                    )));
                }
                rustix::fs::symlinkat(target.as_slice(), pfd, here).map_err(what)?;
                chmod_ok = false;
            }
            other => {
                return Err(Error::invalid(format!(
                    "unhandled tar header type {}",
                    other.as_byte()
                )));
            }
        }
        if opts.chown {
            let uid = header.uid().unwrap_or(0) as u32;
            let gid = header.gid().unwrap_or(0) as u32;
            rustix::fs::chownat(
                pfd,
                here,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(what)?;
        }
        if !xattrs.is_empty()
            && matches!(
                kind,
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory
            )
        {
            let flags = if kind == tar::EntryType::Directory {
                OFlags::RDONLY | OFlags::DIRECTORY
            } else {
                OFlags::RDONLY
            };
            let fd = rustix::fs::openat(
                pfd,
                here,
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(what)?;
            let mut ignored = Vec::new();
            for (k, v) in &xattrs {
                match rustix::fs::fsetxattr(&fd, cstr(k)?.as_c_str(), v, XattrFlags::empty()) {
                    Ok(()) => {}
                    Err(e @ (Errno::NOTSUP | Errno::PERM)) => ignored.push((show(k), e)),
                    Err(e) => return Err(what(e)),
                }
            }
            warn_ignored_xattrs(&name, &ignored);
        } else if !xattrs.is_empty()
            && matches!(
                kind,
                tar::EntryType::Symlink
                    | tar::EntryType::Char
                    | tar::EntryType::Block
                    | tar::EntryType::Fifo
            )
        {
            // Docker's `Lsetxattr` on the path: a symlink or device node
            // cannot be opened, so go through the parent's descriptor
            // (`/proc/self/fd/<parent>/<name>`: the parent is already
            // resolved inside the tree; the last component is not followed).
            let path = [
                format!("/proc/self/fd/{}/", std::os::fd::AsRawFd::as_raw_fd(&pfd)).into_bytes(),
                here.to_vec(),
            ]
            .concat();
            let path = cstr(&path)?;
            let mut ignored = Vec::new();
            for (k, v) in &xattrs {
                match rustix::fs::lsetxattr(
                    path.as_c_str(),
                    cstr(k)?.as_c_str(),
                    v,
                    XattrFlags::empty(),
                ) {
                    Ok(()) => {}
                    Err(e @ (Errno::NOTSUP | Errno::PERM)) => ignored.push((show(k), e)),
                    Err(e) => return Err(what(e)),
                }
            }
            warn_ignored_xattrs(&name, &ignored);
        }
        if chmod_ok {
            rustix::fs::chmodat(pfd, here, Mode::from_raw_mode(mode as _), AtFlags::empty())
                .map_err(what)?;
        }
        let a = atime.filter(|a| *a > mtime).unwrap_or(mtime);
        let times = Timestamps {
            last_access: timespec(a.0, a.1),
            last_modification: timespec(mtime.0, mtime.1),
        };
        if kind == tar::EntryType::Directory {
            dirs.push(Pending {
                comps: comps.clone(),
                mtime,
            });
        } else if chmod_ok || kind == tar::EntryType::Symlink {
            rustix::fs::utimensat(pfd, here, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(what)?;
        }
        unpacked.insert(name);
    }
    for d in dirs {
        let (parent, base) = match d.comps.split_last() {
            Some((b, p)) => (open_dir_path(root, &join(p)), b.clone()),
            None => (open_dir_path(root, b""), b".".to_vec()),
        };
        let parent = parent.map_err(errno)?;
        let t = timespec(d.mtime.0, d.mtime.1);
        let times = Timestamps {
            last_access: t,
            last_modification: t,
        };
        match rustix::fs::utimensat(&parent, base.as_slice(), &times, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(ctx(e, format!("{:?}", show(&join(&d.comps))))),
        }
    }
    Ok(size)
}

/// Docker's warning for xattrs the filesystem refused (ENOTSUP, EPERM:
/// `user.*` on a symlink or device node, `trusted.*` without
/// CAP_SYS_ADMIN): logged, never an error.
fn warn_ignored_xattrs(name: &[u8], ignored: &[(String, Errno)]) {
    if !ignored.is_empty() {
        let errors: Vec<String> = ignored.iter().map(|(k, e)| format!("{k}: {e}")).collect();
        tracing::warn!(
            path = %show(name),
            errors = ?errors,
            "ignored xattrs in archive: underlying filesystem doesn't support them"
        );
    }
}

/// The opaque-directory walk: remove every entry below `dir` that this
/// layer has not created so far.
fn remove_not_unpacked(
    dir: BorrowedFd<'_>,
    at: Vec<Vec<u8>>,
    unpacked: &HashSet<Vec<u8>>,
) -> rustix::io::Result<()> {
    for child in list_dir(dir)? {
        let mut comps = at.clone();
        comps.push(child.clone());
        if !unpacked.contains(&join(&comps)) {
            remove_all(dir, &child)?;
            continue;
        }
        if let Ok(st) = lstat_at(dir, &child)
            && is_dir(&st)
        {
            let fd = open_read_dir(dir, &child)?;
            remove_not_unpacked(fd.as_fd(), comps, unpacked)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Copying trees (vfs copy-up).

struct Copier {
    chown: bool,
    /// (dev, ino) of multiply-linked sources → path of the first copy (from the dst root).
    seen: HashMap<(u64, u64), Vec<u8>>,
    dst_root: OwnedFd,
}

fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) {
    let Ok(n) = rustix::fs::flistxattr_query(src) else {
        return;
    };
    if n == 0 {
        return;
    }
    let mut names = vec![0u8; n];
    let Ok(n) = rustix::fs::flistxattr(src, &mut names[..]) else {
        return;
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(c) = CString::new(name) else { continue };
        let Ok(len) = rustix::fs::fgetxattr_query(src, c.as_c_str()) else {
            continue;
        };
        let mut value = vec![0u8; len];
        if let Ok(len) = rustix::fs::fgetxattr(src, c.as_c_str(), &mut value[..]) {
            let _ = rustix::fs::fsetxattr(dst, c.as_c_str(), &value[..len], XattrFlags::empty());
        }
    }
}

impl Copier {
    fn copy_dir(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, at: &[u8]) -> Result<()> {
        for name in list_dir(src).map_err(errno)? {
            let rel = if at.is_empty() {
                name.clone()
            } else {
                [at, b"/", &name].concat()
            };
            let what = |e: Errno| ctx(e, format!("copy {:?}", show(&rel)));
            let st = lstat_at(src, &name).map_err(what)?;
            let ft = FileType::from_raw_mode(st.st_mode as _);
            let perm = Mode::from_raw_mode((st.st_mode & 0o7777) as _);
            let times = Timestamps {
                last_access: timespec(st.st_atime as i64, st.st_atime_nsec as u32),
                last_modification: timespec(st.st_mtime as i64, st.st_mtime_nsec as u32),
            };
            if ft != FileType::Directory && st.st_nlink > 1 {
                let key = (st.st_dev as u64, st.st_ino as u64);
                if let Some(first) = self.seen.get(&key) {
                    let first = first.clone();
                    let (tparent, tbase) = match first.iter().rposition(|&b| b == b'/') {
                        Some(i) => (first[..i].to_vec(), first[i + 1..].to_vec()),
                        None => (Vec::new(), first.clone()),
                    };
                    let tdir = open_dir_path(self.dst_root.as_fd(), &tparent).map_err(what)?;
                    rustix::fs::linkat(
                        tdir,
                        tbase.as_slice(),
                        dst,
                        name.as_slice(),
                        AtFlags::empty(),
                    )
                    .map_err(what)?;
                    continue;
                }
                self.seen.insert(key, rel.clone());
            }
            match ft {
                FileType::Directory => {
                    rustix::fs::mkdirat(dst, name.as_slice(), Mode::from_raw_mode(0o700))
                        .map_err(what)?;
                    let s = open_read_dir(src, &name).map_err(what)?;
                    let d = open_read_dir(dst, &name).map_err(what)?;
                    self.copy_dir(s.as_fd(), d.as_fd(), &rel)?;
                    copy_xattrs(s.as_fd(), d.as_fd());
                    if self.chown {
                        rustix::fs::fchown(
                            &d,
                            Some(rustix::fs::Uid::from_raw(st.st_uid)),
                            Some(rustix::fs::Gid::from_raw(st.st_gid)),
                        )
                        .map_err(what)?;
                    }
                    rustix::fs::fchmod(&d, perm).map_err(what)?;
                    rustix::fs::futimens(&d, &times).map_err(what)?;
                }
                FileType::RegularFile => {
                    let s = rustix::fs::openat(
                        src,
                        name.as_slice(),
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(what)?;
                    let d = rustix::fs::openat(
                        dst,
                        name.as_slice(),
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(what)?;
                    let (mut sf, mut df) = (std::fs::File::from(s), std::fs::File::from(d));
                    io::copy(&mut sf, &mut df)
                        .map_err(|e| Error::internal(format!("copy {:?}: {e}", show(&rel))))?;
                    copy_xattrs(sf.as_fd(), df.as_fd());
                    if self.chown {
                        rustix::fs::fchown(
                            &df,
                            Some(rustix::fs::Uid::from_raw(st.st_uid)),
                            Some(rustix::fs::Gid::from_raw(st.st_gid)),
                        )
                        .map_err(what)?;
                    }
                    rustix::fs::fchmod(&df, perm).map_err(what)?;
                    rustix::fs::futimens(&df, &times).map_err(what)?;
                }
                FileType::Symlink => {
                    let target =
                        rustix::fs::readlinkat(src, name.as_slice(), Vec::new()).map_err(what)?;
                    rustix::fs::symlinkat(target.as_c_str(), dst, name.as_slice()).map_err(what)?;
                    self.meta_at(dst, &name, &st, &times, false).map_err(what)?;
                }
                _ => {
                    rustix::fs::mknodat(dst, name.as_slice(), ft, perm, st.st_rdev as _)
                        .map_err(what)?;
                    self.meta_at(dst, &name, &st, &times, true).map_err(what)?;
                }
            }
        }
        Ok(())
    }

    fn meta_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        st: &Stat,
        times: &Timestamps,
        chmod: bool,
    ) -> rustix::io::Result<()> {
        if self.chown {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(st.st_uid)),
                Some(rustix::fs::Gid::from_raw(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        if chmod {
            rustix::fs::chmodat(
                dir,
                name,
                Mode::from_raw_mode((st.st_mode & 0o7777) as _),
                AtFlags::empty(),
            )?;
        }
        rustix::fs::utimensat(dir, name, times, AtFlags::SYMLINK_NOFOLLOW)
    }
}

/// Copy the tree `src` to `dst` (which must not exist), preserving types,
/// modes, ownership (as root), mtimes, xattrs and hardlinks within the tree.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir(dst)
        .map_err(|e| Error::from(e).context(format!("creating {}", dst.display())))?;
    let s = rustix::fs::open(
        src,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, format!("open {}", src.display())))?;
    let d = rustix::fs::open(
        dst,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, format!("open {}", dst.display())))?;
    let mut c = Copier {
        chown: is_root(),
        seen: HashMap::new(),
        dst_root: open_root(dst)?,
    };
    c.copy_dir(s.as_fd(), d.as_fd(), b"")?;
    let st = rustix::fs::fstat(&s).map_err(errno)?;
    copy_xattrs(s.as_fd(), d.as_fd());
    if c.chown {
        rustix::fs::fchown(
            &d,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        )
        .map_err(errno)?;
    }
    rustix::fs::fchmod(&d, Mode::from_raw_mode((st.st_mode & 0o7777) as _)).map_err(errno)?;
    let times = Timestamps {
        last_access: timespec(st.st_atime as i64, st.st_atime_nsec as u32),
        last_modification: timespec(st.st_mtime as i64, st.st_mtime_nsec as u32),
    };
    rustix::fs::futimens(&d, &times).map_err(errno)?;
    Ok(())
}

/// Remove a tree (renamed aside first, so a crash never leaves a
/// half-removed tree under its real name). Absent is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let aside = parent.join(format!(
        ".removing-{}-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        unique()
    ));
    std::fs::rename(path, &aside)?;
    let pfd = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let name = aside.file_name().map(OsStr::as_bytes).unwrap_or_default();
    remove_all(pfd.as_fd(), name).map_err(|e| ctx(e, format!("remove {}", path.display())))
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        crate::store::now_unix_nanos(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------
// The cache of materialized layers.

/// `<root>/layers`.
pub fn layers_dir(store_root: &Path) -> PathBuf {
    store_root.join("layers")
}

/// Where the filesystem of `chain` (None = no layers) is cached.
pub fn layer_path(store_root: &Path, chain: Option<&str>) -> PathBuf {
    match chain {
        Some(c) => layers_dir(store_root).join(crate::digest::hex_part(c)),
        None => layers_dir(store_root).join("scratch"),
    }
}

/// The chain below and including `top`, bottom first: (ChainID, DiffID).
fn chain_of(store: &crate::store::Store, top: &str) -> Result<Vec<(String, String)>> {
    store.read(|t| {
        let mut out = Vec::new();
        let mut cur = Some(top.to_string());
        while let Some(c) = cur {
            let row = t
                .layer(&c)?
                .ok_or_else(|| Error::not_found(format!("layer {c} does not exist")))?;
            cur = row.parent.clone();
            out.push((c, row.diff_id));
        }
        out.reverse();
        Ok(out)
    })
}

/// The filesystem of `chain` (None = empty), building and caching it when
/// needed: from the deepest cached ancestor (copied) plus the remaining
/// layers applied in order.
pub fn materialize(store: &crate::store::Store, chain: Option<&str>) -> Result<PathBuf> {
    let root = store.root();
    let dest = layer_path(root, chain);
    if dest.is_dir() {
        return Ok(dest);
    }
    std::fs::create_dir_all(layers_dir(root))?;
    let layers = match chain {
        Some(c) => chain_of(store, c)?,
        None => Vec::new(),
    };
    let tmp = layers_dir(root).join(format!(".tmp-{}", unique()));
    let mut start = 0;
    for i in (0..layers.len().saturating_sub(1)).rev() {
        let p = layer_path(root, Some(&layers[i].0));
        if p.is_dir() {
            copy_tree(&p, &tmp)?;
            start = i + 1;
            break;
        }
    }
    if start == 0 {
        std::fs::create_dir(&tmp)?;
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let opts = ApplyOptions::for_process();
    let result = (|| -> Result<()> {
        for (chain_id, diff_id) in &layers[start..] {
            let blob = store.content().open_blob(diff_id)?;
            let plain = crate::layer::decompressed(blob)?;
            apply_layer(&tmp, plain, &opts)
                .map_err(|e| e.context(format!("applying layer {chain_id}")))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = remove_tree(&tmp);
        return Err(e);
    }
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        Err(_) if dest.is_dir() => {
            let _ = remove_tree(&tmp);
            Ok(dest)
        }
        Err(e) => {
            let _ = remove_tree(&tmp);
            Err(e.into())
        }
    }
}

/// Remove cached layer directories whose chain is no longer in the store,
/// and leftover temporary directories. Returns how many were removed.
pub fn prune_cache(store: &crate::store::Store) -> Result<usize> {
    let dir = layers_dir(store.root());
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let live: HashSet<String> = store.read(|t| {
        Ok(t.layers()?
            .into_iter()
            .map(|(c, _)| crate::digest::hex_part(&c).to_string())
            .collect())
    })?;
    let mut n = 0;
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "scratch" || name.starts_with(".tmp-") || live.contains(&name) {
            continue;
        }
        remove_tree(&e.path())?;
        n += 1;
    }
    Ok(n)
}
