//! The `strata` command line: Docker's image commands on a local store.
//!
//! Output matches the docker CLI 20.10 (`/usr/bin/docker` from Debian's
//! docker.io): tables, `Loaded image:` lines, `Untagged:`/`Deleted:` lines,
//! and errors worded as the docker CLI words them.

mod adopt;
mod commit;
mod distribution;
mod import;
mod jsonfmt;
mod progress;
mod remote;
mod render;
mod serve;
mod stdout;

use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use strata::{Actor, Error, ErrorKind, Filters, ImageService};

/// A container image store with Docker's image semantics and an audit trail.
#[derive(Parser, Debug)]
#[command(name = "strata", version, about)]
struct Cli {
    /// Store directory (default: $STRATA_ROOT, else $XDG_DATA_HOME/strata, else ~/.local/share/strata).
    #[arg(long, global = true, env = "STRATA_ROOT")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load the example archive shipped with strata into the store and list the images.
    Quickstart,
    /// Download an image from a registry.
    Pull {
        /// Download all tagged images in the repository.
        #[arg(short = 'a', long = "all-tags")]
        all_tags: bool,
        /// Set platform if server is multi-platform capable (`os[/arch[/variant]]`).
        #[arg(long)]
        platform: Option<String>,
        /// Suppress verbose output.
        #[arg(short, long)]
        quiet: bool,
        /// NAME[:TAG|@DIGEST]
        name: String,
    },
    /// Upload an image to a registry.
    Push {
        /// Push all tagged images in the repository.
        #[arg(short = 'a', long = "all-tags")]
        all_tags: bool,
        /// Suppress verbose output.
        #[arg(short, long)]
        quiet: bool,
        /// NAME[:TAG]
        name: String,
    },
    /// Search a registry's index (v1 search API) for images.
    Search {
        /// Filter output based on conditions provided (is-automated, is-official, stars).
        #[arg(short, long = "filter")]
        filter: Vec<String>,
        /// Max number of search results.
        #[arg(long)]
        limit: Option<i64>,
        /// Don't truncate output.
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// TERM
        term: String,
    },
    /// Log in to a registry (credentials stored in the docker CLI config file).
    Login {
        /// Username.
        #[arg(short, long)]
        username: Option<String>,
        /// Password.
        #[arg(short, long)]
        password: Option<String>,
        /// Take the password from stdin.
        #[arg(long = "password-stdin")]
        password_stdin: bool,
        /// SERVER (default: docker.io)
        server: Option<String>,
    },
    /// Log out from a registry.
    Logout {
        /// SERVER (default: docker.io)
        server: Option<String>,
    },
    /// Load an image from a tar archive or STDIN.
    Load {
        /// Read from tar archive file, instead of STDIN.
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// Suppress the load output.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Import the contents from a tarball to create a filesystem image.
    Import {
        /// Set commit message for imported image.
        #[arg(short, long)]
        message: Option<String>,
        /// Apply Dockerfile instruction to the created image.
        #[arg(short, long = "change")]
        change: Vec<String>,
        /// File (or `-` for STDIN).
        file: String,
        /// REPOSITORY[:TAG]
        reference: Option<String>,
    },
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save {
        /// Write to a file, instead of STDOUT.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// `docker-archive` (default, what `docker save` writes) or `oci` (an OCI image layout).
        #[arg(long, default_value = "docker-archive")]
        format: String,
        /// Images to save.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// List images.
    #[command(alias = "ls")]
    Images(ImagesArgs),
    /// Return low-level information on images.
    Inspect {
        /// Images to inspect.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag {
        /// SOURCE_IMAGE[:TAG]
        source: String,
        /// TARGET_IMAGE[:TAG]
        target: String,
    },
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Manage images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Manage container records (no process is ever started).
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// Re-hash every layer blob; name damaged or missing ones and the images they affect.
    Fsck {
        /// Move damaged blobs to <root>/quarantine/.
        #[arg(long)]
        repair: bool,
        /// One JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs nothing references and files left by interrupted work.
    Gc {
        /// Report what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Create a new image from a container's changes.
    Commit {
        /// Commit message.
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
        #[arg(short = 'a', long)]
        author: Option<String>,
        /// Apply Dockerfile instruction to the created image.
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        /// Pause container during commit (accepted; no effect: nothing runs).
        #[arg(short = 'p', long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
        pause: bool,
        /// Container (ID, ID prefix or name).
        container: String,
        /// REPOSITORY[:TAG]
        reference: Option<String>,
    },
    /// Squash an image's layers above PARENT (or all of them) into one new
    /// layer, as `docker build --squash` does; prints the new image's ID.
    Squash {
        /// Squash only the layers above this image (an ancestor of IMAGE).
        #[arg(long)]
        parent: Option<String>,
        /// Tag the new image REPOSITORY[:TAG].
        #[arg(short = 't', long)]
        tag: Option<String>,
        /// The image (name or ID).
        image: String,
    },
    /// Migrate images from another store.
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
    /// Manage the store.
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Serve the Docker Engine API's image routes on a unix socket.
    Serve {
        /// The socket to listen on (default: <root>/strata.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Read and verify the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

impl Command {
    /// Whether the command only reads or writes the tables (no transfer,
    /// no large file): it then runs on the main thread alone, with a
    /// current-thread runtime and the service's work done in place
    /// ([`ImageService::on_calling_thread`]). Starting and ending the
    /// threads took a sixth of a `strata tag` or a filtered `strata images`.
    fn on_one_thread(&self) -> bool {
        self.only_reads()
            || matches!(
                self,
                Command::Tag { .. }
                    | Command::Rmi(_)
                    | Command::Image {
                        command: ImageCommand::Rm(_)
                            | ImageCommand::Tag { .. }
                            | ImageCommand::Prune { .. },
                    }
                    | Command::Container { .. }
            )
    }

    /// Whether the command only reads the store (then it is opened
    /// read-only, see [`strata::Store::open_for_reads`]).
    fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::Images(_)
                | Command::Inspect { .. }
                | Command::History(_)
                | Command::Image {
                    command: ImageCommand::Ls(_)
                        | ImageCommand::Inspect { .. }
                        | ImageCommand::History(_),
                }
        )
    }
}

#[derive(Args, Debug)]
struct ImagesArgs {
    /// Show all images (default hides intermediate images).
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// `table` (default) or `json` (one Engine API ImageSummary per line).
    #[arg(long, default_value = "table")]
    format: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(Args, Debug)]
struct RmiArgs {
    /// Force removal of the image.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    no_prune: bool,
    /// Images to remove.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args, Debug)]
struct HistoryArgs {
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// `table` (default) or `json`.
    #[arg(long, default_value = "table")]
    format: String,
    /// Image.
    image: String,
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Remove unused images.
    Prune {
        /// Remove all unused images, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. 'until=<timestamp>').
        #[arg(long = "filter")]
        filter: Vec<String>,
    },
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Display detailed information on one or more images.
    Inspect {
        /// Images to inspect.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag {
        /// SOURCE_IMAGE[:TAG]
        source: String,
        /// TARGET_IMAGE[:TAG]
        target: String,
    },
}

#[derive(Subcommand, Debug)]
enum MigrateCommand {
    /// Adopt the images of a stopped dockerd 20.10 data root (read only).
    FromDocker {
        /// The data root, e.g. /var/lib/docker.
        path: PathBuf,
        /// Storage driver: vfs or overlay2 (default: the only one present).
        #[arg(long)]
        driver: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum SystemCommand {
    /// Show disk usage.
    Df {
        /// `table` (default) or `json` (the Engine API's /system/df body).
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    /// Create a container record (and its layer reference) on an image.
    Create {
        /// Assign a name to the container.
        #[arg(long)]
        name: Option<String>,
        /// Image.
        image: String,
    },
    /// List container records.
    Ls,
    /// Remove container records.
    Rm {
        /// Containers (ID, ID prefix or name).
        #[arg(required = true)]
        containers: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Print the events: sequence, time, actor, kind, image, subject.
    Log {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Only events about this image (ID or ID prefix).
        #[arg(long)]
        image: Option<String>,
        /// Only events about this reference (`busybox`, `foo:1`).
        #[arg(long)]
        reference: Option<String>,
        /// Only events whose actor contains this text (user, uid, client).
        #[arg(long)]
        actor: Option<String>,
        /// Only events of this kind (e.g. reference-removed).
        #[arg(long)]
        kind: Option<String>,
        /// Only events at or after this time (RFC 3339 or unix seconds).
        #[arg(long)]
        since: Option<String>,
        /// Only events at or before this time (RFC 3339 or unix seconds).
        #[arg(long)]
        until: Option<String>,
        /// Smallest sequence number.
        #[arg(long)]
        from_seq: Option<u64>,
        /// Largest sequence number.
        #[arg(long)]
        to_seq: Option<u64>,
    },
    /// Check the hash chain, that the tables equal a fresh replay of the log,
    /// and that every layer blob exists with the right digest.
    Verify,
    /// Every event that touched a reference or an image, with actor and time.
    Blame {
        /// Reference, image ID or ID prefix.
        name: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Make a new store holding the state as it was at an earlier point.
    Replay {
        /// Replay up to and including this sequence number.
        #[arg(long, conflicts_with = "at")]
        to: Option<u64>,
        /// Replay every event committed at or before this time.
        #[arg(long)]
        at: Option<String>,
        /// Directory of the new store (must not hold a store yet).
        #[arg(long)]
        into: PathBuf,
    },
    /// Write the log as JSON lines.
    Export {
        /// Write to a file instead of STDOUT.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Append an exported log to an empty store (re-validated, re-chained).
    Import {
        /// Read from a file instead of STDIN.
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// Take layer blobs from this store directory.
        #[arg(long)]
        blobs_from: Option<PathBuf>,
    },
}

fn default_root() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("strata");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/strata"),
        None => PathBuf::from("/var/lib/strata"),
    }
}

/// A failure the CLI prints and exits 1 for.
pub(crate) struct Failure(pub(crate) String);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(daemon_message(&e))
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        // The reader of our output went away: stop without a word.
        if stdout::reader_gone(&e) {
            return Failure(String::new());
        }
        Failure(e.to_string())
    }
}

/// How the docker CLI prints an error that came from the daemon.
fn daemon_message(e: &Error) -> String {
    format!("Error response from daemon: {}", e.message())
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.root.clone().unwrap_or_else(default_root);
    let runtime = if cli.command.on_one_thread() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, root)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, root: PathBuf) -> Result<(), Failure> {
    if let Command::Audit { command } = cli.command {
        return audit(&root, &mut stdout::Stdout::lock(), command);
    }
    // Commands that only read open the store read-only: nothing written or
    // synced on open and close, and no detour through a running server.
    let opened = if cli.command.only_reads() {
        strata::Store::open_for_reads(&root).map(|store| ImageService::new(store, None))
    } else {
        ImageService::open(&root)
    };
    let svc = match opened {
        Ok(svc) => svc,
        Err(e)
            if e.kind() == ErrorKind::Unavailable
                && !matches!(cli.command, Command::Serve { .. })
                && remote::available(&root.join("strata.sock")).await =>
        {
            return remote::run(cli.command, &root.join("strata.sock")).await;
        }
        Err(e) => return Err(Failure(format!("strata: {}", e.message()))),
    }
    .with_actor(Actor::current_process("strata-cli"));
    let svc = if cli.command.on_one_thread() {
        svc.on_calling_thread()
    } else {
        svc
    };
    let mut out = stdout::Stdout::lock();
    match cli.command {
        Command::Quickstart => quickstart(&svc, &mut out, &root).await,
        Command::Pull {
            all_tags,
            platform,
            quiet,
            name,
        } => distribution::pull(&svc, &mut out, &name, all_tags, platform, quiet).await,
        Command::Push {
            all_tags,
            quiet,
            name,
        } => distribution::push(&svc, &mut out, &name, all_tags, quiet).await,
        Command::Search {
            filter,
            limit,
            no_trunc,
            term,
        } => distribution::search(&svc, &mut out, &term, limit, &filter, no_trunc).await,
        Command::Login {
            username,
            password,
            password_stdin,
            server,
        } => distribution::login(&mut out, server, username, password, password_stdin).await,
        Command::Logout { server } => distribution::logout(&mut out, server).await,
        Command::Load { input, quiet } => load(&svc, &mut out, input, quiet).await,
        Command::Save {
            output,
            images,
            format,
        } => save(&svc, output, images, &format).await,
        Command::Import {
            message,
            change,
            file,
            reference,
        } => import::run(&svc, &mut out, message, change, file, reference).await,
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => images(&svc, &mut out, a).await,
        Command::Inspect { names }
        | Command::Image {
            command: ImageCommand::Inspect { names },
        } => inspect(&svc, &mut out, names).await,
        Command::Tag { source, target }
        | Command::Image {
            command: ImageCommand::Tag { source, target },
        } => tag(&svc, &source, &target).await,
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => rmi(&svc, &mut out, a).await,
        Command::History(a)
        | Command::Image {
            command: ImageCommand::History(a),
        } => history(&svc, &mut out, a).await,
        Command::Image {
            command: ImageCommand::Prune { all, force, filter },
        } => prune(&svc, &mut out, all, force, filter).await,
        Command::Container { command } => container(&svc, &mut out, command).await,
        Command::Audit { .. } => Ok(()),
        Command::Fsck { repair, json } => {
            let r = svc.fsck(repair).await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&r).map_err(|e| Failure(e.to_string()))?
                )?;
            } else {
                for row in &r.bad_rows {
                    writeln!(out, "damaged table row {row}")?;
                }
                if let Some(d) = &r.tables_differ {
                    writeln!(out, "tables differ from a replay of the log: {d}")?;
                }
                if r.tables_rebuilt {
                    writeln!(out, "rebuilt the tables from the log")?;
                }
                for p in &r.problems {
                    let mut line = format!("{} blob {}", p.state, p.blob);
                    if let Some(a) = &p.actual {
                        line.push_str(&format!(" (hashes to {a})"));
                    }
                    if let Some(q) = &p.quarantined_to {
                        line.push_str(&format!(", quarantined to {q}"));
                    }
                    if let Some(f) = &p.refetched_from {
                        line.push_str(&format!(", fetched again from {f}"));
                    }
                    writeln!(out, "{line}")?;
                    for img in &p.images {
                        writeln!(out, "  affects image {img}")?;
                    }
                }
                writeln!(
                    out,
                    "checked {} blobs ({} bytes): {} problems",
                    r.checked,
                    r.bytes,
                    r.problems.len()
                )?;
            }
            let tables_ok =
                r.tables_rebuilt || (r.bad_rows.is_empty() && r.tables_differ.is_none());
            let unresolved = r
                .problems
                .iter()
                .filter(|p| p.refetched_from.is_none())
                .count();
            if unresolved == 0 && tables_ok {
                Ok(())
            } else {
                Err(Failure(String::new()))
            }
        }
        Command::Commit {
            message,
            author,
            change,
            pause,
            container,
            reference,
        } => {
            commit::commit(
                &svc, &mut out, message, author, change, container, reference, pause,
            )
            .await
        }
        Command::Squash { parent, tag, image } => {
            commit::squash(&svc, &mut out, image, parent, tag).await
        }
        Command::Migrate {
            command: MigrateCommand::FromDocker { path, driver },
        } => adopt::run(&svc, &mut out, path, driver).await,
        Command::System {
            command: SystemCommand::Df { format },
        } => commit::system_df(&svc, &mut out, format == "json").await,
        Command::Gc { dry_run } => {
            let r = svc.gc(dry_run).await?;
            let verb = if dry_run { "would remove" } else { "removed" };
            writeln!(
                out,
                "unreferenced blobs: {} {verb} ({} bytes)",
                r.unreferenced.count, r.unreferenced.bytes
            )?;
            writeln!(
                out,
                "expired leases: {} {verb} ({} bytes)",
                r.expired_lease.count, r.expired_lease.bytes
            )?;
            writeln!(
                out,
                "orphan ingest files: {} {verb} ({} bytes)",
                r.orphan_ingest.count, r.orphan_ingest.bytes
            )?;
            writeln!(out, "total: {} bytes", r.total_bytes())?;
            Ok(())
        }
        Command::Serve { socket } => {
            let socket = socket.unwrap_or_else(|| root.join("strata.sock"));
            serve::run(svc, socket).await
        }
    }
}

async fn quickstart(
    svc: &ImageService,
    out: &mut impl Write,
    root: &std::path::Path,
) -> Result<(), Failure> {
    let archive = include_bytes!("../../tests/fixtures/dockerd/chain-tagged.tar");
    writeln!(out, "store: {}", root.display())?;
    let report = svc
        .load_image(std::io::Cursor::new(&archive[..]), true)
        .await?;
    for line in &report.lines {
        writeln!(out, "{line}")?;
    }
    writeln!(out)?;
    images(
        svc,
        out,
        ImagesArgs {
            all: false,
            quiet: false,
            no_trunc: false,
            digests: false,
            filter: Vec::new(),
            format: "table".into(),
            reference: None,
        },
    )
    .await?;
    writeln!(out)?;
    match strata::audit::verify(svc.store())? {
        Ok(n) => writeln!(
            out,
            "audit: {n} events, hash chain intact, tables equal a replay of the log"
        )?,
        Err(problem) => return Err(Failure(format!("audit verify failed: {problem}"))),
    }
    Ok(())
}

async fn load(
    svc: &ImageService,
    out: &mut impl Write,
    input: Option<PathBuf>,
    quiet: bool,
) -> Result<(), Failure> {
    let report = match input {
        Some(p) if p.is_dir() => svc.load_layout_dir(&p).await,
        Some(p) => {
            let f = std::fs::File::open(&p).map_err(|e| {
                Failure(format!(
                    "open {}: {}",
                    p.display(),
                    e.to_string().to_lowercase()
                ))
            })?;
            let total = f.metadata().ok().map(|m| m.len());
            load_with_bar(svc, f, total, quiet).await
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(Failure(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            load_with_bar(svc, std::io::stdin(), None, quiet).await
        }
    }?;
    for line in &report.lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Load `input`, with a byte progress bar on a terminal (unless `quiet`).
async fn load_with_bar(
    svc: &ImageService,
    input: impl std::io::Read + Send + 'static,
    total: Option<u64>,
    quiet: bool,
) -> strata::Result<strata::archive::LoadReport> {
    let bar = progress::load_bar(total, quiet);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = progress::CountingReader {
        inner: input,
        count: count.clone(),
    };
    progress::with_byte_bar(&bar, &count, svc.load_image(reader, quiet)).await
}

async fn export(
    svc: &ImageService,
    images: Vec<String>,
    oci: bool,
    out: impl Write + Send + 'static,
) -> strata::Result<()> {
    if oci {
        svc.export_oci(images, out).await
    } else {
        svc.export_image(images, out).await
    }
}

async fn save(
    svc: &ImageService,
    output: Option<PathBuf>,
    images: Vec<String>,
    format: &str,
) -> Result<(), Failure> {
    let oci = match format {
        "docker-archive" => false,
        "oci" => true,
        other => {
            return Err(Failure(format!(
                "unknown format {other:?}: use docker-archive or oci"
            )));
        }
    };
    match output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| Failure(format!("failed to save image: {e}")))?;
            let file = tmp.reopen()?;
            export(
                svc,
                images,
                oci,
                std::io::BufWriter::with_capacity(1 << 20, file),
            )
            .await?;
            tmp.persist(&path)
                .map_err(|e| Failure(format!("failed to save image: {}", e.error)))?;
            Ok(())
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(Failure(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                ));
            }
            let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
            export(svc, images, oci, out).await?;
            Ok(())
        }
    }
}

fn cli_filters(pairs: &[String]) -> Result<Filters, Failure> {
    Filters::from_cli_pairs(pairs).map_err(|e| Failure(e.message().to_string()))
}

async fn images(svc: &ImageService, out: &mut impl Write, a: ImagesArgs) -> Result<(), Failure> {
    let mut filters = cli_filters(&a.filter)?;
    if let Some(r) = &a.reference {
        filters.add("reference", r);
    }
    let list = svc.images(filters, a.all, false).await?;
    print_images(out, &list, &a)
}

/// `docker images` output for `list`: a table, or one JSON object per line.
fn print_images(
    out: &mut impl Write,
    list: &[strata::ImageSummary],
    a: &ImagesArgs,
) -> Result<(), Failure> {
    match a.format.as_str() {
        "json" => {
            for img in list {
                let line = serde_json::to_string(img).map_err(|e| Failure(e.to_string()))?;
                writeln!(out, "{line}")?;
            }
        }
        "table" => {
            let rows: Vec<render::ImageSummary> = list
                .iter()
                .map(|i| render::ImageSummary {
                    id: i.id.clone(),
                    repo_tags: i.repo_tags.clone().unwrap_or_default(),
                    repo_digests: i.repo_digests.clone().unwrap_or_default(),
                    created: i.created,
                    size: i.size,
                })
                .collect();
            let opts = render::ImagesOptions {
                quiet: a.quiet,
                no_trunc: a.no_trunc,
                digests: a.digests,
            };
            write!(
                out,
                "{}",
                render::render_images(&rows, &opts, std::time::SystemTime::now())
            )?;
        }
        other => {
            return Err(Failure(format!(
                "unknown format {other:?}: use table or json"
            )));
        }
    }
    Ok(())
}

async fn inspect(
    svc: &ImageService,
    out: &mut impl Write,
    names: Vec<String>,
) -> Result<(), Failure> {
    let mut raws = Vec::new();
    let mut errors = Vec::new();
    for n in &names {
        match svc.lookup_image(n).await {
            Ok(i) => raws.push(serde_json::to_vec(&i).map_err(|e| Failure(e.to_string()))?),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                errors.push(format!("Error: No such object: {n}"))
            }
            Err(e) => errors.push(daemon_message(&e)),
        }
    }
    print_inspect(out, &raws, errors)
}

/// Print `docker inspect`'s output: the raw JSON objects as one indented
/// array (`[]` when none), then the errors, as the docker CLI does.
pub(crate) fn print_inspect(
    out: &mut impl Write,
    raws: &[Vec<u8>],
    errors: Vec<String>,
) -> Result<(), Failure> {
    if raws.is_empty() {
        writeln!(out, "[]")?;
    } else {
        let mut all = b"[".to_vec();
        for (i, r) in raws.iter().enumerate() {
            if i > 0 {
                all.push(b',');
            }
            all.extend_from_slice(r);
        }
        all.push(b']');
        out.write_all(&jsonfmt::indent(&all, "    "))?;
        writeln!(out)?;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure(errors.join("\n")))
    }
}

/// The docker CLI's client-side check of `tag`'s target: `(repository, tag)`.
pub(crate) fn tag_target(target: &str) -> Result<(String, String), Failure> {
    let r = strata::Reference::parse_normalized_named(target).map_err(|e| {
        Failure(format!(
            "Error parsing reference: {target:?} is not a valid repository/tag: {}",
            e.message()
        ))
    })?;
    if r.digest().is_some() {
        return Err(Failure(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let tag = r.tag().unwrap_or("").to_string();
    Ok((r.trim_named().familiar_name(), tag))
}

async fn tag(svc: &ImageService, source: &str, target: &str) -> Result<(), Failure> {
    let (repo, tag) = tag_target(target)?;
    svc.tag_image(source, &repo, &tag).await?;
    Ok(())
}

async fn rmi(svc: &ImageService, out: &mut impl Write, a: RmiArgs) -> Result<(), Failure> {
    let mut results = Vec::new();
    for name in &a.images {
        results.push(match svc.image_delete(name, a.force, !a.no_prune).await {
            Ok(items) => render::RmiResult::Removed(items.into_iter().map(delete_item).collect()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                render::RmiResult::NotFound { name: name.clone() }
            }
            Err(e) => render::RmiResult::Failed {
                message: e.message().to_string(),
            },
        });
    }
    let report = render::render_rmi_command(&results, a.force);
    write!(out, "{}", report.stdout)?;
    eprint!("{}", report.stderr);
    if report.exit_code == 0 {
        Ok(())
    } else {
        Err(Failure(String::new()))
    }
}

pub(crate) fn delete_item(i: strata::DeleteItem) -> render::ImageDeleteItem {
    match i {
        strata::DeleteItem::Untagged(u) => render::ImageDeleteItem {
            untagged: u,
            deleted: String::new(),
        },
        strata::DeleteItem::Deleted(d) => render::ImageDeleteItem {
            untagged: String::new(),
            deleted: d,
        },
    }
}

async fn history(svc: &ImageService, out: &mut impl Write, a: HistoryArgs) -> Result<(), Failure> {
    let items = svc.image_history(&a.image).await?;
    print_history(out, &items, &a)
}

/// `docker history` output for `items`: a table, or one JSON object per line.
fn print_history(
    out: &mut impl Write,
    items: &[strata::HistoryItem],
    a: &HistoryArgs,
) -> Result<(), Failure> {
    if a.format != "json" && a.format != "table" {
        return Err(Failure(format!(
            "unknown format {:?}: use table or json",
            a.format
        )));
    }
    if a.format == "json" {
        for i in items {
            writeln!(
                out,
                "{}",
                serde_json::to_string(i).map_err(|e| Failure(e.to_string()))?
            )?;
        }
        return Ok(());
    }
    let rows: Vec<render::HistoryItem> = items
        .iter()
        .map(|h| render::HistoryItem {
            id: h.id.clone(),
            created: h.created,
            created_by: h.created_by.clone(),
            size: h.size,
            comment: h.comment.clone(),
        })
        .collect();
    let opts = render::HistoryOptions {
        quiet: a.quiet,
        no_trunc: a.no_trunc,
        human: a.human,
        ..Default::default()
    };
    write!(
        out,
        "{}",
        render::render_history(&rows, &opts, std::time::SystemTime::now())
    )?;
    Ok(())
}

async fn prune(
    svc: &ImageService,
    out: &mut impl Write,
    all: bool,
    force: bool,
    filter: Vec<String>,
) -> Result<(), Failure> {
    let mut filters = cli_filters(&filter)?;
    filters.add("dangling", if all { "false" } else { "true" });
    if !force && !confirm_prune(out, all)? {
        return Ok(());
    }
    let report = svc.images_prune(filters).await?;
    print_prune(out, report)
}

/// Ask `docker image prune`'s question; whether the answer was yes.
pub(crate) fn confirm_prune(out: &mut impl Write, all: bool) -> Result<bool, Failure> {
    write!(out, "{}", render::image_prune_prompt(all))?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    let a = answer.trim().to_lowercase();
    Ok(a == "y" || a == "yes")
}

/// `docker image prune`'s report.
pub(crate) fn print_prune(
    out: &mut impl Write,
    report: strata::PruneReport,
) -> Result<(), Failure> {
    let items: Vec<render::ImageDeleteItem> = report
        .images_deleted
        .unwrap_or_default()
        .into_iter()
        .map(delete_item)
        .collect();
    write!(
        out,
        "{}",
        render::render_image_prune(&items, report.space_reclaimed)
    )?;
    Ok(())
}

async fn container(
    svc: &ImageService,
    out: &mut impl Write,
    cmd: ContainerCommand,
) -> Result<(), Failure> {
    match cmd {
        ContainerCommand::Create { name, image } => {
            commit::container_create(svc, out, name, image).await?;
        }
        ContainerCommand::Ls => {
            let mut lines = vec!["CONTAINER ID\tIMAGE\tNAMES".to_string()];
            for c in svc.containers().await? {
                lines.push(format!(
                    "{}\t{}\t{}",
                    &c.id[..12],
                    render::truncate_id(&c.image),
                    c.name
                ));
            }
            write!(out, "{}", render::docker_table(&lines))?;
        }
        ContainerCommand::Rm { containers } => {
            let mut errors = Vec::new();
            for c in &containers {
                match svc.remove_container(c).await {
                    Ok(()) => writeln!(out, "{c}")?,
                    Err(e) => errors.push(daemon_message(&e)),
                }
            }
            if !errors.is_empty() {
                return Err(Failure(errors.join("\n")));
            }
        }
    }
    Ok(())
}

/// Open the store for an audit command: read-only when a server holds it
/// (or the command only reads).
fn audit_store(root: &std::path::Path, writes: bool) -> Result<strata::Store, Failure> {
    let opened = if writes {
        strata::Store::open(root)
    } else {
        match strata::Store::open(root) {
            Err(e) if e.kind() == ErrorKind::Unavailable => strata::Store::open_read_only(root),
            other => other,
        }
    };
    opened.map_err(|e| Failure(format!("strata: {}", e.message())))
}

fn print_records(
    out: &mut impl Write,
    records: &[strata::audit::Record],
    json: bool,
) -> Result<(), Failure> {
    for r in records {
        if json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(r).map_err(|e| Failure(e.to_string()))?
            )?;
        } else {
            writeln!(out, "{}", r.line())?;
        }
    }
    Ok(())
}

fn time_arg(s: Option<String>) -> Result<Option<i64>, Failure> {
    s.map(|t| strata::audit::parse_time(&t))
        .transpose()
        .map_err(|e| Failure(e.message().to_string()))
}

fn audit(root: &std::path::Path, out: &mut impl Write, cmd: AuditCommand) -> Result<(), Failure> {
    let writes = matches!(cmd, AuditCommand::Import { .. });
    let store = audit_store(root, writes)?;
    match cmd {
        AuditCommand::Log {
            json,
            image,
            reference,
            actor,
            kind,
            since,
            until,
            from_seq,
            to_seq,
        } => {
            let q = strata::audit::LogQuery {
                image,
                reference,
                actor,
                kind,
                since: time_arg(since)?,
                until: time_arg(until)?,
                from_seq,
                to_seq,
            };
            let records = strata::audit::query(&store, &q)?;
            print_records(out, &records, json)
        }
        AuditCommand::Blame { name, json } => {
            let records = strata::audit::blame(&store, &name)?;
            print_records(out, &records, json)
        }
        AuditCommand::Verify => match strata::audit::verify(&store)? {
            Ok(n) => {
                writeln!(
                    out,
                    "ok: {n} events, hash chain intact, tables equal a replay of the log, blobs intact"
                )?;
                Ok(())
            }
            Err(problem) => Err(Failure(format!("audit verify failed: {problem}"))),
        },
        AuditCommand::Replay { to, at, into } => {
            let last = store.head()?.next_seq.saturating_sub(1);
            let to = match (to, at) {
                (Some(seq), _) => seq.min(last),
                (None, Some(at)) => {
                    let at = strata::audit::parse_time(&at)
                        .map_err(|e| Failure(e.message().to_string()))?;
                    let q = strata::audit::LogQuery {
                        until: Some(at),
                        ..Default::default()
                    };
                    strata::audit::query(&store, &q)?
                        .last()
                        .map(|r| r.seq)
                        .unwrap_or(0)
                }
                (None, None) => last,
            };
            store.replay_into(&into, to)?;
            writeln!(out, "replayed events 1..={to} into {}", into.display())?;
            Ok(())
        }
        AuditCommand::Export { output } => {
            let n = match output {
                Some(p) => {
                    let f = std::fs::File::create(&p)?;
                    strata::audit::export(&store, std::io::BufWriter::new(f))?
                }
                None => strata::audit::export(
                    &store,
                    std::io::BufWriter::new(std::io::stdout().lock()),
                )?,
            };
            eprintln!("exported {n} events");
            Ok(())
        }
        AuditCommand::Import { input, blobs_from } => {
            let n = match input {
                Some(p) => {
                    let f = std::fs::File::open(&p)?;
                    strata::audit::import(
                        &store,
                        std::io::BufReader::new(f),
                        blobs_from.as_deref(),
                    )?
                }
                None => {
                    strata::audit::import(&store, std::io::stdin().lock(), blobs_from.as_deref())?
                }
            };
            writeln!(out, "imported {n} events")?;
            Ok(())
        }
    }
}
