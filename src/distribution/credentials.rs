//! The docker CLI config file (`$DOCKER_CONFIG/config.json`, default
//! `~/.docker/config.json`) and its credential stores, as the docker CLI
//! 20.10 uses them: `credHelpers[<registry>]`, else `credsStore`, else the
//! file's own `auths`. External stores speak the docker-credential-helpers
//! protocol: `docker-credential-<name> get|store|erase` with the server URL
//! (get, erase) or `{"ServerURL","Username","Secret"}` (store) on stdin.
//! With a helper, the file keeps an empty `auths` entry for the registry
//! (so that `logout` knows it is logged in), as the CLI's native store does.

use super::client::{Auth, index_key};
use crate::error::{Error, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The token user name helpers store identity tokens under.
const TOKEN_USERNAME: &str = "<token>";
/// What a helper prints when it has no credentials.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The docker CLI config file path.
pub fn config_path() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".docker").join("config.json")
        }
    }
}

/// A loaded config file.
#[derive(Clone, Debug)]
pub struct CliConfig {
    /// Where it is read from and written to.
    pub path: PathBuf,
    /// Its JSON (an object).
    pub value: serde_json::Value,
}

impl CliConfig {
    /// Load [`config_path`] (an empty config when missing or unreadable).
    pub fn load() -> CliConfig {
        CliConfig::load_from(&config_path())
    }

    /// Load `path` (an empty config when missing or unreadable).
    pub fn load_from(path: &Path) -> CliConfig {
        let value = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|v: &serde_json::Value| v.is_object())
            .unwrap_or_else(|| serde_json::json!({}));
        CliConfig {
            path: path.to_path_buf(),
            value,
        }
    }

    /// Write the file back (atomically, pretty JSON).
    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        let text = serde_json::to_string_pretty(&self.value)
            .map_err(|e| Error::internal(e.to_string()))?;
        tmp.write_all(text.as_bytes())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path)
            .map_err(|e| Error::internal(e.error.to_string()))?;
        Ok(())
    }

    /// The credential helper for the registry key `key` (`credHelpers`,
    /// then `credsStore`), if any.
    pub fn helper_for(&self, key: &str) -> Option<String> {
        let by_host = self
            .value
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty());
        by_host
            .or_else(|| {
                self.value
                    .get("credsStore")
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
            })
            .map(str::to_string)
    }

    /// The credentials for the registry `domain` (a host, URL or
    /// `docker.io`), from its helper or the file.
    pub fn get(&self, domain: &str) -> Result<Option<Auth>> {
        let key = index_key(domain);
        let bytes = serde_json::to_vec(&self.value).unwrap_or_default();
        let from_file = Auth::from_docker_config(&bytes, &key);
        let Some(helper) = self.helper_for(&key) else {
            return Ok(from_file);
        };
        let mut a = from_file.unwrap_or_default();
        match helper_get(&helper, &key)? {
            None => Ok(None),
            Some(h) => {
                a.username = h.username;
                a.password = h.password;
                a.identity_token = h.identity_token;
                a.auth.clear();
                a.server_address = key;
                Ok(Some(a))
            }
        }
    }

    /// Store `auth` for `domain` (login): in its helper (the file keeps an
    /// empty entry) or base64 in the file. Call [`CliConfig::save`] after.
    pub fn store(&mut self, domain: &str, auth: &Auth) -> Result<()> {
        let key = index_key(domain);
        let entry = if let Some(helper) = self.helper_for(&key) {
            helper_store(&helper, &key, auth)?;
            serde_json::json!({})
        } else if auth.identity_token.is_empty() {
            use base64::Engine as _;
            serde_json::json!({
                "auth": base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", auth.username, auth.password))
            })
        } else {
            serde_json::json!({ "auth": "", "identitytoken": auth.identity_token })
        };
        if !self.value.get("auths").is_some_and(|a| a.is_object()) {
            self.value["auths"] = serde_json::json!({});
        }
        self.value["auths"][&key] = entry;
        Ok(())
    }

    /// The `auths` keys that name `domain` (as the CLI's logout looks them
    /// up: the key, and `http://`/`https://` + host for other registries).
    pub fn logged_in_keys(&self, domain: &str) -> Vec<String> {
        let key = index_key(domain);
        let mut tries = vec![key.clone()];
        if !key.starts_with("https://index.docker.io") {
            tries.push(format!("http://{key}"));
            tries.push(format!("https://{key}"));
        }
        let auths = self.value.get("auths").and_then(|a| a.as_object());
        tries
            .into_iter()
            .filter(|k| auths.is_some_and(|a| a.contains_key(k)))
            .collect()
    }

    /// Erase the credentials stored under the `auths` key `key` (logout):
    /// from its helper and from the file. A helper failure is returned
    /// after the file entry is removed. Call [`CliConfig::save`] after.
    pub fn erase(&mut self, key: &str) -> Result<()> {
        if let Some(a) = self.value.get_mut("auths").and_then(|a| a.as_object_mut()) {
            a.remove(key);
        }
        match self.helper_for(key) {
            Some(helper) => helper_erase(&helper, key),
            None => Ok(()),
        }
    }
}

fn run_helper(name: &str, action: &str, input: &[u8]) -> std::io::Result<(bool, String)> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn exec_error(name: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!("exec: \"docker-credential-{name}\": executable file not found in $PATH")
    } else {
        e.to_string()
    }
}

/// `docker-credential-<name> get`: `None` when the helper has none.
pub fn helper_get(name: &str, server_url: &str) -> Result<Option<Auth>> {
    #[derive(serde::Deserialize)]
    struct Creds {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let (ok, out) = run_helper(name, "get", server_url.as_bytes()).map_err(|e| {
        Error::internal(format!(
            "error getting credentials - err: {}, out: ``",
            exec_error(name, &e)
        ))
    })?;
    if !ok {
        if out == NOT_FOUND {
            return Ok(None);
        }
        return Err(Error::internal(format!(
            "error getting credentials - err: exit status 1, out: `{out}`"
        )));
    }
    let c: Creds = serde_json::from_str(&out).map_err(|e| {
        Error::internal(format!(
            "error getting credentials - err: {e}, out: `{out}`"
        ))
    })?;
    let mut a = Auth {
        server_address: server_url.to_string(),
        ..Auth::default()
    };
    if c.username == TOKEN_USERNAME {
        a.identity_token = c.secret;
    } else {
        a.username = c.username;
        a.password = c.secret;
    }
    Ok(Some(a))
}

/// `docker-credential-<name> store`.
pub fn helper_store(name: &str, server_url: &str, auth: &Auth) -> Result<()> {
    let (user, secret) = if auth.identity_token.is_empty() {
        (auth.username.as_str(), auth.password.as_str())
    } else {
        (TOKEN_USERNAME, auth.identity_token.as_str())
    };
    let body = serde_json::json!({"ServerURL": server_url, "Username": user, "Secret": secret});
    let (ok, out) = run_helper(name, "store", body.to_string().as_bytes()).map_err(|e| {
        Error::internal(format!(
            "error storing credentials - err: {}, out: ``",
            exec_error(name, &e)
        ))
    })?;
    if !ok {
        return Err(Error::internal(format!(
            "error storing credentials - err: exit status 1, out: `{out}`"
        )));
    }
    Ok(())
}

/// `docker-credential-<name> erase`.
pub fn helper_erase(name: &str, server_url: &str) -> Result<()> {
    let (ok, out) = run_helper(name, "erase", server_url.as_bytes()).map_err(|e| {
        Error::internal(format!(
            "error erasing credentials - err: {}, out: ``",
            exec_error(name, &e)
        ))
    })?;
    if !ok {
        return Err(Error::internal(format!(
            "error erasing credentials - err: exit status 1, out: `{out}`"
        )));
    }
    Ok(())
}
