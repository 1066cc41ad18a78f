//! Registry endpoints and TLS, as Docker 20.10's `registry` package decides
//! them (spec distribution.md §1):
//!
//! - A registry is *insecure* when its index name (`host[:port]`) is listed
//!   as such, or its host is an IP address (or `localhost`, taken as
//!   127.0.0.1 and ::1) inside an insecure CIDR. The default list is
//!   Docker's: `127.0.0.0/8` (and `::1/128`).
//! - Secure registries are reached over https only, verified against the
//!   system roots plus the `*.crt` files of `<certs_dir>/<host[:port]>/`;
//!   a `*.cert` + `*.key` pair there is the client certificate.
//! - Insecure registries are tried over https first, without verification,
//!   then over plain http.
//!
//! [`RegistryOptions::from_env`] reads `STRATA_INSECURE_REGISTRIES`
//! (comma-separated CIDRs or index names, like dockerd's
//! `--insecure-registry`) and `STRATA_CERTS_DIR` (default
//! `/etc/docker/certs.d`).

use super::client::{Fail, Url};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_rustls::rustls;

/// Docker's certificates directory.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// Go's `http.Transport.TLSHandshakeTimeout` in Docker's registry transport.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Registry settings: which registries are insecure and where the
/// per-registry certificates live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Insecure registries: CIDRs (`127.0.0.0/8`) or index names
    /// (`host[:port]`, matched exactly).
    pub insecure: Vec<String>,
    /// The directory of `<host[:port]>/{*.crt,*.cert,*.key}`.
    pub certs_dir: PathBuf,
    /// How long the https attempt on an insecure registry waits for the
    /// server's first TLS bytes before falling back to http (a plain HTTP
    /// server that waits for a request never answers a ClientHello).
    pub fallback_timeout: Duration,
}

impl Default for RegistryOptions {
    /// Docker's defaults: loopback is insecure, certificates in
    /// `/etc/docker/certs.d`.
    fn default() -> RegistryOptions {
        RegistryOptions {
            insecure: vec!["127.0.0.0/8".into(), "::1/128".into()],
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            fallback_timeout: Duration::from_secs(1),
        }
    }
}

impl RegistryOptions {
    /// No insecure registries at all (not even loopback): every registry
    /// is reached over verified https. Certificates from `certs_dir`.
    pub fn secure_only(certs_dir: impl Into<PathBuf>) -> RegistryOptions {
        RegistryOptions {
            insecure: Vec::new(),
            certs_dir: certs_dir.into(),
            ..RegistryOptions::default()
        }
    }

    /// The defaults plus `STRATA_INSECURE_REGISTRIES` and `STRATA_CERTS_DIR`.
    pub fn from_env() -> RegistryOptions {
        let mut o = RegistryOptions::default();
        if let Ok(list) = std::env::var("STRATA_INSECURE_REGISTRIES") {
            o.insecure.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        if let Some(d) = std::env::var_os("STRATA_CERTS_DIR").filter(|d| !d.is_empty()) {
            o.certs_dir = PathBuf::from(d);
        }
        o
    }

    /// Docker's `isSecureIndex`, negated: whether `index` (`host[:port]`)
    /// is an insecure registry.
    pub fn is_insecure(&self, index: &str) -> bool {
        if self.insecure.iter().any(|e| !e.contains('/') && e == index) {
            return true;
        }
        let host = split_host(index);
        let addrs: Vec<IpAddr> = if host.eq_ignore_ascii_case("localhost") {
            vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()]
        } else {
            host.parse::<IpAddr>().into_iter().collect()
        };
        addrs.iter().any(|ip| {
            self.insecure
                .iter()
                .filter_map(|e| e.split_once('/'))
                .any(|(net, bits)| cidr_contains(net, bits, ip))
        })
    }

    /// The endpoints to try for the registry `domain`, in order.
    pub(crate) fn endpoints(&self, domain: &str) -> Result<Vec<Endpoint>, Fail> {
        let (index, authority) = match domain {
            "docker.io" | "index.docker.io" => ("docker.io", "registry-1.docker.io"),
            d => (d, d),
        };
        let insecure = index != "docker.io" && self.is_insecure(index);
        let tls = client_config(&self.certs_dir.join(clean_path(index)), insecure)
            .map_err(Fail::fatal)?;
        let https = Endpoint {
            url: Url {
                scheme: "https".into(),
                authority: authority.into(),
                path: "/".into(),
            },
            transport: Transport {
                tls: tls.clone(),
                first_byte_timeout: insecure.then_some(self.fallback_timeout),
            },
        };
        let mut out = vec![https];
        if insecure {
            out.push(Endpoint {
                url: Url {
                    scheme: "http".into(),
                    authority: authority.into(),
                    path: "/".into(),
                },
                transport: Transport {
                    tls,
                    first_byte_timeout: None,
                },
            });
        }
        Ok(out)
    }
}

/// One way to reach a registry.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) url: Url,
    pub(crate) transport: Transport,
}

/// How `https://` URLs are spoken to.
#[derive(Clone, Debug)]
pub struct Transport {
    tls: Arc<rustls::ClientConfig>,
    first_byte_timeout: Option<Duration>,
}

impl Default for Transport {
    /// Verified TLS against the system roots, no client certificate.
    fn default() -> Transport {
        static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
        let tls = DEFAULT
            .get_or_init(|| {
                client_config(Path::new("/nonexistent"), false).expect("default TLS config")
            })
            .clone();
        Transport {
            tls,
            first_byte_timeout: None,
        }
    }
}

/// An async byte stream (plain TCP or TLS).
pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl Transport {
    /// Run the TLS handshake with `host` (no port) on `tcp`; the error is
    /// Go's text for the failure.
    pub(crate) async fn handshake(
        &self,
        tcp: tokio::net::TcpStream,
        host: &str,
    ) -> Result<Box<dyn Io>, String> {
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("tls: invalid server name {name:?}: {e}"))?;
        if let Some(t) = self.first_byte_timeout {
            // An insecure registry may speak plain HTTP and wait for a
            // request: give up quickly when nothing answers the hello.
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let fut = connector.connect(server_name.clone(), Watch::new(tcp));
            tokio::pin!(fut);
            let started = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    r = &mut fut => return r.map(|s| Box::new(s) as Box<dyn Io>).map_err(|e| io_tls_text(&e, name)),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        let waited = started.elapsed();
                        if waited >= HANDSHAKE_TIMEOUT
                            || (waited >= t && !(*fut).get_ref().is_some_and(Watch::answered))
                        {
                            return Err("net/http: TLS handshake timeout".into());
                        }
                    }
                }
            }
        }
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, tcp)).await {
            Err(_) => Err("net/http: TLS handshake timeout".into()),
            Ok(Err(e)) => Err(io_tls_text(&e, name)),
            Ok(Ok(s)) => Ok(Box::new(s)),
        }
    }
}

/// A TCP stream that notes whether the peer sent anything.
struct Watch {
    inner: tokio::net::TcpStream,
    answered: bool,
}

impl Watch {
    fn new(inner: tokio::net::TcpStream) -> Watch {
        Watch {
            inner,
            answered: false,
        }
    }
    fn answered(&self) -> bool {
        self.answered
    }
}

impl tokio::io::AsyncRead for Watch {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.answered = true;
        }
        r
    }
}

impl tokio::io::AsyncWrite for Watch {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Go's text for a TLS failure carried in an io error.
pub(crate) fn io_tls_text(e: &std::io::Error, host: &str) -> String {
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_text(t, host);
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "EOF".into(),
        std::io::ErrorKind::ConnectionReset => "read: connection reset by peer".into(),
        _ => e.to_string(),
    }
}

/// Go's text for a rustls error.
pub(crate) fn tls_text(e: &rustls::Error, host: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "x509: certificate signed by unknown authority".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("x509: certificate is not valid for {host}")
            }
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => {
                "x509: certificate has expired or is not yet valid".into()
            }
            other => format!("x509: {other:?}"),
        },
        E::AlertReceived(a) => {
            let what = match a {
                A::BadCertificate => "bad certificate".to_string(),
                A::CertificateRequired => "certificate required".to_string(),
                A::UnknownCA => "unknown certificate authority".to_string(),
                A::HandshakeFailure => "handshake failure".to_string(),
                A::ProtocolVersion => "protocol version not supported".to_string(),
                other => format!("{other:?}").to_ascii_lowercase(),
            };
            format!("remote error: tls: {what}")
        }
        E::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "http: server gave HTTP response to HTTPS client".into()
        }
        other => format!("tls: {other}"),
    }
}

/// The text of a hyper error whose cause is a TLS failure, if it is one.
pub(crate) fn hyper_tls_text(e: &hyper::Error, host: &str) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Some(tls_text(t, host));
        }
        // io::Error::source skips the wrapped error itself.
        if let Some(t) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls_text(t, host));
        }
        cause = c.source();
    }
    None
}

fn split_host(index: &str) -> &str {
    if let Some(rest) = index.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    index
        .rsplit_once(':')
        .filter(|(h, p)| !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(index, |(h, _)| h)
}

fn cidr_contains(net: &str, bits: &str, ip: &IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(*i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(*i) & mask
        }
        _ => false,
    }
}

/// Go's `filepath.Clean` of a host name used as a directory name.
fn clean_path(index: &str) -> String {
    index.replace(['/', '\\'], "_").replace("..", "_")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static P: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// What `ReadCertsDirectory` found in a host's directory.
#[derive(Default)]
struct HostCerts {
    cas: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// Docker's `ReadCertsDirectory`: `*.crt` are CAs, `*.cert` + `*.key`
/// client pairs (the first pair wins). A missing directory is no error.
fn read_certs_directory(dir: &Path) -> Result<HostCerts, String> {
    let mut out = HostCerts::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("open {}: {e}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for f in &names {
        let path = dir.join(f);
        if f.ends_with(".crt") {
            for c in CertificateDer::pem_file_iter(&path)
                .map_err(|e| format!("open {}: {e}", path.display()))?
            {
                out.cas
                    .push(c.map_err(|e| format!("{}: {e}", path.display()))?);
            }
        }
        if let Some(stem) = f.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !names.contains(&key) {
                return Err(format!(
                    "missing key {key} for client certificate {f}. Note that CA certificates should use the extension .crt"
                ));
            }
            if out.client.is_none() {
                let chain = CertificateDer::pem_file_iter(&path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let kp = dir.join(&key);
                let k = PrivateKeyDer::from_pem_file(&kp)
                    .map_err(|e| format!("{}: {e}", kp.display()))?;
                out.client = Some((chain, k));
            }
        }
        if let Some(stem) = f.strip_suffix(".key") {
            let cert = format!("{stem}.cert");
            if !names.contains(&cert) {
                return Err(format!("missing client certificate {cert} for key {f}"));
            }
        }
    }
    Ok(out)
}

/// The TLS client configuration for a registry whose certificates live in
/// `host_dir`; `skip_verify` for insecure registries.
pub(crate) fn client_config(
    host_dir: &Path,
    skip_verify: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let certs = read_certs_directory(host_dir)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(system_roots().iter().cloned());
        for c in certs.cas {
            roots
                .add(c)
                .map_err(|e| format!("{}: {e}", host_dir.display()))?;
        }
        builder.with_root_certificates(roots)
    };
    let cfg = match certs.client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("{}: {e}", host_dir.display()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// `InsecureSkipVerify`: any server certificate is accepted (signatures
/// are still checked).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules() {
        let d = RegistryOptions::default();
        let s = RegistryOptions::secure_only("/x");
        let listed = RegistryOptions {
            insecure: vec!["10.1.0.0/16".into(), "reg.example:5000".into()],
            ..RegistryOptions::secure_only("/x")
        };
        for (h, def, sec, lst) in [
            ("127.0.0.1:5000", true, false, false),
            ("127.3.4.5", true, false, false),
            ("localhost:5000", true, false, false),
            ("[::1]:5000", true, false, false),
            ("10.1.2.3:5000", false, false, true),
            ("10.2.0.1", false, false, false),
            ("reg.example:5000", false, false, true),
            ("reg.example", false, false, false),
            ("docker.io", false, false, false),
        ] {
            assert_eq!(d.is_insecure(h), def, "default {h}");
            assert_eq!(s.is_insecure(h), sec, "secure_only {h}");
            assert_eq!(listed.is_insecure(h), lst, "listed {h}");
        }
    }
}
