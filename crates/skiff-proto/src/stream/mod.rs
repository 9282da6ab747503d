//! XMPP stream framing (RFC 6120 §4): an incremental, memory-bounded reader that turns
//! socket bytes into a stream header, stanzas and the stream close, plus the few strings
//! we write on the stream ourselves.
//!
//! A small hand-written lexer resumes where it stopped, so n bytes cost O(n) however
//! they are chunked. It tracks only what it needs to find where a stanza ends (tags,
//! quoted attribute values, CDATA sections, element depth) and rejects what RFC 6120
//! §11.1 forbids on a stream (DTDs, comments, processing instructions). Each complete
//! stanza is then parsed by quick-xml's `NsReader` inside a synthetic wrapper element that
//! re-declares the header's namespaces, so `stream:` prefixes and the default
//! `jabber:client` namespace resolve exactly as they do on the wire.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::ns;
use crate::xml::{escape_into, Element, Node};

mod header;
#[cfg(test)]
mod tests;
mod tree;
mod write;

use header::*;
pub use tree::parse_element;
use tree::*;
pub use write::{open_stream, stream_error, write_stanza, CLOSE_STREAM};

/// Why the incoming XML was rejected. Every variant is fatal for the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML (bad syntax, mismatched tags, bad UTF-8, undeclared prefix,
    /// unknown entity...).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A stanza (or the stream header) grew past the size cap.
    #[error("stanza larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// Something RFC 6120 forbids on a stream: DTD / DOCTYPE, entity declarations,
    /// comments, processing instructions (other than the initial `<?xml ...?>`).
    #[error("restricted XML: {0}")]
    Restricted(&'static str),
    /// The stream header is not `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`.
    /// Messages starting with "namespace" mean the namespace was wrong.
    #[error("bad stream header: {0}")]
    BadHeader(String),
    /// An element over one of the structural [`Limit`]s. Inside a stanza on a stream
    /// this is not an error: the stanza is dropped ([`StreamEvent::Dropped`]) and the
    /// stream goes on. It is one for the stream header and for [`parse_element`].
    #[error("{0}")]
    Limit(Limit),
}

/// Deepest element nesting inside a stanza (the stanza itself is depth 1). The deepest
/// legitimate stanzas (a forwarded, carbon-copied message with a data form or XHTML-IM
/// body) nest about a dozen levels; every recursive walk over a tree (drop, clone,
/// serialising, logging, `Debug`) is bounded by this.
pub const MAX_DEPTH: usize = 48;
/// Most attributes on one element, namespace declarations included. Checked by the
/// lexer, before quick-xml's duplicate check (quadratic in the attribute count) runs.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most namespace declarations on one element.
pub const MAX_NAMESPACE_DECLARATIONS: usize = 16;
/// Most child elements of one element (a roster of several thousand contacts fits).
pub const MAX_CHILDREN: usize = 10_000;

/// A structural limit an element went over; the number is the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limit {
    #[error("elements nested deeper than {0} levels")]
    Depth(usize),
    #[error("an element with more than {0} attributes")]
    Attributes(usize),
    #[error("an element with more than {0} namespace declarations")]
    NamespaceDeclarations(usize),
    #[error("an element with more than {0} child elements")]
    Children(usize),
}

impl From<Limit> for XmlError {
    fn from(l: Limit) -> XmlError {
        XmlError::Limit(l)
    }
}

impl XmlError {
    /// The RFC 6120 §4.9.3 stream-error condition to send before closing the stream.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::BadHeader(m) if m.starts_with("namespace") => "invalid-namespace",
            XmlError::Malformed(_) | XmlError::BadHeader(_) => "not-well-formed",
            XmlError::TooLarge { .. } => "policy-violation",
            XmlError::Restricted(_) => "restricted-xml",
            XmlError::Limit(_) => "policy-violation",
        }
    }
}

/// The attributes of a received `<stream:stream>` opening tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    /// `from`, `to`, `id`, `version`, `xml:lang`... (namespace declarations excluded).
    pub attrs: Vec<(String, String)>,
    /// The content namespace (`jabber:client`), empty when none was declared.
    pub default_ns: String,
}

impl StreamHeader {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The stream id the server assigned.
    pub fn id(&self) -> Option<&str> {
        self.attr("id")
    }
    pub fn from(&self) -> Option<&str> {
        self.attr("from")
    }
}

/// What the reader produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened (or restarted) the stream.
    Open(StreamHeader),
    /// A complete top-level element: a stanza or a stream-level element (features, SASL...).
    Stanza(Element),
    /// `</stream:stream>`.
    Close,
    /// A stanza over one of the structural [`Limit`]s, skipped without building its
    /// tree; the stream goes on. What its opening tag said is kept so that a request
    /// can be answered with an error.
    Dropped(DroppedStanza),
}

/// What is known of a stanza that was dropped for going over a [`Limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedStanza {
    pub limit: Limit,
    /// The stanza's local name (`iq`, `message`, ...), empty when its opening tag was
    /// itself over a limit.
    pub name: String,
    pub id: Option<String>,
    /// The `type` attribute.
    pub kind: Option<String>,
    pub from: Option<String>,
}

impl DroppedStanza {
    fn new(limit: Limit) -> DroppedStanza {
        DroppedStanza { limit, name: String::new(), id: None, kind: None, from: None }
    }

    /// Reads the name and addressing of a stanza's opening tag (`<iq ... >`).
    fn with_head(mut self, wrapper: &str, head: &[u8]) -> DroppedStanza {
        let Ok(head) = std::str::from_utf8(head) else { return self };
        let doc = format!("{wrapper}{head}");
        let mut reader = NsReader::from_str(&doc);
        let mut seen = 0;
        while let Ok(event) = reader.read_event() {
            let (Event::Start(s) | Event::Empty(s)) = event else { break };
            seen += 1;
            if seen < 2 {
                continue;
            }
            let Ok(name) = std::str::from_utf8(s.local_name().into_inner()) else { break };
            self.name = name.to_owned();
            for attr in s.attributes().flatten() {
                let value =
                    || utf8(&attr.value).ok().and_then(|v| quick_xml::escape::unescape(v).ok()).map(Cow::into_owned);
                match attr.key.as_ref() {
                    b"id" => self.id = value(),
                    b"type" => self.kind = value(),
                    b"from" => self.from = value(),
                    _ => {}
                }
            }
            break;
        }
        self
    }
}

/// A stanza being skipped: the limit it went over and the bytes it has taken so far
/// (still counted against the size cap, though none of them are kept).
#[derive(Debug)]
struct Skip {
    dropped: DroppedStanza,
    /// Bytes of the stanza before `from`.
    base: usize,
    /// Where in `buf` the uncounted bytes start.
    from: usize,
}

/// Lexer state: where in the markup the byte at `pos` falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data (or inter-stanza whitespace).
    Text,
    /// Just after `<`.
    Lt,
    /// Inside a start tag; `quote` is the open quote (0 outside values), `slash` whether
    /// the previous byte was an unquoted `/`.
    Start { quote: u8, slash: bool },
    /// Inside an end tag.
    End,
    /// After `<!`, with this many bytes of `[CDATA[` matched.
    Bang(usize),
    /// Inside a CDATA section, with this many trailing `]` seen (at most 2).
    CData(u8),
    /// Inside the XML declaration; whether the previous byte was `?`.
    Pi(bool),
}

/// Incremental, sans-IO stream reader: [`feed`](Self::feed) it bytes as they arrive from
/// the socket and pull events with [`next_event`](Self::next_event).
#[derive(Debug)]
pub struct StreamParser {
    buf: Vec<u8>,
    /// Next byte the lexer looks at.
    pos: usize,
    /// Start of the unit being assembled (header, declaration, stanza) when there is one.
    token: Option<usize>,
    lex: Lex,
    /// Open elements, the stream element included: 0 before the header, 1 between stanzas.
    depth: usize,
    decl_allowed: bool,
    closed: bool,
    max: usize,
    ctx: Option<StreamCtx>,
    error: Option<XmlError>,
    /// Unquoted `=` seen in the current start tag: its attribute count.
    attrs: usize,
    /// Child elements so far of each element open inside the current stanza.
    children: Vec<usize>,
    /// Length of the current stanza's opening tag, once read.
    head_len: Option<usize>,
    /// Set while a stanza over a limit is being skipped.
    skip: Option<Skip>,
}

impl StreamParser {
    /// A reader expecting a stream header; stanzas (and the header) larger than
    /// `max_stanza_bytes` are rejected with [`XmlError::TooLarge`].
    pub fn new(max_stanza_bytes: usize) -> Self {
        StreamParser {
            buf: Vec::new(),
            pos: 0,
            token: None,
            lex: Lex::Text,
            depth: 0,
            decl_allowed: true,
            closed: false,
            max: max_stanza_bytes,
            ctx: None,
            error: None,
            attrs: 0,
            children: Vec::new(),
            head_len: None,
            skip: None,
        }
    }

    /// Appends bytes received from the peer (ignored once the parser has failed).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Next complete event, `Ok(None)` when more bytes are needed. After an `Err` the
    /// parser is poisoned and keeps returning the same error.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.scan() {
            Ok(None) => {
                self.compact();
                Ok(None)
            }
            Ok(event) => Ok(event),
            Err(e) => {
                self.error = Some(e.clone());
                self.buf = Vec::new();
                self.pos = 0;
                self.token = None;
                Err(e)
            }
        }
    }

    /// Stream restart (after STARTTLS or SASL success): forgets everything buffered and
    /// expects a new header.
    pub fn reset(&mut self) {
        *self = StreamParser::new(self.max);
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops the bytes before the current unit. Once a partial unit sits at offset 0
    /// nothing moves any more, so the total copying stays linear.
    fn compact(&mut self) {
        if let Some(skip) = &mut self.skip {
            skip.base += self.pos - skip.from;
            skip.from = 0;
        }
        let keep = self.token.unwrap_or(self.pos);
        if keep > 0 {
            self.buf.drain(..keep);
            self.pos -= keep;
            self.token = self.token.map(|_| 0);
        }
        if self.buf.capacity() > 64 * 1024 && self.buf.len() < self.buf.capacity() / 4 {
            self.buf.shrink_to(self.buf.len() * 2);
        }
    }

    fn check_size(&self) -> Result<(), XmlError> {
        let len = match (&self.skip, self.token) {
            (Some(skip), _) => skip.base + self.pos - skip.from,
            (None, Some(start)) => self.pos - start,
            (None, None) => 0,
        };
        if len > self.max {
            return Err(XmlError::TooLarge { limit: self.max });
        }
        Ok(())
    }

    /// The current element went over `limit`: inside a stanza, skip the rest of it
    /// (keeping none of its bytes); in the stream header, fail.
    fn over_limit(&mut self, limit: Limit) -> Result<(), XmlError> {
        if self.skip.is_some() {
            return Ok(());
        }
        let Some(start) = self.token.take() else {
            return Err(limit.into());
        };
        if self.depth == 0 {
            return Err(limit.into());
        }
        let mut dropped = DroppedStanza::new(limit);
        if let (Some(len), Some(ctx)) = (self.head_len, &self.ctx) {
            dropped = dropped.with_head(&ctx.wrapper, &self.buf[start..start + len]);
        }
        self.children = Vec::new();
        self.skip = Some(Skip { dropped, base: self.pos - start, from: self.pos });
        Ok(())
    }

    /// The end of a stanza: the stanza, or what is known of it when it was skipped.
    fn stanza_done(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        self.children.clear();
        match self.skip.take() {
            Some(skip) => Ok(Some(StreamEvent::Dropped(skip.dropped))),
            None => self.stanza(),
        }
    }

    fn scan(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        while let Some(&b) = self.buf.get(self.pos) {
            self.pos += 1;
            self.check_size()?;
            if let Some(event) = self.step(b)? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    /// Advances the lexer over byte `b` (already counted in `pos`).
    fn step(&mut self, b: u8) -> Result<Option<StreamEvent>, XmlError> {
        match self.lex {
            Lex::Text if b == b'<' => {
                if self.closed {
                    return Err(malformed("data after the stream was closed"));
                }
                if self.depth <= 1 {
                    self.token = Some(self.pos - 1);
                    self.head_len = None;
                }
                self.lex = Lex::Lt;
            }
            Lex::Text if self.depth >= 2 => {
                // Character data inside a stanza: skip to the next markup at once.
                let rest = &self.buf[self.pos..];
                self.pos += rest.iter().position(|&c| c == b'<').unwrap_or(rest.len());
                self.check_size()?;
            }
            Lex::Text if is_ws(b) => {}
            Lex::Text => {
                return Err(malformed(match (self.closed, self.depth) {
                    (true, _) => "data after the stream was closed",
                    (_, 0) => "text before the stream header",
                    _ => "text between stanzas",
                }))
            }
            Lex::Lt => {
                self.lex = match b {
                    b'/' => Lex::End,
                    b'!' => Lex::Bang(0),
                    b'?' if self.depth == 0 && self.decl_allowed => Lex::Pi(false),
                    b'?' => return Err(XmlError::Restricted("processing instructions are not allowed")),
                    b'>' | b'<' => return Err(malformed("missing tag name")),
                    _ if is_ws(b) => return Err(malformed("missing tag name")),
                    _ => {
                        self.attrs = 0;
                        Lex::Start { quote: 0, slash: false }
                    }
                }
            }
            Lex::Start { quote: 0, slash } => match b {
                b'>' => return self.start_tag(slash),
                b'\'' | b'"' => self.lex = Lex::Start { quote: b, slash: false },
                b'=' => {
                    self.attrs += 1;
                    if self.attrs > MAX_ATTRIBUTES {
                        self.over_limit(Limit::Attributes(MAX_ATTRIBUTES))?;
                    }
                    self.lex = Lex::Start { quote: 0, slash: false };
                }
                b'<' => return Err(malformed("'<' inside a tag")),
                _ => self.lex = Lex::Start { quote: 0, slash: b == b'/' },
            },
            Lex::Start { quote, .. } if b == quote => self.lex = Lex::Start { quote: 0, slash: false },
            Lex::Start { .. } if b == b'<' => return Err(malformed("'<' in an attribute value")),
            Lex::Start { .. } => {}
            Lex::End if b == b'>' => return self.end_tag(),
            Lex::End if b == b'<' => return Err(malformed("'<' inside an end tag")),
            Lex::End => {}
            Lex::Bang(0) if b == b'-' => return Err(XmlError::Restricted("comments are not allowed")),
            Lex::Bang(0) if b.is_ascii_uppercase() => {
                return Err(XmlError::Restricted("DTDs and entity declarations are not allowed"))
            }
            Lex::Bang(i) => {
                const CDATA: &[u8] = b"[CDATA[";
                if CDATA.get(i) != Some(&b) {
                    return Err(malformed("bad '<!' markup"));
                }
                self.lex = if i + 1 < CDATA.len() {
                    Lex::Bang(i + 1)
                } else if self.depth >= 2 {
                    Lex::CData(0)
                } else {
                    return Err(malformed("CDATA outside a stanza"));
                };
            }
            Lex::CData(n) => {
                self.lex = match b {
                    b']' => Lex::CData((n + 1).min(2)),
                    b'>' if n == 2 => Lex::Text,
                    _ => Lex::CData(0),
                }
            }
            Lex::Pi(true) if b == b'>' => return self.declaration(),
            Lex::Pi(_) => self.lex = Lex::Pi(b == b'?'),
        }
        Ok(None)
    }

    /// Where the unit just completed lies in `buf` (`token..pos`), forgetting the unit.
    fn take_token(&mut self) -> std::ops::Range<usize> {
        self.token.take().unwrap_or(self.pos)..self.pos
    }

    fn declaration(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        self.lex = Lex::Text;
        let range = self.take_token();
        let pi = &self.buf[range];
        if !(pi.starts_with(b"<?xml") && pi.get(5).is_some_and(|&c| is_ws(c) || c == b'?')) {
            return Err(XmlError::Restricted("processing instructions are not allowed"));
        }
        self.decl_allowed = false;
        Ok(None)
    }

    fn start_tag(&mut self, empty: bool) -> Result<Option<StreamEvent>, XmlError> {
        self.lex = Lex::Text;
        match self.depth {
            0 => {
                let range = self.take_token();
                let (header, ctx) = parse_header(&self.buf[range])?;
                self.ctx = Some(ctx);
                self.depth = 1;
                self.decl_allowed = false;
                Ok(Some(StreamEvent::Open(header)))
            }
            1 if empty => self.stanza_done(),
            depth => {
                // `depth` - 1 elements are open inside the stanza; this one is one deeper.
                if depth == 1 {
                    self.head_len = self.token.map(|t| self.pos - t);
                } else if self.skip.is_none() {
                    if depth > MAX_DEPTH {
                        self.over_limit(Limit::Depth(MAX_DEPTH))?;
                    } else if let Some(n) = self.children.last_mut() {
                        *n += 1;
                        if *n > MAX_CHILDREN {
                            self.over_limit(Limit::Children(MAX_CHILDREN))?;
                        }
                    }
                }
                if !empty {
                    self.depth += 1;
                    if self.skip.is_none() {
                        self.children.push(0);
                    }
                }
                Ok(None)
            }
        }
    }

    fn end_tag(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        self.lex = Lex::Text;
        match self.depth {
            0 => Err(malformed("end tag before the stream header")),
            1 => {
                let range = self.take_token();
                let tag = &self.buf[range];
                let name = tag.get(2..tag.len() - 1).unwrap_or_default().trim_ascii_end();
                if self.ctx.as_ref().map(|c| c.qname.as_bytes()) != Some(name) {
                    return Err(malformed("unexpected end tag at stream level"));
                }
                self.depth = 0;
                self.closed = true;
                Ok(Some(StreamEvent::Close))
            }
            2 => {
                self.depth = 1;
                self.stanza_done()
            }
            _ => {
                self.depth -= 1;
                self.children.pop();
                Ok(None)
            }
        }
    }

    /// Parses the stanza just completed, inside the namespace wrapper.
    fn stanza(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        let range = self.take_token();
        let text = utf8(&self.buf[range])?;
        let wrapper = self.ctx.as_ref().map_or("<w>", |c| c.wrapper.as_str());
        let mut doc = String::with_capacity(wrapper.len() + text.len() + 4);
        doc.push_str(wrapper);
        doc.push_str(text);
        doc.push_str("</w>");
        let root = match read_tree(&doc, false) {
            Ok(root) => root,
            Err(XmlError::Limit(limit)) => {
                let head = &text.as_bytes()[..self.head_len.unwrap_or(text.len()).min(text.len())];
                return Ok(Some(StreamEvent::Dropped(DroppedStanza::new(limit).with_head(wrapper, head))));
            }
            Err(e) => return Err(e),
        };
        let stanza = root.children.into_iter().find_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        });
        stanza.map(|s| Some(StreamEvent::Stanza(s))).ok_or_else(|| malformed("empty stanza"))
    }
}
