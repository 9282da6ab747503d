//! The SOCKS5 handshakes' target, and the byte source the machine targets share.

use super::*;

/// Reads the input bytes as a sequence of small numbers.
pub(super) struct Bytes<'a>(pub(super) &'a [u8]);

/// The clock before a tick: to the machine's `deadline`, or a little later than `now`,
/// as the data says.
pub(super) fn tick(now: Duration, deadline: Option<Duration>, b: &mut Bytes<'_>) -> Duration {
    match deadline {
        Some(t) if b.or(0) & 1 == 0 => now.max(t),
        _ => now + Duration::from_millis(u64::from(b.or(0)) * 100),
    }
}

impl Bytes<'_> {
    pub(super) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    pub(super) fn or(&mut self, default: u8) -> u8 {
        self.byte().unwrap_or(default)
    }

    pub(super) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.or(0), self.or(0)])
    }

    pub(super) fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Chunk sizes (1..=16) read from `seed`, over and over.
pub(super) fn chunker(seed: &[u8]) -> impl FnMut() -> usize + '_ {
    let mut i = 0;
    move || {
        i += 1;
        if seed.is_empty() {
            1
        } else {
            usize::from(seed[i % seed.len()] % 16) + 1
        }
    }
}

/// The end of a server handshake: what it wrote in all, and how it ended (a request
/// with everything after it, or the failure).
type ServerEnd = (Vec<u8>, Result<Option<(socks5::ConnectRequest, Vec<u8>)>, socks5::Socks5Error>);

pub(super) fn run_server(input: &[u8], mut sizes: impl FnMut() -> usize) -> ServerEnd {
    let mut hs = ServerHandshake::new();
    let (mut sent, mut rest) = (Vec::new(), input);
    while !rest.is_empty() {
        let n = sizes().clamp(1, rest.len());
        let (chunk, after) = rest.split_at(n);
        rest = after;
        match hs.on_bytes(chunk) {
            Ok(ServerStep::NeedMore { send }) => sent.extend(send),
            Ok(ServerStep::Request { send, request, mut leftover }) => {
                sent.extend(send);
                leftover.extend_from_slice(rest);
                // The handshake is over: more bytes are refused.
                assert!(hs.on_bytes(b"x").is_err());
                return (sent, Ok(Some((request, leftover))));
            }
            Err(failure) => {
                sent.extend(failure.send);
                return (sent, Err(failure.error));
            }
        }
    }
    (sent, Ok(None))
}

/// The end of a client handshake: what it wrote after its greeting, and how it ended.
type ClientEnd = (Vec<u8>, Result<Option<(socks5::Reply, socks5::Echo, Vec<u8>)>, socks5::Socks5Error>);

pub(super) fn run_client(dst: &str, input: &[u8], mut sizes: impl FnMut() -> usize) -> ClientEnd {
    let mut hs = ClientHandshake::new(dst);
    assert_eq!(hs.initial_bytes(), socks5::client_greeting());
    let (mut sent, mut rest) = (Vec::new(), input);
    let mut flush = false;
    while !rest.is_empty() || flush {
        // After CONNECT is written, what came with the method selection is looked at
        // before reading on. (The engine reads on at once: a proxy that sends its reply
        // before our CONNECT makes it wait for its timeout. Harmless; docs/fuzzing.md.)
        let chunk = if std::mem::take(&mut flush) {
            &[][..]
        } else {
            let n = sizes().clamp(1, rest.len());
            let (chunk, after) = rest.split_at(n);
            rest = after;
            chunk
        };
        match hs.on_bytes(chunk) {
            Ok(ClientStep::NeedMore) => {}
            Ok(ClientStep::Send(bytes)) => {
                // CONNECT, once, never pipelined: it is all the client ever writes.
                assert!(sent.is_empty(), "a second write");
                assert_eq!(bytes, socks5::connect_request(dst));
                sent.extend(bytes);
                flush = true;
            }
            Ok(ClientStep::Done { reply, echo, mut leftover }) => {
                assert!(!sent.is_empty(), "done before CONNECT was sent");
                leftover.extend_from_slice(rest);
                assert!(hs.on_bytes(b"x").is_err());
                return (sent, Ok(Some((reply, echo, leftover))));
            }
            Err(e) => return (sent, Err(e)),
        }
    }
    (sent, Ok(None))
}

/// Both SOCKS5 handshakes on arbitrary bytes: the same outcome (bytes written, request
/// or reply, leftover, error) whether the bytes come at once or in chunks of 1 to 16
/// bytes whose sizes the first bytes of the data pick; the parsers never read past the
/// input.
pub fn socks5(data: &[u8]) {
    let (seed, input) = data.split_at(data.len().min(4));
    let server = run_server(input, || usize::MAX);
    assert_eq!(run_server(input, chunker(seed)), server, "chunking changed the server handshake");
    assert_eq!(run_server(input, || 1), server, "byte by byte changed the server handshake");
    if let (_, Ok(Some((request, _)))) = &server {
        let dst = request.dst_addr().map(str::to_owned);
        if let Some(dst) = &dst {
            assert!(request.check_dst(dst).is_ok(), "{dst} is not its own DST.ADDR");
        }
        let _ = request.reply(socks5::REP_SUCCEEDED);
    }
    // The DST.ADDR the client asks for: the usual 40 hex digits, or a name from the data.
    let dst = match seed.first() {
        Some(&n) if n & 0x80 != 0 => String::from_utf8_lossy(&input[..input.len().min(usize::from(n & 0x7f))])
            .chars()
            .take(60)
            .collect::<String>(),
        _ => "0123456789abcdef0123456789abcdef01234567".to_owned(),
    };
    let client = run_client(&dst, input, || usize::MAX);
    assert_eq!(run_client(&dst, input, chunker(seed)), client, "chunking changed the client handshake");
    assert_eq!(run_client(&dst, input, || 1), client, "byte by byte changed the client handshake");
    // The one-shot parsers: what they consume is within the input.
    if let Ok(Some(n)) = socks5::parse_method_selection(input) {
        assert!(n <= input.len());
    }
    if let Ok(Some((_, n))) = socks5::parse_greeting(input) {
        assert!(n <= input.len());
    }
    if let Ok(Some((_, n))) = socks5::parse_connect_request(input) {
        assert!(n <= input.len());
    }
    if let Ok(Some((reply, n))) = socks5::parse_reply(input) {
        assert!(n <= input.len());
        let _ = reply.check_echo(&dst);
    }
    let _ = socks5::reply_meaning(seed.first().copied().unwrap_or(0));
}
