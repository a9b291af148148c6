//! `check --pushgateway URL`: one HTTP PUT of the metrics to a Pushgateway's group URL,
//! over `http://` or `https://` (rustls, aws-lc-rs, the platform's roots or
//! `--pushgateway-ca-file`), with an optional bearer token or basic-auth credential read
//! from a file.
//!
//! The push is bounded in time and in memory: connecting, the TLS handshake, the request
//! and the answer all fit in `--pushgateway-timeout`, and at most [`MAX_ANSWER_BYTES`] of
//! the answer's body are read before the connection is closed. A URL never carries a
//! credential (`http://user:pass@host` is refused, without echoing it); a credential is
//! never printed, logged or shown by `Debug`, and is sent over plain `http://` only to a
//! loopback address.

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::body::{Body, Bytes};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::UsageError;
use crate::cli::PushArgs;
use crate::escape::escape_prefix;

/// The most bytes of a Pushgateway's answer read: its error text is a line or two, and
/// only its first [`QUOTED_ANSWER_BYTES`] are quoted; the rest is never read (the
/// connection is closed), however much the server sends.
pub(crate) const MAX_ANSWER_BYTES: usize = 4096;

/// How much of a refusal's body an error quotes (escaped).
const QUOTED_ANSWER_BYTES: usize = 300;

/// A Pushgateway's base URL, from `--pushgateway`: `http[s]://HOST[:PORT][/PREFIX]`, with
/// no user or password in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushgateway {
    /// The URL as given, without a trailing `/`: how it is shown.
    base: String,
    tls: bool,
    /// `HOST[:PORT]` as given: the `Host` header.
    authority: String,
    /// The host to connect to and to verify (no brackets around an IPv6 address).
    host: String,
    port: u16,
    /// The path prefix, without a trailing `/`.
    prefix: String,
}

impl std::str::FromStr for Pushgateway {
    type Err = String;

    /// Parses a URL; an error never repeats a user or password the URL holds.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err(
                "empty (to push nothing, leave it out or unset CERTROTATE_PUSHGATEWAY)".into(),
            );
        }
        let shown = without_userinfo(s);
        let uri: hyper::Uri = s
            .parse()
            .map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("{shown:?}: expected http[s]://HOST[:PORT]")),
        };
        let Some(authority) = uri.authority() else {
            return Err(format!("{shown:?}: no host"));
        };
        if authority.as_str().contains('@') {
            return Err(format!(
                "{shown:?}: a user or password in the URL is refused (it would show in errors \
                 and logs); put it in a file for --pushgateway-basic-auth-file (or a token for \
                 --pushgateway-bearer-token-file)"
            ));
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(format!("{shown:?}: no host"));
        }
        if uri.query().is_some() {
            return Err(format!(
                "{shown:?}: a query has no place in a Pushgateway URL"
            ));
        }
        Ok(Self {
            base: s.trim_end_matches('/').to_owned(),
            tls,
            authority: authority.as_str().to_owned(),
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

/// `s` with what lies between `://` and the last `@` of the authority replaced by `***`,
/// for errors about a URL that may hold a password.
fn without_userinfo(s: &str) -> String {
    let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => s.to_owned(),
    }
}

impl std::fmt::Display for Pushgateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

/// The value parser of `--pushgateway` (and `CERTROTATE_PUSHGATEWAY`): clap's own error
/// for a `FromStr` value quotes the value, which may hold a password; this one names the
/// flag and says what is wrong, quoting the URL only without its user and password.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PushgatewayParser;

impl clap::builder::TypedValueParser for PushgatewayParser {
    type Value = Pushgateway;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Pushgateway, clap::Error> {
        let flag = arg.map_or_else(|| "--pushgateway".to_owned(), ToString::to_string);
        let reason = match value.to_str() {
            Some(text) => match text.parse() {
                Ok(gateway) => return Ok(gateway),
                Err(reason) => reason,
            },
            None => "not UTF-8".to_owned(),
        };
        Err(clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!("invalid value for '{flag}': {reason}"),
        )
        .format(&mut cmd.clone()))
    }
}

impl Pushgateway {
    /// The URL of the group `job` with the `grouping` labels:
    /// `BASE/metrics/job/JOB/LABEL/VALUE...`, a value that is not a plain path segment
    /// base64url-encoded (`LABEL@base64/...`), as the Pushgateway reads it.
    pub(crate) fn group_url(&self, job: &str, grouping: &[(&str, &str)]) -> String {
        format!("{}{}", self.origin(), self.group_path(job, grouping))
    }

    /// `SCHEME://AUTHORITY`.
    fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The path of [`Pushgateway::group_url`].
    fn group_path(&self, job: &str, grouping: &[(&str, &str)]) -> String {
        let mut path = format!("{}/metrics", self.prefix);
        for (label, value) in std::iter::once(("job", job)).chain(grouping.iter().copied()) {
            let plain = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if plain {
                path.push_str(&format!("/{label}/{value}"));
            } else {
                let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
                // The Pushgateway reads an empty value as `=` (one padding character).
                let encoded = if encoded.is_empty() {
                    "=".into()
                } else {
                    encoded
                };
                path.push_str(&format!("/{label}@base64/{encoded}"));
            }
        }
        path
    }

    /// Whether the host is a loopback address literal (`127.0.0.0/8`, `::1`): the only
    /// place a credential may be sent over plain `http://`. A name (`localhost`) is not
    /// judged: whatever resolves it chooses where it points.
    fn is_loopback(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// How `check` pushes: where, as whom, trusting what, within how long.
#[derive(Debug)]
pub(crate) struct Push {
    /// The Pushgateway.
    pub(crate) gateway: Pushgateway,
    /// The job name.
    pub(crate) job: String,
    credential: Option<Credential>,
    /// `--pushgateway-ca-file`: the only roots trusted (default: the platform's).
    roots: Option<Vec<CertificateDer<'static>>>,
    timeout: Duration,
}

impl Push {
    /// The push asked for (`None` without `--pushgateway`). A credential over
    /// plain `http://` to another host than a loopback address, or a CA file for an
    /// `http://` URL, is a usage error; the files are read (and judged) here, before the
    /// check runs.
    pub(crate) fn from_args(args: &PushArgs) -> Result<Option<Self>> {
        let Some(gateway) = args.pushgateway.clone() else {
            return Ok(None);
        };
        let credential_flag = if args.pushgateway_bearer_token_file.is_some() {
            Some("--pushgateway-bearer-token-file")
        } else if args.pushgateway_basic_auth_file.is_some() {
            Some("--pushgateway-basic-auth-file")
        } else {
            None
        };
        if let Some(flag) = credential_flag
            && !gateway.tls
            && !gateway.is_loopback()
        {
            return Err(UsageError(format!(
                "{flag}: the credential would cross the network in clear text to \
                 {gateway}; use an https:// Pushgateway URL (plain http:// is allowed only \
                 to a loopback address such as 127.0.0.1)"
            ))
            .into());
        }
        if args.pushgateway_ca_file.is_some() && !gateway.tls {
            return Err(UsageError(format!(
                "--pushgateway-ca-file: {gateway} is not an https:// URL; no certificate \
                 is verified over plain http"
            ))
            .into());
        }
        let credential = match (
            &args.pushgateway_bearer_token_file,
            &args.pushgateway_basic_auth_file,
        ) {
            (Some(file), _) => Some(Credential::bearer_from_file(file)?),
            (None, Some(file)) => Some(Credential::basic_from_file(file)?),
            (None, None) => None,
        };
        let roots = args
            .pushgateway_ca_file
            .as_deref()
            .map(read_roots)
            .transpose()?;
        Ok(Some(Self {
            gateway,
            job: args.pushgateway_job.clone(),
            credential,
            roots,
            timeout: args.pushgateway_timeout,
        }))
    }

    /// Replaces the group's metrics with `body` (HTTP PUT), failing on any answer but 2xx,
    /// or when the whole exchange (connecting, TLS, request, answer) takes longer than
    /// the timeout.
    pub(crate) async fn push(&self, grouping: &[(&str, &str)], body: String) -> Result<()> {
        let url = self.gateway.group_url(&self.job, grouping);
        let mut request = hyper::Request::put(self.gateway.group_path(&self.job, grouping))
            .header(HOST, &self.gateway.authority)
            // The Pushgateway parses the Prometheus text format; OpenMetrics text of gauges
            // is that format too (`# UNIT` and `# EOF` read as comments).
            .header(CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(body)))
            .with_context(|| format!("pushing metrics to {url}"))?;
        if let Some(credential) = &self.credential {
            request
                .headers_mut()
                .insert(AUTHORIZATION, credential.header.clone());
        }
        let (status, answer) = tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.timeout))
            .and_then(|r| r)
            .with_context(|| format!("pushing metrics to {url}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&answer);
            bail!(
                "pushing metrics to {url}: the Pushgateway answered {status}: {}",
                escape_prefix(text.trim(), QUOTED_ANSWER_BYTES)
            );
        }
        Ok(())
    }

    /// Connects (with TLS for `https://`), sends `request`, and returns the answer's status
    /// with at most [`MAX_ANSWER_BYTES`] of its body (none for a 2xx).
    async fn exchange(&self, request: hyper::Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        let gateway = &self.gateway;
        let config = gateway.tls.then(|| self.tls_config()).transpose()?;
        let tcp = tokio::net::TcpStream::connect((gateway.host.as_str(), gateway.port))
            .await
            .with_context(|| format!("connecting to {}", gateway.authority))?;
        let Some(config) = config else {
            return send(tcp, request).await;
        };
        let name = ServerName::try_from(gateway.host.clone())
            .with_context(|| format!("{}: not a host name for TLS", gateway.host))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {}", gateway.authority))?;
        send(tls, request).await
    }

    /// rustls with aws-lc-rs (the tree's one crypto backend), trusting the CA file's
    /// certificates only, or else the platform's roots, as the Kubernetes client does.
    fn tls_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS versions")?;
        let mut config = match &self.roots {
            Some(roots) => {
                let mut store = rustls::RootCertStore::empty();
                for root in roots {
                    store
                        .add(root.clone())
                        .context("--pushgateway-ca-file: a certificate is not a usable CA")?;
                }
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider,
                )
                .build()
                .context("--pushgateway-ca-file")?;
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            }
            None => {
                let verifier = rustls_platform_verifier::Verifier::new(provider)
                    .context("loading the platform's CA certificates")?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth()
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Sends `request` over `io` (HTTP/1.1) and reads the answer: its status, and for an
/// answer but 2xx at most [`MAX_ANSWER_BYTES`] of its body. The connection is dropped
/// (closed) on return, whatever the server still sends.
async fn send<S>(io: S, request: hyper::Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("HTTP handshake")?;
    let exchange = async move {
        let response = sender.send_request(request).await.context("sending")?;
        let status = response.status();
        let body = if status.is_success() {
            Bytes::new()
        } else {
            read_prefix(response.into_body(), MAX_ANSWER_BYTES)
                .await
                .context("reading the answer")?
        };
        anyhow::Ok((status, body))
    };
    tokio::pin!(exchange, connection);
    // The connection moves the bytes while the exchange waits for them; it ends on its
    // own only when the server closed (the answer is then complete in its channel) or
    // failed. Neither outlives this function: dropping them closes the socket.
    tokio::select! {
        result = &mut exchange => result,
        ended = &mut connection => {
            ended.context("the connection failed")?;
            exchange.await
        }
    }
}

/// The first `limit` bytes of `body` (all of it if shorter): reading stops there, however
/// much more the body would yield.
pub(crate) async fn read_prefix<B>(body: B, limit: usize) -> Result<Bytes, B::Error>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut body = body;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let take = data.len().min(limit - out.len());
            out.extend_from_slice(&data[..take]);
        }
    }
    Ok(Bytes::from(out))
}

/// A credential sent as the `Authorization` header; its `Debug` shows only its kind.
struct Credential {
    /// Marked sensitive (hyper's `Debug` hides it too).
    header: HeaderValue,
    kind: &'static str,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, redacted)", self.kind)
    }
}

impl Credential {
    /// `--pushgateway-bearer-token-file`: one line, the token (visible ASCII, as an HTTP
    /// header carries it), sent as `Authorization: Bearer TOKEN`.
    fn bearer_from_file(path: &Path) -> Result<Self> {
        let flag = "--pushgateway-bearer-token-file";
        let data = read_credential_file(flag, path)?;
        let token = one_line(flag, path, &data)?;
        if let Some(at) = token.iter().position(|b| !b.is_ascii_graphic()) {
            bail!(
                "{flag} {}: byte {} of the token is not a visible ASCII character (a \
                 space, a control character or non-ASCII)",
                path.display(),
                at + 1
            );
        }
        let mut value = Vec::with_capacity(token.len() + 7);
        value.extend_from_slice(b"Bearer ");
        value.extend_from_slice(token);
        Self::new(value, "bearer", flag, path)
    }

    /// `--pushgateway-basic-auth-file`: one line, `USER:PASSWORD` (UTF-8, the user not
    /// empty, no control characters), sent as `Authorization: Basic BASE64`.
    fn basic_from_file(path: &Path) -> Result<Self> {
        let flag = "--pushgateway-basic-auth-file";
        let data = read_credential_file(flag, path)?;
        let line = one_line(flag, path, &data)?;
        let Ok(line) = std::str::from_utf8(line) else {
            bail!("{flag} {}: not UTF-8", path.display());
        };
        if let Some((at, _)) = line.char_indices().find(|(_, c)| c.is_control()) {
            bail!(
                "{flag} {}: a control character at byte {}",
                path.display(),
                at + 1
            );
        }
        match line.split_once(':') {
            Some((user, _)) if !user.is_empty() => {}
            _ => bail!(
                "{flag} {}: expected one line USER:PASSWORD (no colon, or no user before it)",
                path.display()
            ),
        }
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(line)
        );
        Self::new(value.into_bytes(), "basic", flag, path)
    }

    fn new(value: Vec<u8>, kind: &'static str, flag: &str, path: &Path) -> Result<Self> {
        let Ok(mut header) = HeaderValue::from_bytes(&value) else {
            bail!("{flag} {}: not a valid HTTP header value", path.display());
        };
        header.set_sensitive(true);
        Ok(Self { header, kind })
    }
}

/// The content of a credential file without its final line break, refused (naming the
/// file, never quoting it) if empty or of more than one line.
fn one_line<'a>(flag: &str, path: &Path, data: &'a [u8]) -> Result<&'a [u8]> {
    let line = data.strip_suffix(b"\n").unwrap_or(data);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("{flag} {}: empty", path.display());
    }
    if line.contains(&b'\n') {
        bail!("{flag} {}: more than one line", path.display());
    }
    Ok(line)
}

/// The most bytes of a credential or CA file: a token or a few certificates.
const MAX_CREDENTIAL_FILE_BYTES: usize = 1 << 20;

/// Reads a credential file as `--profile` is read (opened without blocking, a regular file
/// or a FIFO, bounded), refusing one any user may write and warning about one another
/// user owns or any user may read (unless root owns it: a Kubernetes Secret volume's
/// files are root's, mode 0644 by default).
fn read_credential_file(flag: &str, path: &Path) -> Result<Vec<u8>> {
    read_judged(flag, path, true)
}

/// The certificates of `--pushgateway-ca-file` (PEM), the file judged as a credential
/// file is (whoever may write it may intercept the push), without the readability warning.
fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let flag = "--pushgateway-ca-file";
    let data = read_judged(flag, path, false)?;
    let roots = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{flag} {}: not PEM", path.display()))?;
    if roots.is_empty() {
        bail!("{flag} {}: no CERTIFICATE block", path.display());
    }
    Ok(roots)
}

fn read_judged(flag: &str, path: &Path, secret: bool) -> Result<Vec<u8>> {
    let data =
        crate::input::read_input_with(path, |name, meta| judge_owner(flag, name, meta, secret))
            .with_context(|| flag.to_owned())?;
    if data.len() > MAX_CREDENTIAL_FILE_BYTES {
        bail!(
            "{flag} {}: more than the limit of {MAX_CREDENTIAL_FILE_BYTES} bytes",
            path.display()
        );
    }
    Ok(data)
}

#[cfg(unix)]
fn judge_owner(flag: &str, name: &str, meta: &std::fs::Metadata, secret: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        bail!(
            "{name}: writable by every user (mode {mode:04o}), so anyone may choose what \
             the push trusts or sends; `chmod o-w` it"
        );
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        tracing::warn!(
            "{flag} {name} belongs to uid {}, not to this user (uid {euid}) nor root",
            meta.uid()
        );
    } else if secret && meta.uid() != 0 && mode & 0o004 != 0 {
        tracing::warn!("{flag} {name} is readable by every user (mode {mode:04o}): `chmod o-r` it");
    }
    Ok(())
}

#[cfg(not(unix))]
fn judge_owner(_: &str, _: &str, _: &std::fs::Metadata, _: bool) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context as TaskContext, Poll};

    use hyper::body::Frame;

    use super::*;

    #[test]
    fn group_urls_encode_what_is_not_a_plain_segment() {
        let gw: Pushgateway = "http://pushgateway.monitoring:9091/".parse().unwrap();
        assert_eq!(
            gw.group_url("certrotate", &[("namespace", "envoy-gateway-system")]),
            "http://pushgateway.monitoring:9091/metrics/job/certrotate/namespace/envoy-gateway-system"
        );
        assert_eq!(
            gw.group_url("a/b", &[("x", "")]),
            "http://pushgateway.monitoring:9091/metrics/job@base64/YS9i/x@base64/="
        );
        let gw: Pushgateway = "https://[::1]/gw/".parse().unwrap();
        assert_eq!((gw.host.as_str(), gw.port, gw.tls), ("::1", 443, true));
        assert_eq!(gw.group_path("j", &[]), "/gw/metrics/job/j");
        assert!(gw.is_loopback());
    }

    #[test]
    fn pushgateways_are_http_or_https_urls_without_credentials() {
        assert!("https://gw:9091".parse::<Pushgateway>().is_ok());
        assert!("gw:9091".parse::<Pushgateway>().is_err());
        assert!("ftp://gw:9091".parse::<Pushgateway>().is_err());
        assert!("http://gw:9091/?x=1".parse::<Pushgateway>().is_err());
        assert!("http://gw:9091/prefix".parse::<Pushgateway>().is_ok());
        for url in [
            "http://user:hunter2@gw:9091",
            "https://hunter2@gw",
            "http://u:hunter2@gw:9091/?x=1",
            "http://u:hunter2@@gw:bad",
        ] {
            let error = url.parse::<Pushgateway>().unwrap_err();
            assert!(!error.contains("hunter2"), "{url}: {error}");
        }
        assert!(
            "http://u:hunter2@gw"
                .parse::<Pushgateway>()
                .unwrap_err()
                .contains("--pushgateway-basic-auth-file")
        );
        let gw: Pushgateway = "http://127.0.0.2:1".parse().unwrap();
        assert!(gw.is_loopback());
        let gw: Pushgateway = "http://localhost:1".parse().unwrap();
        assert!(!gw.is_loopback(), "a name is not judged loopback");
    }

    #[test]
    fn userinfo_is_hidden_from_messages() {
        assert_eq!(without_userinfo("http://u:p@h/x@y"), "http://***@h/x@y");
        assert_eq!(without_userinfo("u:p@h"), "***@h");
        assert_eq!(without_userinfo("http://h/a@b"), "http://h/a@b");
    }

    /// An endless body, counting the bytes it yields.
    struct Endless(Arc<AtomicUsize>);

    impl Body for Endless {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut TaskContext<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.fetch_add(1000, Ordering::Relaxed);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 1000])))))
        }
    }

    /// Red-team issue 19 finding 4: the whole answer was read; a flooding Pushgateway
    /// took `check` to 10 GB. The body reader stops at its limit.
    #[tokio::test]
    async fn an_endless_answer_is_read_up_to_the_limit_only() {
        let yielded = Arc::new(AtomicUsize::new(0));
        let prefix = read_prefix(Endless(yielded.clone()), MAX_ANSWER_BYTES)
            .await
            .unwrap();
        assert_eq!(prefix.len(), MAX_ANSWER_BYTES);
        assert_eq!(yielded.load(Ordering::Relaxed), 5000, "one frame past 4000");
        let short = read_prefix(Full::new(Bytes::from_static(b"short")), 4096)
            .await
            .unwrap();
        assert_eq!(&short[..], b"short");
    }

    #[test]
    fn a_credential_never_shows_in_debug() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("token");
        std::fs::write(&file, "s3cr3t-token\n").unwrap();
        let credential = Credential::bearer_from_file(&file).unwrap();
        assert_eq!(credential.header.as_bytes(), b"Bearer s3cr3t-token");
        let debug = format!("{credential:?} {:?}", credential.header);
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }
}
