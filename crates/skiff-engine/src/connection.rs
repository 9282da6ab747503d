//! From an account to a signed-in XML stream: server lookup (DNS SRV, XEP-0368), TCP,
//! TLS (STARTTLS or direct, verified with tokio-rustls), then the sans-IO
//! [`Negotiator`] of `skiff-proto` driven over the socket, with the TLS session's
//! channel-binding data (RFC 9266 `tls-exporter`) for the SCRAM -PLUS mechanisms; the
//! SCRAM step that runs PBKDF2 goes to a blocking thread.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use skiff_proto::negotiation::{
    Action, ChannelBindingData, Negotiated, NegotiationError, Negotiator, TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN,
};
use skiff_proto::ns;
use skiff_proto::stream::{self, StreamParser, XmlError};
use skiff_proto::xml::Element;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::config::{AccountConfig, TlsMode};
use crate::trust::{Fingerprint, TrustSettings, TrustVerifier, Untrusted};

/// Why signing in failed, in words a user understands.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("could not find the server for {domain}: {reason}")]
    Resolve { domain: String, reason: String },
    #[error("could not connect to {target}: {source}")]
    Connect { target: String, source: io::Error },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    /// The server's certificate is not trusted (not refused for another TLS reason):
    /// what it is and why, for the user to decide (pin its fingerprint) or to stop.
    #[error("{0}")]
    Untrusted(Box<Untrusted>),
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error(
        "plaintext (unencrypted) connections are allowed only to a server on this machine; {target} is not loopback"
    )]
    PlaintextNotLoopback { target: String },
    #[error("{0}")]
    Negotiation(#[from] NegotiationError),
    #[error("the server sent invalid XML: {0}")]
    Xml(#[from] XmlError),
    #[error("the connection was lost during sign-in: {0}")]
    Io(#[from] io::Error),
    #[error("the server did not complete sign-in within {0} seconds")]
    Timeout(u64),
}

impl ConnectError {
    /// Errors that retrying will not fix (wrong password, untrusted certificate, policy).
    pub fn is_fatal(&self) -> bool {
        match self {
            ConnectError::Tls { .. }
            | ConnectError::Untrusted(_)
            | ConnectError::CaFile { .. }
            | ConnectError::PlaintextNotLoopback { .. } => true,
            ConnectError::Negotiation(e) => !matches!(e, NegotiationError::Closed | NegotiationError::Stream(_)),
            _ => false,
        }
    }
}

/// The byte stream under XMPP: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A signed-in stream, ready for stanzas.
#[derive(Debug)]
pub struct Connected {
    pub transport: Transport,
    /// The parser, holding whatever arrived after negotiation finished.
    pub parser: StreamParser,
    pub negotiated: Negotiated,
    /// The address actually connected to.
    pub peer_addr: SocketAddr,
}

/// One place to connect to, with the way to secure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
}

/// The XEP-0198 session to resume instead of binding, with its bound JID.
pub type Resume = Option<(skiff_proto::sm::ResumeRequest, skiff_proto::jid::Jid)>;

/// Signs in: tries each endpoint and each of its addresses in turn. With `resume`,
/// asks to resume that session (see [`Negotiated::resumption`] for how it went).
pub async fn connect(cfg: &AccountConfig, resume: Resume) -> Result<Connected, ConnectError> {
    let secs = cfg.connect_timeout.as_secs();
    tokio::time::timeout(cfg.connect_timeout, connect_inner(cfg, &resume))
        .await
        .map_err(|_| ConnectError::Timeout(secs))?
}

async fn connect_inner(cfg: &AccountConfig, resume: &Resume) -> Result<Connected, ConnectError> {
    let (tls_config, verifier) = tls_setup(cfg.ca_file.as_deref(), &cfg.trusted_certificates)?;
    let tls = Tls { config: tls_config, verifier };
    let endpoints = endpoints(cfg).await?;
    let mut last_err = None;
    for ep in endpoints {
        let addrs = match tokio::net::lookup_host((ep.host.as_str(), ep.port)).await {
            Ok(a) => a.collect::<Vec<_>>(),
            Err(e) => {
                last_err = Some(ConnectError::Resolve { domain: ep.host.clone(), reason: e.to_string() });
                continue;
            }
        };
        for addr in addrs {
            if ep.tls == TlsMode::Plaintext && !addr.ip().is_loopback() {
                return Err(ConnectError::PlaintextNotLoopback { target: format!("{}:{}", ep.host, ep.port) });
            }
            match attempt(cfg, &ep, addr, &tls, resume).await {
                Ok(c) => return Ok(c),
                // Only transport failures move on to the next address.
                Err(e @ (ConnectError::Connect { .. } | ConnectError::Io(_))) => {
                    tracing::info!("{e}");
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(last_err.unwrap_or_else(|| ConnectError::Resolve {
        domain: cfg.jid.domain().to_owned(),
        reason: "no address found".into(),
    }))
}

/// The endpoints to try, in order: the explicit server, or DNS SRV records
/// (`_xmpps-client` and `_xmpp-client`, merged by priority), or the domain on 5222.
pub async fn endpoints(cfg: &AccountConfig) -> Result<Vec<Endpoint>, ConnectError> {
    if let Some((host, port)) = &cfg.server {
        return Ok(vec![Endpoint { host: host.clone(), port: *port, tls: cfg.tls }]);
    }
    let domain = cfg.jid.domain().to_owned();
    let fallback = vec![Endpoint { host: domain.clone(), port: 5222, tls: cfg.tls }];
    if domain == "localhost" || domain.parse::<std::net::IpAddr>().is_ok() {
        return Ok(fallback);
    }
    let resolver = match hickory_resolver::TokioResolver::builder_tokio() {
        Ok(b) => b.build(),
        Err(e) => {
            tracing::warn!("no DNS resolver configuration ({e}); trying {domain}:5222");
            return Ok(fallback);
        }
    };
    let mut records: Vec<(u16, u16, Endpoint)> = Vec::new();
    let services: &[(&str, TlsMode)] = match cfg.tls {
        TlsMode::Plaintext => &[("_xmpp-client._tcp", TlsMode::Plaintext)],
        TlsMode::Direct => &[("_xmpps-client._tcp", TlsMode::Direct)],
        TlsMode::StartTls => &[("_xmpps-client._tcp", TlsMode::Direct), ("_xmpp-client._tcp", TlsMode::StartTls)],
    };
    for (service, tls) in services {
        let name = format!("{service}.{domain}.");
        if let Ok(lookup) = resolver.srv_lookup(name).await {
            for srv in lookup.iter() {
                let host = srv.target().to_utf8();
                let host = host.trim_end_matches('.').to_owned();
                if host.is_empty() {
                    continue; // "." target: service explicitly not available
                }
                records.push((srv.priority(), u16::MAX - srv.weight(), Endpoint { host, port: srv.port(), tls: *tls }));
            }
        }
    }
    if records.is_empty() {
        return Ok(fallback);
    }
    // Lower priority first; within a priority, heavier weight first, direct TLS first.
    records.sort_by_key(|(p, w, e)| (*p, *w, e.tls != TlsMode::Direct));
    Ok(records.into_iter().map(|(_, _, e)| e).collect())
}

/// The TLS client configuration: system roots plus the optional extra CA file (see
/// [`crate::trust`]), no pins.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    Ok(tls_setup(ca_file, &[])?.0)
}

/// The TLS client configuration of an account: system roots, the CA file (its
/// authorities, or the server's own certificate) and the pinned fingerprints; with the
/// verifier, which tells what it refused.
pub fn tls_setup(
    ca_file: Option<&Path>,
    pinned: &[Fingerprint],
) -> Result<(Arc<rustls::ClientConfig>, Arc<TrustVerifier>), ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    let mut ca_certs = Vec::new();
    if let Some(path) = ca_file {
        let ca_err = |reason: String| ConnectError::CaFile { path: path.display().to_string(), reason };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert.clone()).map_err(|e| ca_err(e.to_string()))?;
            ca_certs.push(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_err = |reason: String| ConnectError::Tls { host: String::new(), reason };
    let settings = TrustSettings { ca_certs, pinned: pinned.to_vec() };
    let verifier =
        Arc::new(TrustVerifier::new(Arc::new(roots), provider.clone(), settings).map_err(|e| tls_err(e.to_string()))?);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    Ok((Arc::new(config), verifier))
}

/// The TLS configuration of one sign-in and its verifier.
#[derive(Debug, Clone)]
struct Tls {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<TrustVerifier>,
}

fn explain_tls(e: &io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnknownIssuer") {
        "the server's certificate is not signed by an authority this computer trusts (pass its CA with --ca-file)"
            .into()
    } else if text.contains("NotValidForName") {
        "the server's certificate is not valid for this domain".into()
    } else if text.contains("Expired") {
        "the server's certificate has expired".into()
    } else {
        text
    }
}

async fn start_tls(tcp: TcpStream, domain: &str, tls: &Tls, alpn: bool) -> Result<Transport, ConnectError> {
    let config = tls.config.clone();
    let name = ServerName::try_from(domain.to_owned())
        .map_err(|e| ConnectError::Tls { host: domain.to_owned(), reason: e.to_string() })?;
    let config = if alpn {
        // XEP-0368: direct TLS announces the "xmpp-client" protocol.
        let mut c = (*config).clone();
        c.alpn_protocols = vec![b"xmpp-client".to_vec()];
        Arc::new(c)
    } else {
        config
    };
    let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
        match tls.verifier.rejection() {
            Some(untrusted) => ConnectError::Untrusted(Box::new(untrusted)),
            None => ConnectError::Tls { host: domain.to_owned(), reason: explain_tls(&e) },
        }
    })?;
    let mut stream = stream;
    // Each stanza is written in one call and flushed: without a limit on rustls's
    // outgoing buffer, a stanza of up to 16 KiB becomes exactly one TLS record, so a
    // connection cut mid-write leaves the server a whole stanza or none of it (a
    // server cannot decrypt half a record). That matters for XEP-0198 resumption:
    // Prosody 0.12 feeds the resumed connection into the old connection's XML parser,
    // and a half stanza there would swallow everything after it. The buffer holds at
    // most the stanza being written, since every write is flushed.
    stream.get_mut().1.set_buffer_limit(None);
    Ok(Transport::Tls(Box::new(stream)))
}

async fn attempt(
    cfg: &AccountConfig,
    ep: &Endpoint,
    addr: SocketAddr,
    tls: &Tls,
    resume: &Resume,
) -> Result<Connected, ConnectError> {
    let target = format!("{}:{} ({addr})", ep.host, ep.port);
    tracing::info!("connecting to {target} ({:?})", ep.tls);
    let tcp =
        TcpStream::connect(addr).await.map_err(|source| ConnectError::Connect { target: target.clone(), source })?;
    tcp.set_nodelay(true)?;
    let domain = cfg.jid.domain().to_owned();
    let mut transport = match ep.tls {
        TlsMode::Direct => start_tls(tcp, &domain, tls, true).await?,
        TlsMode::StartTls | TlsMode::Plaintext => Transport::Plain(tcp),
    };
    let mut negotiator = Negotiator::new(cfg.jid.clone(), cfg.password.expose(), ep.tls)
        .require_scram(cfg.require_scram)
        .channel_binding(channel_binding(&transport))
        .resume(resume.clone());
    let mut parser = StreamParser::new(cfg.max_stanza_bytes);
    let open = |tls: bool| stream::open_stream(&domain, tls.then(|| cfg.jid.bare().to_string()).as_deref());
    write_raw(&mut transport, &open(ep.tls == TlsMode::Direct)).await?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = transport.read(&mut buf).await?;
        if n == 0 {
            return Err(NegotiationError::Closed.into());
        }
        parser.feed(&buf[..n]);
        loop {
            // Over a limit before sign-in is not a stranger's doing (only the server
            // speaks yet): it ends the stream like bad XML.
            let next = match parser.next_event() {
                Ok(Some(stream::StreamEvent::Dropped(d))) => Err(XmlError::Limit(d.limit)),
                other => other,
            };
            let ev = match next {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    // Tell the server why, end the stream, and report.
                    let bye = format!(
                        "{}{}",
                        stream::stream_error(e.condition(), Some(&e.to_string())),
                        stream::CLOSE_STREAM
                    );
                    let _ = write_raw(&mut transport, &bye).await;
                    let _ = transport.shutdown().await;
                    return Err(e.into());
                }
            };
            log_event(&ev);
            // A SCRAM challenge runs PBKDF2 (up to a million rounds): not on an async worker.
            let actions = if negotiator.is_expensive(&ev) {
                let (n, r) = tokio::task::spawn_blocking(move || {
                    let r = negotiator.handle(ev);
                    (negotiator, r)
                })
                .await
                .map_err(|e| NegotiationError::Unexpected(format!("the sign-in step was interrupted: {e}")))?;
                negotiator = n;
                r?
            } else {
                negotiator.handle(ev)?
            };
            let mut queue: std::collections::VecDeque<Action> = actions.into();
            while let Some(action) = queue.pop_front() {
                match action {
                    Action::Send(el) => write_element(&mut transport, &el).await?,
                    Action::StartTls => {
                        let Transport::Plain(tcp) = transport else {
                            return Err(NegotiationError::Unexpected("STARTTLS on a TLS stream".into()).into());
                        };
                        transport = start_tls(tcp, &domain, tls, false).await?;
                        queue.extend(negotiator.tls_established_with(channel_binding(&transport)));
                    }
                    Action::RestartStream => {
                        // Whatever was buffered belongs to the old stream.
                        parser.reset();
                        let tls = matches!(transport, Transport::Tls(_));
                        write_raw(&mut transport, &open(tls)).await?;
                    }
                    Action::Done(negotiated) => {
                        tracing::info!(
                            "signed in as {} ({}, TLS: {})",
                            negotiated.jid,
                            negotiated.mechanism,
                            negotiated.tls
                        );
                        return Ok(Connected { transport, parser, negotiated, peer_addr: addr });
                    }
                }
            }
        }
    }
}

/// The channel-binding data of a TLS transport: RFC 9266 `tls-exporter` (32 bytes
/// exported with the label "EXPORTER-Channel-Binding" and no context), under TLS 1.3
/// only (under TLS 1.2 the exporter is not safe without the extended master secret, and
/// rustls gives neither `tls-unique` nor, through the `sasl` crate, `tls-server-end-point`).
/// `None` means no -PLUS mechanism.
pub fn channel_binding(transport: &Transport) -> Option<ChannelBindingData> {
    let Transport::Tls(tls) = transport else { return None };
    let (_, conn) = tls.get_ref();
    if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    match conn.export_keying_material([0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None) {
        Ok(data) => Some(ChannelBindingData::TlsExporter(data.to_vec())),
        Err(e) => {
            tracing::warn!("no channel-binding data from TLS: {e}");
            None
        }
    }
}

/// Writes a stanza or nonza on the stream.
pub async fn write_element<W: AsyncWrite + Unpin>(w: &mut W, el: &Element) -> io::Result<()> {
    tracing::debug!(target: "skiff::xml", "SEND {}", redacted(el));
    let s = stream::write_stanza(el);
    w.write_all(s.as_bytes()).await?;
    w.flush().await
}

async fn write_raw(w: &mut Transport, s: &str) -> io::Result<()> {
    tracing::debug!(target: "skiff::xml", "SEND {s}");
    w.write_all(s.as_bytes()).await?;
    w.flush().await
}

fn log_event(ev: &stream::StreamEvent) {
    if tracing::enabled!(target: "skiff::xml", tracing::Level::DEBUG) {
        match ev {
            stream::StreamEvent::Stanza(el) => tracing::debug!(target: "skiff::xml", "RECV {}", redacted(el)),
            other => tracing::debug!(target: "skiff::xml", "RECV {other:?}"),
        }
    }
}

/// The element as text for logs, with SASL payloads (which carry password proofs)
/// replaced by `[redacted]`.
pub fn redacted(el: &Element) -> String {
    if el.ns == ns::SASL && !el.text().is_empty() {
        let mut copy = Element::new(el.name.clone(), el.ns.clone());
        copy.attrs = el.attrs.clone();
        copy.push_text("[redacted]");
        return copy.to_xml();
    }
    el.to_xml()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_is_redacted_in_logs() {
        let auth = Element::new("auth", ns::SASL).with_attr("mechanism", "PLAIN").with_text("AHVzZXIAcGVuY2ls");
        assert_eq!(
            redacted(&auth),
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>[redacted]</auth>"
        );
        let msg = Element::new("message", ns::CLIENT).with_text("x");
        assert_eq!(redacted(&msg), msg.to_xml());
    }

    #[tokio::test]
    async fn explicit_server_and_localhost_skip_dns() {
        let mut cfg = AccountConfig::new("a@localhost".parse().unwrap(), crate::Secret::new("p"));
        assert_eq!(
            endpoints(&cfg).await.unwrap(),
            vec![Endpoint { host: "localhost".into(), port: 5222, tls: TlsMode::StartTls }]
        );
        cfg.server = Some(("127.0.0.1".into(), 15222));
        cfg.tls = TlsMode::Direct;
        assert_eq!(
            endpoints(&cfg).await.unwrap(),
            vec![Endpoint { host: "127.0.0.1".into(), port: 15222, tls: TlsMode::Direct }]
        );
    }

    #[test]
    fn bad_ca_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("skiff-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not a certificate").unwrap();
        let err = tls_config(Some(&f)).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = tls_config(Some(&dir.join("missing.pem"))).unwrap_err();
        assert!(matches!(err, ConnectError::CaFile { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
