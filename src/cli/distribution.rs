//! `strata pull|push|search|login|logout`: the docker CLI 20.10 commands on
//! the store. Credentials come from the docker CLI config file
//! (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`): its
//! `credHelpers`/`credsStore` credential helpers, else its `auths`.
//! Registry settings (insecure registries, certificates directory) come
//! from `STRATA_INSECURE_REGISTRIES` and `STRATA_CERTS_DIR`.
//! Progress is shown as the CLI does: progress bars on a terminal,
//! `<id>: <status>` lines otherwise ([`super::progress`]).

use super::Failure;
use super::progress::Display;
use std::io::Write;
use strata::distribution::credentials::CliConfig;
use strata::distribution::{Auth, Progress, PullOptions, PushOptions, RegistryOptions};
use strata::{Filters, ImageService, Reference};

/// The stored credentials for `domain` (none when the helper fails, as the
/// CLI's `ResolveAuthConfig` ignores that error).
fn stored_auth(domain: &str) -> Option<Auth> {
    CliConfig::load().get(domain).ok().flatten()
}

/// Parse `name` as the CLI does, adding `:latest` (with the CLI's notice)
/// unless all tags are wanted.
fn cli_reference(out: &mut impl Write, name: &str, all_tags: bool) -> Result<Reference, Failure> {
    let r =
        Reference::parse_normalized_named(name).map_err(|e| Failure(e.message().to_string()))?;
    if all_tags {
        if !r.is_name_only() {
            return Err(Failure("tag can't be used with --all-tags/-a".into()));
        }
        return Ok(r);
    }
    if r.is_name_only() {
        writeln!(out, "Using default tag: latest")?;
        return Ok(r.tag_name_only());
    }
    Ok(r)
}

/// Run `fut` while showing its progress messages (bars on a terminal,
/// plain lines otherwise, nothing when `quiet`: see [`super::progress`]).
async fn with_progress<T>(
    out: &mut impl Write,
    quiet: bool,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Progress>,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(fut);
    let mut display = Display::for_stdout(quiet);
    loop {
        tokio::select! {
            res = &mut fut => {
                while let Ok(p) = rx.try_recv() {
                    display.show(out, p);
                }
                display.finish();
                return res;
            }
            Some(p) = rx.recv() => display.show(out, p),
        }
    }
}

/// `strata pull [-a] [--platform P] [-q] NAME[:TAG|@DIGEST]`.
pub async fn pull(
    svc: &ImageService,
    out: &mut impl Write,
    name: &str,
    all_tags: bool,
    platform: Option<String>,
    quiet: bool,
) -> Result<(), Failure> {
    let r = cli_reference(out, name, all_tags)?;
    out.flush()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = PullOptions {
        platform,
        auth: stored_auth(r.domain()),
        registry: RegistryOptions::from_env(),
        progress: Some(tx),
        ..PullOptions::default()
    };
    let reference = r.canonical_string();
    with_progress(out, quiet, &mut rx, svc.pull_image_with(&reference, opts)).await?;
    writeln!(out, "{}", r.familiar_string())?;
    Ok(())
}

/// `strata push [-a] [-q] NAME[:TAG]`.
pub async fn push(
    svc: &ImageService,
    out: &mut impl Write,
    name: &str,
    all_tags: bool,
    quiet: bool,
) -> Result<(), Failure> {
    let r = cli_reference(out, name, all_tags)?;
    out.flush()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = PushOptions {
        auth: stored_auth(r.domain()),
        registry: RegistryOptions::from_env(),
        progress: Some(tx),
        ..PushOptions::default()
    };
    let reference = r.canonical_string();
    with_progress(out, quiet, &mut rx, svc.push_image_with(&reference, opts)).await?;
    if quiet {
        writeln!(out, "{}", r.familiar_string())?;
    }
    Ok(())
}

/// `strata search [--limit N] [-f K=V]... [--no-trunc] TERM`: the CLI's
/// table, by stars, descriptions cut at 45 columns unless `--no-trunc`.
pub async fn search(
    svc: &ImageService,
    out: &mut impl Write,
    term: &str,
    limit: Option<i64>,
    filters: &[String],
    no_trunc: bool,
) -> Result<(), Failure> {
    let f = Filters::from_cli_pairs(filters)?;
    let index = match term.split_once('/') {
        Some((h, _)) if h.contains('.') || h.contains(':') || h == "localhost" => h,
        _ => "docker.io",
    };
    let mut results = svc
        .search_registry_for_images_with(
            term,
            limit,
            &f,
            stored_auth(index),
            &RegistryOptions::from_env(),
        )
        .await?;
    results.sort_by_key(|r| std::cmp::Reverse(r.star_count));
    let mut lines = vec!["NAME\tDESCRIPTION\tSTARS\tOFFICIAL\tAUTOMATED".to_string()];
    for r in results {
        let mut desc = r.description.replace('\n', " ");
        if !no_trunc {
            desc = super::render::ellipsis(&desc, 45);
        }
        lines.push(format!(
            "{}\t{}\t{}\t{}\t{}",
            r.name,
            desc,
            r.star_count,
            if r.is_official { "[OK]" } else { "" },
            if r.is_automated { "[OK]" } else { "" },
        ));
    }
    write!(out, "{}", super::render::docker_table(&lines))?;
    Ok(())
}

/// `strata login [-u USER] [-p PASS | --password-stdin] [SERVER]`.
pub async fn login(
    out: &mut impl Write,
    server: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<(), Failure> {
    let server = server.unwrap_or_else(|| "docker.io".into());
    let password = if password_stdin {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        Some(s.trim_end_matches(['\n', '\r']).to_string())
    } else {
        password
    };
    let (Some(username), Some(password)) = (username, password) else {
        return Err(Failure(
            "Error: Cannot perform an interactive login from a non TTY device".into(),
        ));
    };
    let auth = Auth::basic(&username, &password);
    let report =
        strata::distribution::login_with(&server, &auth, &RegistryOptions::from_env()).await?;
    let mut stored = auth;
    if !report.identity_token.is_empty() {
        stored.password.clear();
        stored.identity_token = report.identity_token.clone();
    }
    let mut cfg = CliConfig::load();
    cfg.store(&server, &stored)?;
    cfg.save()?;
    writeln!(out, "{}", report.status)?;
    Ok(())
}

/// `strata logout [SERVER]`.
pub async fn logout(out: &mut impl Write, server: Option<String>) -> Result<(), Failure> {
    let server = server.unwrap_or_else(|| "docker.io".into());
    let key = strata::distribution::client::index_key(&server);
    let shown = if key.starts_with("https://index.docker.io") {
        key.clone()
    } else {
        server.clone()
    };
    let mut cfg = CliConfig::load();
    let keys = cfg.logged_in_keys(&server);
    if keys.is_empty() {
        writeln!(out, "Not logged in to {shown}")?;
        return Ok(());
    }
    writeln!(out, "Removing login credentials for {shown}")?;
    for k in keys {
        if let Err(e) = cfg.erase(&k) {
            eprintln!("WARNING: could not erase credentials: {}", e.message());
        }
    }
    cfg.save()?;
    Ok(())
}
