//! Which server certificates are trusted, and how a refused one is shown to the user.
//!
//! The rules, in order (the first that holds decides):
//! 1. A chain to the system's roots or to a CA of the account's CA file, valid for the
//!    server's domain and in its validity period (rustls/webpki): trusted.
//! 2. The certificate is one of the CA file's certificates itself, valid for the domain
//!    and in its validity period: trusted. Self-signed server certificates as
//!    `openssl req -x509` and `prosodyctl cert generate` make them carry
//!    `basicConstraints CA:TRUE`, which webpki refuses as an end entity
//!    (`CaUsedAsEndEntity`) even as a trust anchor; OpenSSL-based clients accept the
//!    certificate the user configured, and so does Skiff.
//! 3. Its SHA-256 fingerprint is one the user pinned for this account (after seeing the
//!    certificate, or with `--trust-fingerprint`): trusted, whatever else is wrong with
//!    it (that is what pinning means; the user saw why it was not trusted).
//! 4. Otherwise it is refused, and [`TrustVerifier::rejection`] tells what was seen:
//!    the certificate ([`CertificateInfo`]), why it is not trusted, and whether it
//!    replaces a pinned one ([`Untrusted::changed`]): then the user is warned, since
//!    the server may be impersonated.
//!
//! The handshake signatures are always checked with the certificate's key.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The SHA-256 fingerprint of a certificate (of its DER encoding), as browsers and
/// `openssl x509 -fingerprint -sha256` show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// `AB:CD:…` (32 pairs), without the `SHA256:` prefix.
    pub fn hex_pairs(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }
}

/// `SHA256:AB:CD:…`
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", self.hex_pairs())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a SHA-256 fingerprint (64 hexadecimal digits, colons allowed, e.g. SHA256:AB:CD:…)")]
pub struct BadFingerprint(String);

/// Accepts `SHA256:AB:CD:…`, `sha256/abcd…`, `AB:CD:…`, `abcd…` and `AB CD …`
/// (64 hexadecimal digits in any case, with colons or spaces between pairs).
impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Fingerprint, BadFingerprint> {
        let bad = || BadFingerprint(s.chars().take(120).collect());
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let body = ["sha256:", "sha-256:", "sha256/", "sha-256/", "sha256 "]
            .iter()
            .find_map(|p| lower.strip_prefix(p))
            .unwrap_or(&lower);
        let digits: String = body.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        if digits.len() != 64 {
            return Err(bad());
        }
        let bytes = hex::decode(&digits).map_err(|_| bad())?;
        Ok(Fingerprint(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What the user is shown of a server certificate before trusting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CertificateInfo {
    /// The subject's distinguished name, e.g. `CN=example.org`.
    pub subject: String,
    /// The issuer's distinguished name (the subject again when self-signed).
    pub issuer: String,
    /// Issued by itself (no authority vouches for it).
    pub self_signed: bool,
    /// Validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The DNS names it is valid for (subjectAltName).
    pub names: Vec<String>,
    /// `SHA256:AB:CD:…`
    pub fingerprint: String,
}

impl CertificateInfo {
    /// Reads a DER certificate; `None` when it does not parse as X.509 (the
    /// fingerprint is all there is to show then).
    pub fn parse(der: &[u8]) -> Option<CertificateInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            names,
            fingerprint: Fingerprint::of(der).to_string(),
        })
    }

    /// Like [`CertificateInfo::parse`], falling back to the fingerprint alone.
    pub fn of(der: &[u8]) -> CertificateInfo {
        CertificateInfo::parse(der).unwrap_or_else(|| CertificateInfo {
            subject: String::new(),
            issuer: String::new(),
            self_signed: false,
            not_before: 0,
            not_after: 0,
            names: Vec::new(),
            fingerprint: Fingerprint::of(der).to_string(),
        })
    }
}

/// Why a certificate is not trusted, for the UI to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum UntrustedReason {
    /// Issued by itself, and not configured (CA file) or pinned.
    SelfSigned,
    /// Signed by an authority this computer does not trust.
    UnknownIssuer,
    /// Not valid for the server's domain.
    WrongName,
    Expired,
    NotYetValid,
    Revoked,
    /// Anything else webpki refuses (bad encoding, unsupported algorithm, usage).
    Invalid,
}

impl UntrustedReason {
    pub fn describe(self) -> &'static str {
        match self {
            UntrustedReason::SelfSigned => "it is self-signed: no authority this computer trusts vouches for it",
            UntrustedReason::UnknownIssuer => "it is not signed by an authority this computer trusts",
            UntrustedReason::WrongName => "it is not valid for this server's domain",
            UntrustedReason::Expired => "it has expired",
            UntrustedReason::NotYetValid => "it is not valid yet",
            UntrustedReason::Revoked => "it has been revoked",
            UntrustedReason::Invalid => "it is not a valid server certificate",
        }
    }
}

/// A refused server certificate: what to show, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Untrusted {
    /// The domain the certificate was checked for.
    pub host: String,
    pub certificate: CertificateInfo,
    pub reason: UntrustedReason,
    /// The account had pinned another certificate: the server's certificate changed
    /// since the user trusted it (a new certificate, or someone in the middle).
    pub changed: bool,
    /// The technical error, for the log and the details view.
    pub detail: String,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changed {
            write!(
                f,
                "the certificate of {} is not the one you trusted before (the server changed it, or someone is \
                 impersonating it); {}; its SHA-256 fingerprint is {}",
                self.host,
                self.reason.describe(),
                self.certificate.fingerprint
            )
        } else {
            write!(
                f,
                "the certificate of {} is not trusted: {}; its SHA-256 fingerprint is {}",
                self.host,
                self.reason.describe(),
                self.certificate.fingerprint
            )
        }
    }
}

/// What a connection trusts beside the system's roots.
#[derive(Debug, Clone, Default)]
pub struct TrustSettings {
    /// Certificates of the CA file: authorities, or the server's own certificate.
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// Fingerprints the user pinned for this account.
    pub pinned: Vec<Fingerprint>,
}

/// The rustls verifier of the rules above; remembers the last certificate it refused.
#[derive(Debug)]
pub struct TrustVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    ca_certs: Vec<CertificateDer<'static>>,
    pinned: Vec<Fingerprint>,
    rejected: Mutex<Option<Untrusted>>,
}

impl TrustVerifier {
    pub fn new(
        roots: Arc<rustls::RootCertStore>,
        provider: Arc<rustls::crypto::CryptoProvider>,
        settings: TrustSettings,
    ) -> Result<TrustVerifier, rustls::client::VerifierBuilderError> {
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
        Ok(TrustVerifier { webpki, ca_certs: settings.ca_certs, pinned: settings.pinned, rejected: Mutex::new(None) })
    }

    /// The certificate refused last (taken: the next call gives `None`).
    pub fn rejection(&self) -> Option<Untrusted> {
        self.rejected.lock().ok()?.take()
    }

    /// Rule 2: one of the CA file's certificates presented as the server's own.
    fn configured_self(&self, end_entity: &CertificateDer<'_>, name: &ServerName<'_>, now: UnixTime) -> bool {
        if !self.ca_certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return false;
        }
        let Ok(parsed) = rustls::server::ParsedCertificate::try_from(end_entity) else { return false };
        if rustls::client::verify_server_name(&parsed, name).is_err() {
            return false;
        }
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity.as_ref()) else { return false };
        let now = now.as_secs() as i64;
        cert.validity().not_before.timestamp() <= now && now <= cert.validity().not_after.timestamp()
    }
}

fn reason_of(e: &rustls::Error, self_signed: bool) -> UntrustedReason {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer if self_signed => UntrustedReason::SelfSigned,
            CertificateError::UnknownIssuer => UntrustedReason::UnknownIssuer,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                UntrustedReason::WrongName
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => UntrustedReason::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => UntrustedReason::NotYetValid,
            CertificateError::Revoked => UntrustedReason::Revoked,
            // A CA certificate used as the server's own: a self-signed one as admins make them.
            CertificateError::Other(o) if self_signed && format!("{o:?}").contains("CaUsedAsEndEntity") => {
                UntrustedReason::SelfSigned
            }
            _ if self_signed => UntrustedReason::SelfSigned,
            _ => UntrustedReason::Invalid,
        },
        _ => UntrustedReason::Invalid,
    }
}

impl ServerCertVerifier for TrustVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let err = match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(ok) => return Ok(ok),
            Err(e) => e,
        };
        if self.configured_self(end_entity, server_name, now) {
            return Ok(ServerCertVerified::assertion());
        }
        let fingerprint = Fingerprint::of(end_entity.as_ref());
        if self.pinned.contains(&fingerprint) {
            tracing::info!("server certificate {fingerprint} trusted: pinned for this account ({err})");
            return Ok(ServerCertVerified::assertion());
        }
        let certificate = CertificateInfo::of(end_entity.as_ref());
        let untrusted = Untrusted {
            host: server_name.to_str().into_owned(),
            reason: reason_of(&err, certificate.self_signed),
            certificate,
            changed: !self.pinned.is_empty(),
            detail: err.to_string(),
        };
        tracing::info!("server certificate refused: {untrusted}");
        if let Ok(mut slot) = self.rejected.lock() {
            *slot = Some(untrusted);
        }
        Err(err)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_usual_spellings() {
        let fp = Fingerprint::of(b"certificate");
        let pairs = fp.hex_pairs();
        for s in [
            fp.to_string(),
            pairs.clone(),
            pairs.to_lowercase(),
            pairs.replace(':', ""),
            pairs.replace(':', " "),
            format!("sha256/{}", pairs.replace(':', "").to_lowercase()),
            format!("  SHA-256:{pairs}  "),
        ] {
            assert_eq!(s.parse::<Fingerprint>(), Ok(fp), "{s}");
        }
        assert!(fp.to_string().starts_with("SHA256:") && fp.to_string().len() == 7 + 95);
        for bad in ["", "SHA256:", "AB:CD", &pairs[3..], &format!("{pairs}:00"), &pairs.replace('A', "G")] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn certificate_details_are_read() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["example.org".into(), "upload.example.org".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "example.org");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let info = CertificateInfo::of(cert.der());
        assert_eq!(info.subject, "CN=example.org");
        assert!(info.self_signed);
        assert_eq!(info.names, ["example.org", "upload.example.org"]);
        assert!(info.not_before < info.not_after);
        assert_eq!(info.fingerprint, Fingerprint::of(cert.der()).to_string());
        let junk = CertificateInfo::of(b"not a certificate");
        assert_eq!((junk.subject.as_str(), junk.fingerprint), ("", Fingerprint::of(b"not a certificate").to_string()));
    }
}
