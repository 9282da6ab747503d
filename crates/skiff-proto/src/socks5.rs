//! The SOCKS5 handshake of XEP-0065: SOCKS5 Bytestreams (the RFC 1928 subset it uses).
//!
//! Sans-IO, both roles. The client (we connect to a streamhost) sends `05 01 00`, reads
//! the method selection, sends CONNECT to DST.ADDR (the hash from
//! [`crate::bytestreams::dst_addr`], ATYP 3, port 0) and reads the reply. The server
//! (our own streamhost listener) does the mirror image.
//!
//! The parse functions take the bytes received so far: `Ok(None)` means "incomplete,
//! read more", `Ok(Some((value, consumed)))` a complete message. Bytes that can already
//! be judged wrong (a bad version byte, a failure reply code) fail at once, without
//! waiting for the rest. [`ClientHandshake`] and [`ServerHandshake`] drive them.
//!
//! BND.ADDR: the XEP says the reply MUST echo DST.ADDR/DST.PORT. Some streamhosts
//! answer 0.0.0.0 or their own address instead. The streamhost is the one that checks
//! the hash, so a wrong echo costs us nothing: it is tolerated and reported
//! ([`Echo`]) for the log, never an error.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const VERSION: u8 = 5;
/// "No authentication required", the only method XEP-0065 uses.
pub const METHOD_NO_AUTH: u8 = 0x00;
/// "No acceptable methods".
pub const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;
pub const CMD_CONNECT: u8 = 1;
pub const ATYP_IPV4: u8 = 1;
pub const ATYP_DOMAIN: u8 = 3;
pub const ATYP_IPV6: u8 = 4;

/// Reply codes (RFC 1928 section 6).
pub const REP_SUCCEEDED: u8 = 0;
pub const REP_GENERAL_FAILURE: u8 = 1;
pub const REP_NOT_ALLOWED: u8 = 2;
pub const REP_NETWORK_UNREACHABLE: u8 = 3;
pub const REP_HOST_UNREACHABLE: u8 = 4;
pub const REP_CONNECTION_REFUSED: u8 = 5;
pub const REP_TTL_EXPIRED: u8 = 6;
pub const REP_COMMAND_NOT_SUPPORTED: u8 = 7;
pub const REP_ATYP_NOT_SUPPORTED: u8 = 8;

/// What a reply code means, in words.
pub fn reply_meaning(code: u8) -> &'static str {
    match code {
        REP_SUCCEEDED => "succeeded",
        REP_GENERAL_FAILURE => "general failure",
        REP_NOT_ALLOWED => "connection not allowed",
        REP_NETWORK_UNREACHABLE => "network unreachable",
        REP_HOST_UNREACHABLE => "host unreachable (no such session on the streamhost)",
        REP_CONNECTION_REFUSED => "connection refused",
        REP_TTL_EXPIRED => "TTL expired",
        REP_COMMAND_NOT_SUPPORTED => "command not supported",
        REP_ATYP_NOT_SUPPORTED => "address type not supported",
        _ => "unknown code",
    }
}

/// Everything that can go wrong in the handshake, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Socks5Error {
    #[error("the streamhost does not speak SOCKS5 (version byte 0x{0:02x})")]
    NotSocks5(u8),
    #[error("the streamhost requires authentication, which XEP-0065 does not use (it accepts no method we offered)")]
    NoAcceptableMethods,
    #[error("the streamhost requires authentication (method 0x{0:02x}), which XEP-0065 does not use")]
    AuthRequired(u8),
    #[error("the streamhost refused the connection (reply code {code}: {})", reply_meaning(*code))]
    Refused { code: u8 },
    #[error("the SOCKS5 message uses an unknown address type ({0})")]
    UnsupportedAddressType(u8),
    #[error("a peer connected to our streamhost sent a DST.ADDR that is not ASCII")]
    BadDomain,
    #[error("a peer connected to our streamhost without speaking SOCKS5 (version byte 0x{0:02x})")]
    PeerNotSocks5(u8),
    #[error("a peer connected to our streamhost but does not offer 'no authentication'")]
    PeerWantsAuth,
    #[error("a peer connected to our streamhost asked for SOCKS5 command {0}; only CONNECT is supported")]
    UnsupportedCommand(u8),
    #[error("a peer connected to our streamhost sent an empty DST.ADDR")]
    EmptyDomain,
    #[error("wrong DST.ADDR: the peer asked for '{got}' but the transfer's hash is '{expected}' (the session id or the JIDs differ)")]
    WrongDstAddr { expected: String, got: String },
    #[error("internal error: the SOCKS5 handshake is already over")]
    Finished,
}

/// An address as SOCKS5 carries it (ATYP 1, 3 or 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    V4(Ipv4Addr),
    Domain(String),
    V6(Ipv6Addr),
}

impl Addr {
    /// IPv4 0.0.0.0, the address failure replies carry.
    pub const UNSPECIFIED: Addr = Addr::V4(Ipv4Addr::UNSPECIFIED);

    /// 0.0.0.0, `::` or an empty domain.
    pub fn is_unspecified(&self) -> bool {
        match self {
            Addr::V4(a) => a.is_unspecified(),
            Addr::V6(a) => a.is_unspecified(),
            Addr::Domain(d) => d.is_empty(),
        }
    }

    /// Appends ATYP and the address.
    ///
    /// # Panics
    /// On a domain longer than 255 bytes (a DST.ADDR is always 40).
    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Addr::V4(a) => {
                out.push(ATYP_IPV4);
                out.extend_from_slice(&a.octets());
            }
            Addr::Domain(d) => {
                let len = u8::try_from(d.len()).expect("a SOCKS5 domain name is at most 255 bytes");
                out.push(ATYP_DOMAIN);
                out.push(len);
                out.extend_from_slice(d.as_bytes());
            }
            Addr::V6(a) => {
                out.push(ATYP_IPV6);
                out.extend_from_slice(&a.octets());
            }
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::V4(a) => a.fmt(f),
            Addr::Domain(d) => f.write_str(d),
            Addr::V6(a) => a.fmt(f),
        }
    }
}

/// Parses `ATYP ADDR PORT` at the start of `buf`: `(addr, port, consumed)`.
fn parse_addr_port(buf: &[u8]) -> Result<Option<(Addr, u16, usize)>, Socks5Error> {
    let Some(&atyp) = buf.first() else { return Ok(None) };
    let (addr_start, addr_len) = match atyp {
        ATYP_IPV4 => (1, 4),
        ATYP_IPV6 => (1, 16),
        ATYP_DOMAIN => match buf.get(1) {
            Some(&n) => (2, usize::from(n)),
            None => return Ok(None),
        },
        other => return Err(Socks5Error::UnsupportedAddressType(other)),
    };
    let end = addr_start + addr_len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    let raw = &buf[addr_start..end];
    let addr = match atyp {
        ATYP_IPV4 => Addr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(raw).expect("4 bytes"))),
        ATYP_IPV6 => Addr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(raw).expect("16 bytes"))),
        // Not ASCII cannot be a DST.ADDR; kept (lossily) so a reply's odd BND.ADDR is
        // reported by `check_echo`, and refused in a request.
        _ => Addr::Domain(String::from_utf8_lossy(raw).into_owned()),
    };
    let port = u16::from_be_bytes([buf[end], buf[end + 1]]);
    Ok(Some((addr, port, end + 2)))
}

// ---------------------------------------------------------------- client side

/// The greeting: version 5, one method, "no authentication".
pub fn client_greeting() -> [u8; 3] {
    [VERSION, 1, METHOD_NO_AUTH]
}

/// Parses the server's method selection (must be `05 00`): `Some(consumed)` when
/// complete.
pub fn parse_method_selection(buf: &[u8]) -> Result<Option<usize>, Socks5Error> {
    match *buf {
        [] => Ok(None),
        [v, ..] if v != VERSION => Err(Socks5Error::NotSocks5(v)),
        [_] => Ok(None),
        [_, METHOD_NO_AUTH, ..] => Ok(Some(2)),
        [_, METHOD_NONE_ACCEPTABLE, ..] => Err(Socks5Error::NoAcceptableMethods),
        [_, m, ..] => Err(Socks5Error::AuthRequired(m)),
    }
}

/// CONNECT to `dst_addr` as a domain name, port 0: `05 01 00 03 len addr 00 00`.
///
/// # Panics
/// When `dst_addr` is longer than 255 bytes (a DST.ADDR hash is 40).
pub fn connect_request(dst_addr: &str) -> Vec<u8> {
    let mut out = vec![VERSION, CMD_CONNECT, 0];
    Addr::Domain(dst_addr.to_owned()).encode_into(&mut out);
    out.extend_from_slice(&[0, 0]);
    out
}

/// A successful reply (failures are [`Socks5Error::Refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub bound_addr: Addr,
    pub port: u16,
}

/// How a reply's BND.ADDR/BND.PORT compares with what we asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// DST.ADDR and port 0 echoed, as the XEP says.
    Exact,
    /// 0.0.0.0, `::` or an empty domain: a lazy streamhost. Tolerated.
    Unspecified,
    /// Something else (another address, another port). Tolerated; worth a log line.
    Mismatch,
}

impl Reply {
    /// Compares BND.ADDR/BND.PORT with the DST.ADDR we sent (case-insensitively).
    pub fn check_echo(&self, dst_addr: &str) -> Echo {
        match &self.bound_addr {
            Addr::Domain(d) if d.eq_ignore_ascii_case(dst_addr) && self.port == 0 => Echo::Exact,
            a if a.is_unspecified() => Echo::Unspecified,
            _ => Echo::Mismatch,
        }
    }
}

/// Parses the server's reply to CONNECT. A non-zero reply code fails as soon as it is
/// seen.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, Socks5Error> {
    match *buf {
        [v, ..] if v != VERSION => return Err(Socks5Error::NotSocks5(v)),
        [_, code, ..] if code != REP_SUCCEEDED => return Err(Socks5Error::Refused { code }),
        [_, _, _, ..] => {}
        _ => return Ok(None),
    }
    // buf[2] is RSV: ignored, whatever its value.
    Ok(parse_addr_port(&buf[3..])?.map(|(bound_addr, port, n)| (Reply { bound_addr, port }, 3 + n)))
}

/// What to do next, client side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientStep {
    /// Read more bytes.
    NeedMore,
    /// Write these bytes (alone, in their own write), then read more.
    Send(Vec<u8>),
    /// The bytestream is open. `leftover` is data that followed the reply.
    Done { reply: Reply, echo: Echo, leftover: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    AwaitMethod,
    AwaitReply,
    Done,
}

/// The client handshake. Write [`ClientHandshake::initial_bytes`], then feed what
/// arrives to [`ClientHandshake::on_bytes`]. CONNECT is sent only after the method
/// selection arrives, never pipelined with the greeting (Prosody's proxy65 wants each
/// in its own write).
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    dst_addr: String,
    state: ClientState,
    buf: Vec<u8>,
}

impl ClientHandshake {
    /// # Panics
    /// When `dst_addr` is longer than 255 bytes (a DST.ADDR hash is 40).
    pub fn new(dst_addr: impl Into<String>) -> Self {
        let dst_addr = dst_addr.into();
        assert!(dst_addr.len() <= 255, "a SOCKS5 domain name is at most 255 bytes");
        ClientHandshake { dst_addr, state: ClientState::AwaitMethod, buf: Vec::new() }
    }

    pub fn initial_bytes(&self) -> [u8; 3] {
        client_greeting()
    }

    pub fn on_bytes(&mut self, data: &[u8]) -> Result<ClientStep, Socks5Error> {
        self.buf.extend_from_slice(data);
        match self.state {
            ClientState::AwaitMethod => match parse_method_selection(&self.buf)? {
                None => Ok(ClientStep::NeedMore),
                Some(n) => {
                    self.buf.drain(..n);
                    self.state = ClientState::AwaitReply;
                    Ok(ClientStep::Send(connect_request(&self.dst_addr)))
                }
            },
            ClientState::AwaitReply => match parse_reply(&self.buf)? {
                None => Ok(ClientStep::NeedMore),
                Some((reply, n)) => {
                    self.state = ClientState::Done;
                    let leftover = self.buf.split_off(n);
                    self.buf = Vec::new();
                    let echo = reply.check_echo(&self.dst_addr);
                    Ok(ClientStep::Done { reply, echo, leftover })
                }
            },
            ClientState::Done => Err(Socks5Error::Finished),
        }
    }
}

// ---------------------------------------------------------------- server side

/// The client's greeting: the authentication methods it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub methods: Vec<u8>,
}

/// Parses a client's greeting. Fails with [`Socks5Error::PeerWantsAuth`] (answer
/// [`method_selection_none`], then close) when "no authentication" is not offered.
pub fn parse_greeting(buf: &[u8]) -> Result<Option<(Greeting, usize)>, Socks5Error> {
    let n = match *buf {
        [v, ..] if v != VERSION => return Err(Socks5Error::PeerNotSocks5(v)),
        [_, n, ..] => usize::from(n),
        _ => return Ok(None),
    };
    let Some(methods) = buf.get(2..2 + n) else { return Ok(None) };
    if !methods.contains(&METHOD_NO_AUTH) {
        return Err(Socks5Error::PeerWantsAuth);
    }
    Ok(Some((Greeting { methods: methods.to_vec() }, 2 + n)))
}

/// `05 00`: "no authentication".
pub fn method_selection_no_auth() -> [u8; 2] {
    [VERSION, METHOD_NO_AUTH]
}

/// `05 FF`: none of the offered methods is acceptable.
pub fn method_selection_none() -> [u8; 2] {
    [VERSION, METHOD_NONE_ACCEPTABLE]
}

/// A client's request. XEP-0065 uses CONNECT to a domain (the hash), port 0; other
/// commands and address types parse, and the caller rejects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub cmd: u8,
    pub addr: Addr,
    pub port: u16,
}

impl ConnectRequest {
    /// The requested domain (the DST.ADDR hash), if the address is a domain.
    pub fn dst_addr(&self) -> Option<&str> {
        match &self.addr {
            Addr::Domain(d) => Some(d),
            _ => None,
        }
    }

    /// Checks the request against the expected DST.ADDR (case-insensitively; the port
    /// is not checked).
    pub fn check_dst(&self, expected: &str) -> Result<(), Socks5Error> {
        match self.dst_addr() {
            Some(d) if d.eq_ignore_ascii_case(expected) => Ok(()),
            _ => Err(Socks5Error::WrongDstAddr { expected: expected.to_owned(), got: self.addr.to_string() }),
        }
    }

    /// The reply with this code, echoing the request's address and port.
    pub fn reply(&self, code: u8) -> Vec<u8> {
        reply(code, &self.addr, self.port)
    }
}

/// Parses a client's request.
pub fn parse_connect_request(buf: &[u8]) -> Result<Option<(ConnectRequest, usize)>, Socks5Error> {
    let cmd = match *buf {
        [v, ..] if v != VERSION => return Err(Socks5Error::PeerNotSocks5(v)),
        [_, cmd, _, ..] => cmd,
        _ => return Ok(None),
    };
    if buf.get(3..5) == Some(&[ATYP_DOMAIN, 0]) {
        return Err(Socks5Error::EmptyDomain);
    }
    match parse_addr_port(&buf[3..])? {
        None => Ok(None),
        Some((Addr::Domain(d), ..)) if !d.is_ascii() => Err(Socks5Error::BadDomain),
        Some((addr, port, n)) => Ok(Some((ConnectRequest { cmd, addr, port }, 3 + n))),
    }
}

/// A reply: `05 code 00 ATYP addr port`.
///
/// # Panics
/// On a domain longer than 255 bytes.
pub fn reply(code: u8, addr: &Addr, port: u16) -> Vec<u8> {
    let mut out = vec![VERSION, code, 0];
    addr.encode_into(&mut out);
    out.extend_from_slice(&port.to_be_bytes());
    out
}

/// What to do next, server side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Write `send` (may be empty), then read more.
    NeedMore { send: Vec<u8> },
    /// Write `send` (the method selection, when the greeting and the request came
    /// together; else empty), then decide: check `request.dst_addr()` and answer
    /// `request.reply(REP_SUCCEEDED)` or a failure code. `leftover` followed the request.
    Request { send: Vec<u8>, request: ConnectRequest, leftover: Vec<u8> },
}

/// The handshake failed: write `send` (may be empty), then close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ServerFailure {
    pub send: Vec<u8>,
    pub error: Socks5Error,
}

impl From<Socks5Error> for ServerFailure {
    fn from(error: Socks5Error) -> Self {
        let send = match error {
            Socks5Error::PeerWantsAuth => method_selection_none().to_vec(),
            Socks5Error::UnsupportedAddressType(_) => reply(REP_ATYP_NOT_SUPPORTED, &Addr::UNSPECIFIED, 0),
            Socks5Error::EmptyDomain | Socks5Error::BadDomain => reply(REP_GENERAL_FAILURE, &Addr::UNSPECIFIED, 0),
            _ => Vec::new(),
        };
        ServerFailure { send, error }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    AwaitGreeting,
    AwaitRequest,
    Done,
}

/// The server handshake (our streamhost): feed what arrives to
/// [`ServerHandshake::on_bytes`].
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    state: ServerState,
    buf: Vec<u8>,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    pub fn new() -> Self {
        ServerHandshake { state: ServerState::AwaitGreeting, buf: Vec::new() }
    }

    pub fn on_bytes(&mut self, data: &[u8]) -> Result<ServerStep, ServerFailure> {
        self.buf.extend_from_slice(data);
        let mut send = Vec::new();
        if self.state == ServerState::AwaitGreeting {
            match parse_greeting(&self.buf)? {
                None => return Ok(ServerStep::NeedMore { send }),
                Some((_, n)) => {
                    self.buf.drain(..n);
                    self.state = ServerState::AwaitRequest;
                    send.extend_from_slice(&method_selection_no_auth());
                }
            }
        }
        if self.state != ServerState::AwaitRequest {
            return Err(Socks5Error::Finished.into());
        }
        match parse_connect_request(&self.buf) {
            Ok(None) => Ok(ServerStep::NeedMore { send }),
            Ok(Some((request, n))) => {
                self.state = ServerState::Done;
                let leftover = self.buf.split_off(n);
                self.buf = Vec::new();
                if request.cmd != CMD_CONNECT {
                    send.extend(request.reply(REP_COMMAND_NOT_SUPPORTED));
                    return Err(ServerFailure { send, error: Socks5Error::UnsupportedCommand(request.cmd) });
                }
                Ok(ServerStep::Request { send, request, leftover })
            }
            Err(e) => {
                let mut failure = ServerFailure::from(e);
                send.append(&mut failure.send);
                failure.send = send;
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "306ac621fa1ce6d8283436298bda2cd71113feef";

    fn domain_reply(code: u8, d: &str) -> Vec<u8> {
        reply(code, &Addr::Domain(d.into()), 0)
    }

    #[test]
    fn client_bytes() {
        assert_eq!(client_greeting(), [5, 1, 0]);
        let c = connect_request(HASH);
        assert_eq!(c.len(), 47);
        assert_eq!(&c[..5], &[5, 1, 0, 3, 40]);
        assert_eq!(&c[5..45], HASH.as_bytes());
        assert_eq!(&c[45..], &[0, 0]);
    }

    #[test]
    #[should_panic(expected = "at most 255 bytes")]
    fn oversize_domain_panics() {
        connect_request(&"a".repeat(256));
    }

    #[test]
    fn method_selection() {
        assert_eq!(parse_method_selection(&[]), Ok(None));
        assert_eq!(parse_method_selection(&[5]), Ok(None));
        assert_eq!(parse_method_selection(&[5, 0]), Ok(Some(2)));
        assert_eq!(parse_method_selection(&[5, 0, 9]), Ok(Some(2)));
        assert_eq!(parse_method_selection(&[5, 0xff]), Err(Socks5Error::NoAcceptableMethods));
        assert_eq!(parse_method_selection(&[5, 2]), Err(Socks5Error::AuthRequired(2)));
        assert_eq!(parse_method_selection(b"H"), Err(Socks5Error::NotSocks5(b'H')));
        assert_eq!(parse_method_selection(&[4, 0]), Err(Socks5Error::NotSocks5(4)));
        assert_eq!(
            Socks5Error::NotSocks5(b'H').to_string(),
            "the streamhost does not speak SOCKS5 (version byte 0x48)"
        );
        assert!(Socks5Error::AuthRequired(2).to_string().starts_with("the streamhost requires authentication"));
    }

    #[test]
    fn replies() {
        let r = domain_reply(0, HASH);
        assert_eq!(r.len(), 47);
        let (rd, n) = parse_reply(&r).unwrap().unwrap();
        assert_eq!(n, 47);
        assert_eq!(rd, Reply { bound_addr: Addr::Domain(HASH.into()), port: 0 });
        assert_eq!(rd.check_echo(HASH), Echo::Exact);
        assert_eq!(rd.check_echo(&HASH.to_uppercase()), Echo::Exact);
        for i in 0..r.len() {
            assert_eq!(parse_reply(&r[..i]), Ok(None), "prefix {i}");
        }
        // IPv4 and IPv6 bound addresses.
        let v4 = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let (r4, n) = parse_reply(&v4).unwrap().unwrap();
        assert_eq!((r4.check_echo(HASH), n), (Echo::Unspecified, 10));
        let v6 = reply(0, &Addr::V6(Ipv6Addr::LOCALHOST), 7777);
        assert_eq!(v6.len(), 22);
        let (r6, _) = parse_reply(&v6).unwrap().unwrap();
        assert_eq!((r6.bound_addr.clone(), r6.port), (Addr::V6(Ipv6Addr::LOCALHOST), 7777));
        assert_eq!(r6.check_echo(HASH), Echo::Mismatch);
        assert_eq!(parse_reply(&domain_reply(0, "other")).unwrap().unwrap().0.check_echo(HASH), Echo::Mismatch);
        assert_eq!(parse_reply(&domain_reply(0, "")).unwrap().unwrap().0.check_echo(HASH), Echo::Unspecified);
    }

    #[test]
    fn reply_errors() {
        assert_eq!(parse_reply(&[5, 5]), Err(Socks5Error::Refused { code: 5 }));
        assert_eq!(
            Socks5Error::Refused { code: 5 }.to_string(),
            "the streamhost refused the connection (reply code 5: connection refused)"
        );
        assert_eq!(parse_reply(b"HTTP/1.1"), Err(Socks5Error::NotSocks5(b'H')));
        assert_eq!(parse_reply(&[5, 0, 0, 9, 0, 0]), Err(Socks5Error::UnsupportedAddressType(9)));
        // A bound domain that is not ASCII is odd but tolerated, like any wrong echo.
        let (odd, n) = parse_reply(&[5, 0, 0, 3, 1, 0xe9, 0, 0]).unwrap().unwrap();
        assert_eq!((odd.check_echo(HASH), n), (Echo::Mismatch, 8));
    }

    /// Runs a client against the server's bytes `input`, split at `cut`. Returns what
    /// it sent and its last step; bytes not fed after `Done` are appended to `leftover`
    /// (the caller would read them as stream data).
    fn run_client(input: &[u8], cut: usize) -> (Vec<Vec<u8>>, Result<ClientStep, Socks5Error>) {
        let mut c = ClientHandshake::new(HASH);
        let mut sent = vec![c.initial_bytes().to_vec()];
        let mut last = Ok(ClientStep::NeedMore);
        let chunks = [&input[..cut], &input[cut..]];
        for (i, chunk) in chunks.iter().enumerate() {
            // A chunk may complete the method selection and start the reply.
            let mut data = *chunk;
            loop {
                last = c.on_bytes(data);
                data = &[];
                match &last {
                    Ok(ClientStep::Send(b)) => sent.push(b.clone()),
                    _ => break,
                }
            }
            if let Ok(ClientStep::Done { leftover, .. }) = &mut last {
                chunks[i + 1..].iter().for_each(|rest| leftover.extend_from_slice(rest));
            }
            if !matches!(last, Ok(ClientStep::NeedMore)) {
                break;
            }
        }
        (sent, last)
    }

    #[test]
    fn client_handshake_at_every_split() {
        let mut input = method_selection_no_auth().to_vec();
        input.extend(domain_reply(0, HASH));
        input.extend_from_slice(b"data");
        for cut in 0..=input.len() {
            let (sent, last) = run_client(&input, cut);
            assert_eq!(sent, vec![vec![5, 1, 0], connect_request(HASH)], "cut {cut}");
            let Ok(ClientStep::Done { reply, echo, leftover }) = last else { panic!("cut {cut}: {last:?}") };
            assert_eq!(reply.bound_addr, Addr::Domain(HASH.into()));
            assert_eq!(echo, Echo::Exact);
            assert_eq!(leftover, b"data", "cut {cut}");
        }
    }

    #[test]
    fn client_handshake_failures() {
        let mut c = ClientHandshake::new(HASH);
        assert_eq!(c.on_bytes(&[5, 2]), Err(Socks5Error::AuthRequired(2)));
        let mut c = ClientHandshake::new(HASH);
        assert_eq!(c.on_bytes(&[5, 0]), Ok(ClientStep::Send(connect_request(HASH))));
        assert_eq!(c.on_bytes(&[5]), Ok(ClientStep::NeedMore));
        assert_eq!(c.on_bytes(&[4]), Err(Socks5Error::Refused { code: 4 }));
        let mut c = ClientHandshake::new(HASH);
        c.on_bytes(&[5, 0]).unwrap();
        c.on_bytes(&domain_reply(0, HASH)).unwrap();
        assert_eq!(c.on_bytes(b"x"), Err(Socks5Error::Finished));
    }

    #[test]
    fn greeting() {
        assert_eq!(parse_greeting(&[5, 1, 0]), Ok(Some((Greeting { methods: vec![0] }, 3))));
        assert_eq!(parse_greeting(&[5, 2, 2, 0, 5]), Ok(Some((Greeting { methods: vec![2, 0] }, 4))));
        assert_eq!(parse_greeting(&[5, 2, 2]), Ok(None));
        assert_eq!(parse_greeting(&[5, 1, 2]), Err(Socks5Error::PeerWantsAuth));
        assert_eq!(parse_greeting(&[5, 0]), Err(Socks5Error::PeerWantsAuth));
        assert_eq!(parse_greeting(b"GET / HTTP/1.1"), Err(Socks5Error::PeerNotSocks5(b'G')));
        // 255 methods, the largest greeting.
        let mut big = vec![5, 255];
        big.extend(0..=254u8);
        assert_eq!(parse_greeting(&big).unwrap().unwrap().1, 257);
        assert_eq!(parse_greeting(&big[..256]), Ok(None));
    }

    #[test]
    fn connect_requests() {
        let req = connect_request(HASH);
        let (r, n) = parse_connect_request(&req).unwrap().unwrap();
        assert_eq!(n, 47);
        assert_eq!(r, ConnectRequest { cmd: CMD_CONNECT, addr: Addr::Domain(HASH.into()), port: 0 });
        assert_eq!(r.dst_addr(), Some(HASH));
        assert_eq!(r.check_dst(HASH), Ok(()));
        assert_eq!(
            r.check_dst("ebb4d0f517348cc1cc62a8f3eccf6826fc817818"),
            Err(Socks5Error::WrongDstAddr {
                expected: "ebb4d0f517348cc1cc62a8f3eccf6826fc817818".into(),
                got: HASH.into()
            })
        );
        assert_eq!(r.reply(REP_SUCCEEDED), domain_reply(0, HASH));
        for i in 0..req.len() {
            assert_eq!(parse_connect_request(&req[..i]), Ok(None), "prefix {i}");
        }
        // Other address types parse; the caller rejects them.
        let (r, n) = parse_connect_request(&[5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]).unwrap().unwrap();
        assert_eq!((r.addr.clone(), r.port, n), (Addr::V4(Ipv4Addr::LOCALHOST), 8080, 10));
        assert_eq!(r.dst_addr(), None);
        assert!(matches!(r.check_dst(HASH), Err(Socks5Error::WrongDstAddr { .. })));
        assert_eq!(parse_connect_request(&[5, 1, 0, 3, 0]), Err(Socks5Error::EmptyDomain));
        assert_eq!(parse_connect_request(&[5, 1, 0, 3, 0, 0, 0]), Err(Socks5Error::EmptyDomain));
        assert_eq!(parse_connect_request(&[5, 1, 0, 7]), Err(Socks5Error::UnsupportedAddressType(7)));
        assert_eq!(parse_connect_request(&[0x16, 3, 1]), Err(Socks5Error::PeerNotSocks5(0x16)));
        assert_eq!(parse_connect_request(&[5, 1, 0, 3, 2, b'a', 0xe9, 0, 0]), Err(Socks5Error::BadDomain));
    }

    #[test]
    fn server_handshake_at_every_split() {
        let mut input = client_greeting().to_vec();
        input.extend(connect_request(HASH));
        input.extend_from_slice(b"early");
        for cut in 0..=input.len() {
            let mut s = ServerHandshake::new();
            let mut sent = Vec::new();
            let mut done = None;
            for chunk in [&input[..cut], &input[cut..]] {
                if let Some((_, leftover)) = &mut done {
                    // After the request, bytes are stream data, read by the caller.
                    Vec::extend_from_slice(leftover, chunk);
                    continue;
                }
                match s.on_bytes(chunk).unwrap() {
                    ServerStep::NeedMore { send } => sent.extend(send),
                    ServerStep::Request { send, request, leftover } => {
                        sent.extend(send);
                        done = Some((request, leftover));
                    }
                }
            }
            assert_eq!(sent, [5, 0], "cut {cut}");
            let (request, leftover) = done.unwrap_or_else(|| panic!("cut {cut}: no request"));
            assert_eq!(request.dst_addr(), Some(HASH));
            assert_eq!(leftover, b"early", "cut {cut}");
        }
    }

    #[test]
    fn server_handshake_failures() {
        let fail = |input: &[u8]| ServerHandshake::new().on_bytes(input).unwrap_err();
        assert_eq!(fail(&[5, 1, 2]), ServerFailure { send: vec![5, 0xff], error: Socks5Error::PeerWantsAuth });
        assert_eq!(fail(&[4, 1, 0]), ServerFailure { send: vec![], error: Socks5Error::PeerNotSocks5(4) });
        // BIND (2) is refused with "command not supported", echoing the address.
        let mut bind = client_greeting().to_vec();
        bind.extend_from_slice(&[5, 2, 0, 3, 1, b'a', 0, 0]);
        let mut expect = vec![5, 0];
        expect.extend(reply(REP_COMMAND_NOT_SUPPORTED, &Addr::Domain("a".into()), 0));
        assert_eq!(fail(&bind), ServerFailure { send: expect, error: Socks5Error::UnsupportedCommand(2) });
        // An unknown address type in a request arriving after the greeting.
        let mut s = ServerHandshake::new();
        assert_eq!(s.on_bytes(&[5, 1, 0]), Ok(ServerStep::NeedMore { send: vec![5, 0] }));
        assert_eq!(
            s.on_bytes(&[5, 1, 0, 9]),
            Err(ServerFailure {
                send: vec![5, 8, 0, 1, 0, 0, 0, 0, 0, 0],
                error: Socks5Error::UnsupportedAddressType(9)
            })
        );
        let mut s = ServerHandshake::new();
        assert_eq!(s.on_bytes(&[5, 1, 0, 5, 1, 0, 3, 0]).unwrap_err().error, Socks5Error::EmptyDomain);
        // After the request, the handshake is over.
        let mut s = ServerHandshake::new();
        let mut ok = client_greeting().to_vec();
        ok.extend(connect_request(HASH));
        assert!(matches!(s.on_bytes(&ok), Ok(ServerStep::Request { .. })));
        assert_eq!(s.on_bytes(b"x").unwrap_err().error, Socks5Error::Finished);
    }

    #[test]
    fn client_against_server() {
        let mut c = ClientHandshake::new(HASH);
        let mut s = ServerHandshake::new();
        let ServerStep::NeedMore { send } = s.on_bytes(&c.initial_bytes()).unwrap() else { panic!() };
        let ClientStep::Send(connect) = c.on_bytes(&send).unwrap() else { panic!() };
        let ServerStep::Request { send, request, .. } = s.on_bytes(&connect).unwrap() else { panic!() };
        assert!(send.is_empty());
        request.check_dst(HASH).unwrap();
        let step = c.on_bytes(&request.reply(REP_SUCCEEDED)).unwrap();
        assert!(matches!(step, ClientStep::Done { echo: Echo::Exact, .. }));
    }
}
