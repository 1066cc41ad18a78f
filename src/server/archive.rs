//! The container filesystem routes: `GET|HEAD|PUT /containers/{id}/archive`
//! (what `docker cp` uses), `GET /containers/{id}/export` and `POST /commit`.
//!
//! Every path inside a container is resolved in its read-write directory
//! with `openat2(RESOLVE_IN_ROOT)`, so symlinks (absolute ones included)
//! resolve as if that directory were `/` and nothing outside it is reached;
//! extraction then goes through [`crate::rootfs::apply_layer`], which
//! resolves every entry the same way.
//!
//! Differences from dockerd: strata containers have no init layer, so
//! `/.dockerenv`, `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`,
//! `/dev/console`, `/dev/pts`, `/dev/shm`, `/proc`, `/sys` and `/etc/mtab`
//! only exist when the image has them; extraction interprets `.wh.` names as
//! whiteouts (dockerd's `Untar` creates them literally); `pause` of
//! `POST /commit` is accepted and has no effect (nothing runs).

use super::errors::{ApiError, ApiResult};
use super::events::{EventMessage, now_nanos};
use super::router::{Ctx, json_response};
use super::stream::{BodyReader, ChannelWriter, channel_body};
use super::{Body, full};
use crate::config::GoTime;
use crate::reference::Reference;
use base64::Engine;
use bytes::Bytes;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// The header carrying a path's stat.
pub const STAT_HEADER: &str = "x-docker-container-path-stat";

/// `types.ContainerPathStat`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PathStat {
    /// Base name of the requested path.
    pub name: String,
    /// `lstat` size.
    pub size: i64,
    /// Go's `os.FileMode`.
    pub mode: u32,
    /// Modification time, RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink: the fully resolved absolute path in the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` of a unix `st_mode`.
pub fn go_file_mode(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m |= match mode & 0o170000 {
        0o040000 => 1 << 31,
        0o120000 => 1 << 27,
        0o010000 => 1 << 25,
        0o140000 => 1 << 24,
        0o020000 => (1 << 26) | (1 << 21),
        0o060000 => 1 << 26,
        _ => 0,
    };
    m
}

fn not_found(path: &str, container: &str) -> ApiError {
    ApiError::new(
        404,
        format!("Could not find the file {path} in container {container}"),
    )
}

fn sys(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, e.to_string())
}

/// Open `rel` (relative to the tree's root, `/`-separated) inside `root`
/// as if `root` were `/`.
fn open_in(root: &OwnedFd, rel: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = rel.trim_start_matches('/');
    let p = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root.as_fd(),
        p,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

fn open_root(rw: &Path) -> ApiResult<OwnedFd> {
    rustix::fs::open(
        rw,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        sys(format!(
            "open {}: {}",
            rw.display(),
            std::io::Error::from(e)
        ))
    })
}

/// The host path an fd stands for (`/proc/self/fd/N`, usable while the fd lives).
fn fd_path(fd: &OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The absolute in-container path of an fd opened inside `rw`.
fn in_container(fd: &OwnedFd, rw: &Path) -> String {
    let real = std::fs::read_link(fd_path(fd)).unwrap_or_default();
    let rw_real = std::fs::canonicalize(rw).unwrap_or_else(|_| rw.to_path_buf());
    match real.strip_prefix(&rw_real) {
        Ok(rel) => format!("/{}", rel.to_string_lossy()),
        Err(_) => "/".to_string(),
    }
}

/// Go's `filepath.Clean` of an absolute path.
fn clean_abs(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// A path resolved as dockerd's `ResolvePath`: the directory part with
/// symlinks followed inside the container, the last element not followed.
struct Resolved {
    /// The resolved parent directory (O_PATH).
    dir: OwnedFd,
    /// The last element ("" for the root or a trailing `/.`).
    base: String,
    /// `lstat` of the path.
    stat: rustix::fs::Stat,
    /// The cleaned absolute path asked for.
    abs: String,
}

fn resolve(rw: &Path, path: &str) -> std::result::Result<Resolved, rustix::io::Errno> {
    let root = rustix::fs::open(
        rw,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let abs = clean_abs(&format!("/{path}"));
    let trailing_dot = path.ends_with("/.") || path == ".";
    let (dir_part, base) = match abs.rfind('/') {
        Some(i) => (&abs[..i], &abs[i + 1..]),
        None => ("", abs.as_str()),
    };
    if base.is_empty() || trailing_dot {
        let dir = open_in(&root, &abs, OFlags::PATH | OFlags::DIRECTORY)?;
        let stat = rustix::fs::fstat(&dir)?;
        return Ok(Resolved {
            dir,
            base: String::new(),
            stat,
            abs,
        });
    }
    let dir = open_in(&root, dir_part, OFlags::PATH | OFlags::DIRECTORY)?;
    let stat = rustix::fs::statat(&dir, base, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Resolved {
        dir,
        base: base.to_string(),
        stat,
        abs: abs.clone(),
    })
}

fn path_stat(rw: &Path, r: &Resolved) -> PathStat {
    let name = if r.abs == "/" {
        "/".to_string()
    } else {
        r.abs.rsplit('/').next().unwrap_or("").to_string()
    };
    let mode = r.stat.st_mode;
    let link_target = if FileType::from_raw_mode(mode) == FileType::Symlink {
        open_in_root_path(rw, &r.abs)
            .map(|fd| in_container(&fd, rw))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let nanos = r.stat.st_mtime as i128 * 1_000_000_000 + r.stat.st_mtime_nsec as i128;
    PathStat {
        name,
        size: r.stat.st_size,
        mode: go_file_mode(mode),
        mtime: GoTime::from_unix_nanos_utc(nanos).to_rfc3339_nano(),
        link_target,
    }
}

/// Open `abs` inside `rw`, following every symlink (the last one too).
fn open_in_root_path(rw: &Path, abs: &str) -> rustix::io::Result<OwnedFd> {
    let root = rustix::fs::open(
        rw,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    open_in(&root, abs, OFlags::PATH)
}

fn stat_header(stat: &PathStat) -> HeaderValue {
    let json = super::json::encode(stat);
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    HeaderValue::from_str(&b64).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Container ID, name and image ID of `name`.
async fn container_of(ctx: &Ctx, name: &str) -> ApiResult<(String, String, String)> {
    container_of_svc(&ctx.svc, name).await
}

/// A container event as dockerd logs it (`image`, `name` + extra attributes).
fn container_event(
    action: &str,
    (id, name, image): &(String, String, String),
    extra: BTreeMap<String, String>,
) -> EventMessage {
    let mut attrs = BTreeMap::from([
        ("image".to_string(), image.clone()),
        ("name".to_string(), name.clone()),
    ]);
    attrs.extend(extra);
    let mut m = EventMessage::image(action, id, attrs, now_nanos());
    m.kind = "container".into();
    m.from = image.clone();
    m
}

async fn rw_path(ctx: &Ctx, id: &str) -> ApiResult<PathBuf> {
    Ok(ctx.svc.container_rw_path(id).await?)
}

/// `HEAD /containers/{id}/archive?path=…`: the stat header only.
pub async fn head(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    let (_, stat) = stat_of(&ctx, name).await?;
    let mut resp = Response::new(full(Vec::new()));
    resp.headers_mut()
        .insert(HeaderName::from_static(STAT_HEADER), stat_header(&stat));
    Ok(resp)
}

async fn stat_of(ctx: &Ctx, name: &str) -> ApiResult<(PathBuf, PathStat)> {
    let c = container_of(ctx, name).await?;
    let path = ctx.query.get("path").to_string();
    if path.is_empty() {
        return Err(ApiError::bad_request("path cannot be empty"));
    }
    let rw = rw_path(ctx, &c.0).await?;
    let rw2 = rw.clone();
    let p = path.clone();
    let stat = tokio::task::spawn_blocking(move || resolve(&rw2, &p).map(|r| path_stat(&rw2, &r)))
        .await
        .map_err(sys)?;
    match stat {
        Ok(s) => Ok((rw, s)),
        Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => {
            Err(not_found(&path, name))
        }
        Err(e) => Err(sys(std::io::Error::from(e))),
    }
}

/// The tar of a resolved path (dockerd's `archivePath` with the rebase of
/// the last element to the requested name).
fn write_path_tar(rw: &Path, path: &str, out: ChannelWriter) -> crate::Result<()> {
    use crate::diff::{Change, ChangeKind};
    let r = resolve(rw, path).map_err(|e| crate::Error::from(std::io::Error::from(e)))?;
    let empty = tempfile::tempdir()?;
    let (base_dir, prefix, target): (PathBuf, Vec<u8>, PathBuf) = if r.base.is_empty() {
        // A directory asked for as `dir/.` or `/`: its contents, unprefixed.
        (fd_path(&r.dir), Vec::new(), fd_path(&r.dir))
    } else {
        let d = fd_path(&r.dir);
        let t = d.join(&r.base);
        (d, r.base.as_bytes().to_vec(), t)
    };
    let mut list = Vec::new();
    if !prefix.is_empty() {
        list.push(Change {
            path: [b"/", prefix.as_slice()].concat(),
            kind: ChangeKind::Add,
        });
    }
    let is_dir = FileType::from_raw_mode(r.stat.st_mode) == FileType::Directory;
    if is_dir {
        for c in crate::diff::changes(&target, empty.path())? {
            let p = if prefix.is_empty() {
                c.path
            } else {
                [b"/", prefix.as_slice(), c.path.as_slice()].concat()
            };
            list.push(Change {
                path: p,
                kind: ChangeKind::Add,
            });
        }
    }
    let _keep = &r.dir;
    let mut w = crate::diff::export_changes(&base_dir, &list, 0, out)?;
    std::io::Write::flush(&mut w)?;
    Ok(())
}

/// Stream a tar built by `job` (run on a blocking thread) as the body.
fn tar_response(
    job: impl FnOnce(ChannelWriter) -> crate::Result<()> + Send + 'static,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let writer = ChannelWriter::new(tx);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = job(writer) {
            tracing::warn!("archive stream failed: {e}");
        }
    });
    let mut resp = Response::new(channel_body(rx));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    resp
}

/// `GET /containers/{id}/archive?path=…`: the stat header and the tar.
pub async fn get(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    let c = container_of(&ctx, name).await?;
    let (rw, stat) = stat_of(&ctx, name).await?;
    let path = ctx.query.get("path").to_string();
    let hub = ctx.state.hub.clone();
    let mut resp = tar_response(move |w| {
        write_path_tar(&rw, &path, w)?;
        hub.emit(container_event("archive-path", &c, BTreeMap::new()));
        Ok(())
    });
    resp.headers_mut()
        .insert(HeaderName::from_static(STAT_HEADER), stat_header(&stat));
    Ok(resp)
}

/// `PUT /containers/{id}/archive?path=…`: extract the body's tar into the
/// directory `path` (symlinks followed inside the container); 200, empty.
pub async fn put(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    let c = container_of(&ctx, name).await?;
    let path = ctx.query.get("path").to_string();
    if path.is_empty() {
        return Err(ApiError::bad_request("path cannot be empty"));
    }
    let copy_uid_gid = ctx.query.bool("copyUIDGID");
    let rw = rw_path(&ctx, &c.0).await?;
    let reader = BodyReader::spawn(ctx.req.into_body());
    let p = path.clone();
    let result = tokio::task::spawn_blocking(move || -> ApiResult<()> {
        let root = open_root(&rw)?;
        let abs = clean_abs(&format!("/{p}"));
        let dir = match open_in(&root, &abs, OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => {
                return Err(ApiError::new(404, String::new()));
            }
            Err(e) => return Err(sys(std::io::Error::from(e))),
        };
        let st = rustix::fs::fstat(&dir).map_err(|e| sys(std::io::Error::from(e)))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(ApiError::bad_request("extraction point is not a directory"));
        }
        let root_user = crate::rootfs::is_root();
        let opts = crate::rootfs::ApplyOptions {
            allow_devices: root_user,
            chown: root_user && copy_uid_gid,
        };
        crate::rootfs::apply_layer(&fd_path(&dir), reader, &opts).map_err(|e| {
            ApiError::new(
                if e.kind() == crate::ErrorKind::InvalidArgument {
                    400
                } else {
                    500
                },
                e.message(),
            )
        })?;
        Ok(())
    })
    .await
    .map_err(sys)?;
    if let Err(e) = result {
        if e.status == 404 && e.message.is_empty() {
            return Err(not_found(&path, name));
        }
        return Err(e);
    }
    ctx.state
        .hub
        .emit(container_event("extract-to-dir", &c, BTreeMap::new()));
    Ok(Response::new(full(Vec::new())))
}

/// `GET /containers/{id}/export`: the container's whole filesystem as a tar.
pub async fn export(ctx: Ctx, name: &str) -> ApiResult<Response<Body>> {
    let c = container_of(&ctx, name).await?;
    let rw = rw_path(&ctx, &c.0).await?;
    let hub = ctx.state.hub.clone();
    Ok(tar_response(move |w| {
        let empty = tempfile::tempdir()?;
        let list = crate::diff::changes(&rw, empty.path())?;
        let mut w = crate::diff::export_changes(&rw, &list, 0, w)?;
        std::io::Write::flush(&mut w)?;
        hub.emit(container_event("export", &c, BTreeMap::new()));
        Ok(())
    }))
}

/// dockerd's `RepoTagReference`: the reference a commit tags, if any.
fn commit_reference(repo: &str, tag: &str) -> ApiResult<Option<String>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let r = Reference::parse_normalized_named(repo)
        .map_err(|e| ApiError::bad_request(e.message().to_string()))?;
    if r.digest().is_some() {
        return Err(ApiError::bad_request("cannot commit to digest reference"));
    }
    let r = if tag.is_empty() {
        r
    } else {
        r.with_tag(tag)
            .map_err(|e| ApiError::bad_request(e.message().to_string()))?
    };
    Ok(Some(r.familiar_string()))
}

/// `POST /commit?container=…&repo=…&tag=…&author=…&comment=…&pause=…&changes=…`:
/// 201 `{"Id":…}`.
pub async fn commit(ctx: Ctx) -> ApiResult<Response<Body>> {
    let ctype = ctx
        .req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !ctype.is_empty() && mime != "application/json" {
        return Err(ApiError::bad_request(format!(
            "Content-Type specified ({ctype}) must be 'application/json'"
        )));
    }
    let q = ctx.query.clone();
    let container = q.get("container").to_string();
    let (repo, tag) = (q.get("repo").to_string(), q.get("tag").to_string());
    let image_ref = commit_reference(&repo, &tag)?;
    // dockerd's `httputils.BoolValue`: never an error; `""`, `0`, `no`,
    // `false`, `none` (any case, trimmed) are false, anything else true;
    // absent means true (API ≥ 1.13). It has no effect here (nothing runs)
    // and Docker records it nowhere.
    let pause = match q.get("pause").trim().to_ascii_lowercase().as_str() {
        "" => q.all("pause").is_empty(),
        "0" | "no" | "false" | "none" => false,
        _ => true,
    };
    // The body: an optional container config replacing the container's as
    // the base of `changes` (`null`, empty, or an object naming no Config
    // field, such as `{}`, = none, as dockerd's embedded *container.Config).
    let body = super::router::small_body(ctx.req, 400).await?;
    let text = String::from_utf8_lossy(&body);
    let config = if text.trim().is_empty() || text.trim() == "null" {
        None
    } else {
        let cfg = crate::ContainerConfig::from_json(&body)
            .map_err(|e| ApiError::bad_request(e.message().to_string()))?;
        crate::ContainerConfig::json_sets_a_field(&body).then_some(cfg)
    };
    let c = container_of_svc(&ctx.svc, &container).await?;
    let id = ctx
        .svc
        .commit_image_with(
            &container,
            Some(repo.as_str()),
            Some(tag.as_str()),
            q.get("author"),
            q.get("comment"),
            &q.all("changes"),
            pause,
            config,
        )
        .await?;
    let extra = BTreeMap::from([
        ("comment".to_string(), q.get("comment").to_string()),
        ("imageID".to_string(), id.clone()),
        ("imageRef".to_string(), image_ref.unwrap_or_default()),
    ]);
    ctx.state.hub.emit(container_event("commit", &c, extra));
    Ok(json_response(201, &serde_json::json!({ "Id": id })))
}

async fn container_of_svc(
    svc: &crate::service::ImageService,
    name: &str,
) -> ApiResult<(String, String, String)> {
    let svc = svc.clone();
    let needle = name.to_string();
    tokio::task::spawn_blocking(move || {
        svc.store().read(|t| {
            let needle = needle.trim_start_matches('/');
            let all = t.containers()?;
            if let Some((id, r)) = all.iter().find(|(id, r)| id == needle || r.name == needle) {
                return Ok((id.clone(), r.name.clone(), r.image.clone()));
            }
            let m: Vec<_> = all
                .iter()
                .filter(|(id, _)| id.starts_with(needle))
                .collect();
            match m.as_slice() {
                [(id, r)] if !needle.is_empty() => {
                    Ok((id.clone(), r.name.clone(), r.image.clone()))
                }
                _ => Err(crate::Error::not_found(format!(
                    "No such container: {needle}"
                ))),
            }
        })
    })
    .await
    .map_err(sys)?
    .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes() {
        let cases: &[(&str, u32, u32)] = &[
            ("file", 0o100644, 0o644),
            ("dir", 0o040755, (1 << 31) | 0o755),
            ("symlink", 0o120777, (1 << 27) | 0o777),
            ("setuid", 0o104755, (1 << 23) | 0o755),
            ("sticky dir", 0o041777, (1 << 31) | (1 << 20) | 0o777),
            ("char dev", 0o020666, (1 << 26) | (1 << 21) | 0o666),
        ];
        for (name, unix, go) in cases {
            assert_eq!(go_file_mode(*unix), *go, "{name}");
        }
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_abs("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean_abs("/"), "/");
    }
}
