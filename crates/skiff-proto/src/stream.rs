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

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

fn utf8(bytes: &[u8]) -> Result<&str, XmlError> {
    std::str::from_utf8(bytes).map_err(|_| malformed("invalid UTF-8"))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whether `s` is an XML name without a colon (`NCName`): quick-xml does not check
/// names, so `<a$b='c'>` would otherwise become an element we cannot write back
/// (found by fuzzing). Non-ASCII characters are taken as name characters.
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    let start = |c: char| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii();
    start(first) && chars.all(|c| start(c) || c.is_ascii_digit() || c == '-' || c == '.')
}

/// `name`, or an error when it is not a name (`prefix:local` allowed for attributes).
fn checked_name(name: &str, qualified: bool) -> Result<&str, XmlError> {
    let ok = match name.split_once(':') {
        Some((p, l)) if qualified => is_ncname(p) && is_ncname(l),
        Some(_) => false,
        None => is_ncname(name),
    };
    if ok {
        Ok(name)
    } else {
        Err(malformed(format!("'{name}' is not an XML name")))
    }
}

/// XML 1.0 `Char` production (Rust strings already exclude surrogates).
fn check_chars(s: &str) -> Result<(), XmlError> {
    let bad = |c: char| matches!(c, '\0'..='\x08' | '\x0B' | '\x0C' | '\x0E'..='\x1F' | '\u{FFFE}' | '\u{FFFF}');
    match s.chars().find(|&c| bad(c)) {
        Some(c) => Err(malformed(format!("character U+{:04X} is not allowed in XML", c as u32))),
        None => Ok(()),
    }
}

fn ns_name(res: ResolveResult<'_>) -> Result<String, XmlError> {
    match res {
        // The declaration's value as written: references in it stand for characters
        // like in any attribute value (found by fuzzing: `xmlns='a&amp;b'` is `a&b`).
        ResolveResult::Bound(n) => {
            let raw = utf8(n.into_inner())?;
            Ok(quick_xml::escape::unescape(raw).map_err(malformed)?.into_owned())
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => {
            Err(malformed(format!("undeclared namespace prefix '{}'", String::from_utf8_lossy(&p))))
        }
    }
}

/// Attributes of `start`, values decoded and normalised (XML 1.0 §3.3.3). Namespace
/// declarations go to `decls` (when given) instead of the result. Attribute names keep
/// their qualified form (`xml:lang`), after checking the prefix is declared.
fn read_attrs(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    mut decls: Option<&mut Vec<(String, String)>>,
) -> Result<Vec<(String, String)>, XmlError> {
    let mut attrs = Vec::new();
    let mut declared = 0;
    for attr in start.attributes() {
        let attr = attr.map_err(malformed)?;
        let raw = utf8(&attr.value)?;
        if raw.contains('<') {
            return Err(malformed("'<' in an attribute value"));
        }
        let raw: Cow<'_, str> = if raw.contains(['\t', '\n', '\r']) {
            raw.replace("\r\n", " ").replace(['\t', '\n', '\r'], " ").into()
        } else {
            raw.into()
        };
        let value = quick_xml::escape::unescape(&raw).map_err(malformed)?.into_owned();
        check_chars(&value)?;
        let key = checked_name(utf8(attr.key.as_ref())?, true)?.to_owned();
        if attrs.len() + declared >= MAX_ATTRIBUTES {
            return Err(Limit::Attributes(MAX_ATTRIBUTES).into());
        }
        if attr.key.as_namespace_binding().is_some() {
            declared += 1;
            if declared > MAX_NAMESPACE_DECLARATIONS {
                return Err(Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS).into());
            }
            if let Some(d) = decls.as_deref_mut() {
                d.push((key, value));
            }
            continue;
        }
        ns_name(reader.resolve_attribute(attr.key).0)?;
        // Attributes in other namespaces than `xml:` mean nothing to any protocol here,
        // and kept as `prefix:name` they would be written without their declaration
        // (found by fuzzing): they are left out of the tree.
        if key.split_once(':').is_some_and(|(prefix, _)| prefix != "xml") {
            continue;
        }
        attrs.push((key, value));
    }
    Ok(attrs)
}

/// The character a `&...;` reference stands for: the five predefined entities and
/// character references; anything else is an error (there is no DTD to define it).
fn resolve_ref(r: &BytesRef<'_>) -> Result<char, XmlError> {
    if let Some(c) = r.resolve_char_ref().map_err(malformed)? {
        return Ok(c);
    }
    match &*r.decode().map_err(malformed)? {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(malformed(format!("unknown entity '&{other};'"))),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    check_chars(text)?;
    match stack.last_mut() {
        Some(top) => top.push_text(text),
        None if text.bytes().all(is_ws) => {}
        None => return Err(malformed("text outside the root element")),
    }
    Ok(())
}

/// Builds the tree of the single root element of `xml`. `standalone` (for
/// [`parse_element`]) allows a leading XML declaration and skips comments; otherwise
/// both are restricted, and the root is the namespace wrapper around one stanza (one
/// level more than [`MAX_DEPTH`], and any number of... one child). The [`Limit`]s are
/// checked element by element, before anything is added past them.
fn read_tree(xml: &str, standalone: bool) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(xml);
    let max_depth = if standalone { MAX_DEPTH } else { MAX_DEPTH + 1 };
    let mut stack: Vec<Element> = Vec::new();
    // Child elements of each open element so far.
    let mut counts: Vec<usize> = Vec::new();
    let mut root: Option<Element> = None;
    let mut decl_ok = standalone;
    loop {
        let (res, event) = reader.read_resolved_event().map_err(malformed)?;
        let ns = ns_name(res);
        let mut finished = None;
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                if stack.len() >= max_depth {
                    return Err(Limit::Depth(MAX_DEPTH).into());
                }
                if let Some(n) = counts.last_mut() {
                    *n += 1;
                    if *n > MAX_CHILDREN {
                        return Err(Limit::Children(MAX_CHILDREN).into());
                    }
                }
                checked_name(utf8(s.name().as_ref())?, true)?;
                let el = Element {
                    name: checked_name(utf8(s.local_name().as_ref())?, false)?.to_owned(),
                    ns: ns?,
                    attrs: read_attrs(&reader, s, None)?,
                    children: Vec::new(),
                };
                match event {
                    Event::Start(_) => {
                        stack.push(el);
                        counts.push(0);
                    }
                    _ => finished = Some(el),
                }
            }
            Event::End(_) => {
                counts.pop();
                finished = Some(stack.pop().ok_or_else(|| malformed("unexpected end tag"))?)
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content().map_err(malformed)?)?,
            Event::CData(c) if !stack.is_empty() => push_text(&mut stack, &c.xml10_content().map_err(malformed)?)?,
            Event::GeneralRef(r) if !stack.is_empty() => {
                push_text(&mut stack, resolve_ref(&r)?.encode_utf8(&mut [0; 4]))?
            }
            Event::CData(_) | Event::GeneralRef(_) => return Err(malformed("text outside the root element")),
            Event::Decl(_) if decl_ok => {}
            Event::Comment(_) if standalone => {}
            Event::Comment(_) => return Err(XmlError::Restricted("comments are not allowed")),
            Event::Decl(_) | Event::PI(_) => {
                return Err(XmlError::Restricted("processing instructions are not allowed"))
            }
            Event::DocType(_) => return Err(XmlError::Restricted("DTDs are not allowed")),
            Event::Eof => break,
        }
        decl_ok = false;
        if let Some(el) = finished {
            match stack.last_mut() {
                Some(parent) => parent.push_child(el),
                None => root = Some(el),
            }
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unclosed element"));
    }
    root.ok_or_else(|| malformed("no element"))
}

/// Parses one standalone element (a test vector, a stored stanza). Namespaces are
/// resolved; a leading XML declaration, whitespace around the element and comments are
/// allowed; DTDs, processing instructions and anything else after the element are not.
pub fn parse_element(bytes: &[u8]) -> Result<Element, XmlError> {
    read_tree(utf8(bytes)?, true)
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

/// What the header taught us, needed to parse stanzas and the close tag.
#[derive(Debug)]
struct StreamCtx {
    /// The header's qualified name (`stream:stream`), to match the closing tag.
    qname: String,
    /// `<w xmlns='...' xmlns:stream='...'>`: re-declares the header's namespaces.
    wrapper: String,
}

fn parse_header(bytes: &[u8]) -> Result<(StreamHeader, StreamCtx), XmlError> {
    let mut reader = NsReader::from_str(utf8(bytes)?);
    let (res, event) = reader.read_resolved_event().map_err(malformed)?;
    let ns = ns_name(res).map_err(|e| match e {
        XmlError::Malformed(m) => XmlError::BadHeader(m),
        e => e,
    })?;
    let start = match event {
        Event::Start(s) => s,
        Event::Empty(_) => return Err(XmlError::BadHeader("the stream element is empty".into())),
        _ => return Err(malformed("expected the stream header")),
    };
    if ns != ns::STREAM {
        return Err(XmlError::BadHeader(format!(
            "namespace of the stream element must be '{}', not '{ns}'",
            ns::STREAM
        )));
    }
    if start.local_name().as_ref() != b"stream" {
        return Err(XmlError::BadHeader("the root element must be <stream>".into()));
    }
    let mut decls = Vec::new();
    let attrs = read_attrs(&reader, &start, Some(&mut decls))?;
    let default_ns = decls.iter().find(|(k, _)| k == "xmlns").map(|(_, v)| v.clone()).unwrap_or_default();
    let mut wrapper = String::from("<w");
    for (k, v) in &decls {
        wrapper.push(' ');
        wrapper.push_str(k);
        wrapper.push_str("='");
        escape_into(&mut wrapper, v, true);
        wrapper.push('\'');
    }
    wrapper.push('>');
    let qname = utf8(start.name().as_ref())?.to_owned();
    Ok((StreamHeader { attrs, default_ns }, StreamCtx { qname, wrapper }))
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

/// The opening we send: XML declaration and `<stream:stream>` in `jabber:client`.
pub fn open_stream(to: &str, from: Option<&str>) -> String {
    let mut out = String::from(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='",
    );
    escape_into(&mut out, to, true);
    if let Some(from) = from {
        out.push_str("' from='");
        escape_into(&mut out, from, true);
    }
    out.push_str("' version='1.0' xml:lang='en'>");
    out
}

/// Closes the stream we opened.
pub const CLOSE_STREAM: &str = "</stream:stream>";

/// `<stream:error>` with an RFC 6120 condition (e.g. [`XmlError::condition`]) and optional text.
pub fn stream_error(condition: &str, text: Option<&str>) -> String {
    let mut out = format!("<stream:error><{condition} xmlns='{}'/>", ns::STREAM_ERRORS);
    if let Some(text) = text {
        out.push_str("<text xmlns='");
        out.push_str(ns::STREAM_ERRORS);
        out.push_str("'>");
        escape_into(&mut out, text, false);
        out.push_str("</text>");
    }
    out.push_str("</stream:error>");
    out
}

/// Serialises a stanza for a `jabber:client` stream (no `xmlns` on the top element when
/// it is in `jabber:client`).
pub fn write_stanza(el: &Element) -> String {
    let mut out = String::with_capacity(128);
    el.write_to(&mut out, Some(ns::CLIENT));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s-1' version='1.0' xml:lang='en'>";

    /// Feeds `input` in chunks whose sizes `next_size` picks, pulling every event in between.
    fn run(input: &[u8], mut next_size: impl FnMut() -> usize) -> (Vec<StreamEvent>, Option<XmlError>) {
        let mut parser = StreamParser::new(1 << 16);
        let (mut events, mut rest) = (Vec::new(), input);
        loop {
            loop {
                match parser.next_event() {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(e) => return (events, Some(e)),
                }
            }
            if rest.is_empty() {
                return (events, None);
            }
            let n = next_size().clamp(1, rest.len());
            parser.feed(&rest[..n]);
            rest = &rest[n..];
        }
    }

    fn whole(input: &str) -> (Vec<StreamEvent>, Option<XmlError>) {
        run(input.as_bytes(), || usize::MAX)
    }

    fn stanzas(body: &str) -> Vec<Element> {
        let (events, err) = whole(&format!("{HEADER}{body}"));
        assert_eq!(err, None, "{body}");
        events.into_iter().filter_map(|e| if let StreamEvent::Stanza(s) = e { Some(s) } else { None }).collect()
    }

    fn stanza(body: &str) -> Element {
        let mut all = stanzas(body);
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn error(input: &str) -> XmlError {
        whole(input).1.expect("an error")
    }

    fn body_error(body: &str) -> XmlError {
        error(&format!("{HEADER}{body}"))
    }

    fn header(input: &str) -> StreamHeader {
        match whole(input).0.first() {
            Some(StreamEvent::Open(h)) => h.clone(),
            other => panic!("no header: {other:?}"),
        }
    }

    #[test]
    fn header_with_declaration() {
        let h = header(HEADER);
        assert_eq!(h.default_ns, "jabber:client");
        assert_eq!((h.id(), h.from()), (Some("s-1"), Some("example.com")));
        assert_eq!(h.attr("version"), Some("1.0"));
        assert_eq!(h.attr("xml:lang"), Some("en"));
        assert_eq!(h.attrs.len(), 4, "namespace declarations are not attributes");
    }

    #[test]
    fn header_without_declaration_double_quotes_other_prefix() {
        let h = header(
            "\n <s:stream xmlns=\"jabber:client\" xmlns:s=\"http://etherx.jabber.org/streams\" to=\"a&amp;b&#x41;\">",
        );
        assert_eq!(h.attr("to"), Some("a&bA"));
        let (events, err) = whole(
            "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>\
             <s:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></s:features></s:stream >",
        );
        assert_eq!(err, None);
        let StreamEvent::Stanza(f) = &events[1] else { panic!("{events:?}") };
        assert!(f.is("features", ns::STREAM) && f.child("starttls", ns::TLS).is_some());
        assert_eq!(events[2], StreamEvent::Close);
    }

    #[test]
    fn stanzas_resolve_namespaces() {
        let iq = stanza("<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>");
        assert!(iq.is("iq", "jabber:client"));
        assert_eq!(iq.attrs, vec![("type".into(), "result".into()), ("id".into(), "1".into())]);
        let item = iq.child("query", ns::ROSTER).and_then(|q| q.child("item", ns::ROSTER)).expect("item");
        assert_eq!(item.attr("jid"), Some("a@b"));

        let m = stanza("<message><foo:bar xmlns:foo='urn:x' foo:a='1'><baz/><foo:q/></foo:bar></message>");
        let bar = m.child("bar", "urn:x").expect("bar");
        assert_eq!(bar.attr("foo:a"), None, "attributes in other namespaces are left out");
        assert!(bar.child("baz", ns::CLIENT).is_some() && bar.child("q", "urn:x").is_some());

        let all = stanzas(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
             </mechanisms></stream:features><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             </stream:error>",
        );
        assert!(all[0].is("features", ns::STREAM));
        assert_eq!(
            all[0].child("mechanisms", ns::SASL).and_then(|m| m.child_text("mechanism", ns::SASL)).as_deref(),
            Some("PLAIN")
        );
        assert!(all[1].is("error", ns::STREAM) && all[1].child("conflict", ns::STREAM_ERRORS).is_some());
    }

    #[test]
    fn references_cdata_and_line_ends() {
        let m = stanza(
            "<message to='a&apos;b&#x41;&#66;&quot;' note='x\ty\r\nz'><body>&lt;&gt;&amp;&apos;&quot;&#233;&#x1F600;\
             r\r\nn</body><x><![CDATA[<y>&amp;]]]]><![CDATA[>]]></x></message>",
        );
        assert_eq!(m.attr("to"), Some("a'bAB\""));
        assert_eq!(m.attr("note"), Some("x y z"));
        assert_eq!(m.child_text("body", ns::CLIENT).as_deref(), Some("<>&'\"é😀r\nn"));
        assert_eq!(m.child_text("x", ns::CLIENT).as_deref(), Some("<y>&amp;]]>"));
        assert!(matches!(body_error("<message><body>&nbsp;</body></message>"), XmlError::Malformed(_)));
        assert!(matches!(body_error("<message><body>&#1;</body></message>"), XmlError::Malformed(_)));
        assert!(matches!(body_error("<message a='&bogus;'/>"), XmlError::Malformed(_)));
        assert!(matches!(body_error("<message><body>a & b</body></message>"), XmlError::Malformed(_)));
    }

    #[test]
    fn keepalives_and_close() {
        let input = format!("{HEADER} \n<presence/>\t \r\n<presence/>  </stream:stream>\n");
        let (events, err) = whole(&input);
        assert_eq!(err, None);
        assert_eq!(events.len(), 4);
        assert!(matches!(events[0], StreamEvent::Open(_)) && events[3] == StreamEvent::Close);
        let mut p = StreamParser::new(1000);
        p.feed(format!("{HEADER}<presence/>").as_bytes());
        while let Ok(Some(_)) = p.next_event() {}
        p.feed(b" \n \n");
        assert_eq!(p.next_event(), Ok(None));
        assert_eq!(p.buffered(), 0, "keepalives are dropped");
        p.feed(b"<presence");
        assert_eq!(p.next_event(), Ok(None));
        assert_eq!(p.buffered(), 9);
        assert!(matches!(body_error("<presence/>x<presence/>"), XmlError::Malformed(_)));
        assert!(matches!(body_error("<![CDATA[x]]>"), XmlError::Malformed(_)));
        assert!(matches!(error(&format!("{HEADER}</stream:stream><presence/>")), XmlError::Malformed(_)));
    }

    const FIXTURE: &str = "<?xml version='1.0' encoding='UTF-8'?>\n\
        <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='ïd' version='1.0'>\
        <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\n \
        <message from='jüliet@ex.com' to=\"r&#xF6;meo@ex.com\" a='>'><body>Grüße 😀 &amp; ]]&gt; --&gt;</body>\
        <x xmlns='jabber:x:data' type=\"form\"><field var='a'><value><![CDATA[<>]]]]><![CDATA[>]]>Zoë]]></value>\
        </field></x></message>\r\n<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>";

    #[test]
    fn any_chunking_gives_the_same_events() {
        let (expected, err) = whole(FIXTURE);
        assert_eq!(err, None);
        assert_eq!(expected.len(), 5);
        assert_eq!(run(FIXTURE.as_bytes(), || 1), (expected.clone(), None));
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for max in [2, 3, 7, 16, 64] {
            for _ in 0..50 {
                let sizes = || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed % max) as usize + 1
                };
                assert_eq!(run(FIXTURE.as_bytes(), sizes), (expected.clone(), None));
            }
        }
    }

    #[test]
    fn reset_restarts_the_stream() {
        let mut p = StreamParser::new(4096);
        p.feed(format!("{HEADER}<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01garbage").as_bytes());
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(s))) if s.is("proceed", ns::TLS)));
        p.reset();
        assert_eq!(p.buffered(), 0);
        p.feed(HEADER.replace("s-1", "s-2").as_bytes());
        p.feed(b"<stream:features/>");
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(h))) if h.id() == Some("s-2")));
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(s))) if s.is("features", ns::STREAM)));
    }

    #[test]
    fn oversize_stanza_fails_early_with_bounded_memory() {
        const CAP: usize = 64 * 1024;
        let mut p = StreamParser::new(CAP);
        p.feed(HEADER.as_bytes());
        p.feed(b"<message><body>");
        let chunk = [b'a'; 4096];
        let mut fed = 0;
        let err = loop {
            assert!(fed < 10 << 20, "never failed");
            match p.next_event() {
                Ok(Some(StreamEvent::Open(_))) => continue,
                Ok(None) => assert!(p.buffered() <= CAP + 4096 + 64, "{}", p.buffered()),
                other => break other,
            }
            p.feed(&chunk);
            fed += chunk.len();
        };
        assert_eq!(err, Err(XmlError::TooLarge { limit: CAP }));
        assert!(fed <= CAP + 8192);
        assert_eq!(p.buffered(), 0);
        p.feed(b"</body></message>");
        assert_eq!(p.next_event(), Err(XmlError::TooLarge { limit: CAP }), "poisoned");

        // The cap counts the whole stanza, header too.
        let exact = "<presence/>";
        let mut p = StreamParser::new(HEADER.len());
        p.feed(format!("{HEADER}{exact}").as_bytes());
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
        let mut p = StreamParser::new(exact.len() - 1);
        p.feed(format!("{HEADER}{exact}").as_bytes());
        assert_eq!(p.next_event(), Err(XmlError::TooLarge { limit: exact.len() - 1 }));
    }

    #[test]
    fn restricted_xml() {
        let laughs = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]>";
        assert!(matches!(error(&format!("{laughs}{HEADER}")), XmlError::Restricted(_)));
        assert!(matches!(body_error("<message><!ENTITY x 'y'></message>"), XmlError::Restricted(_)));
        for bad in
            ["<!-- hi -->", "<message><!-- hi --></message>", "<?foo bar?>", "<message><?xml version='1.0'?></message>"]
        {
            let e = body_error(bad);
            assert!(matches!(e, XmlError::Restricted(_)), "{bad}: {e:?}");
            assert_eq!(e.condition(), "restricted-xml");
        }
        assert!(matches!(error("<!-- c --><stream:stream/>"), XmlError::Restricted(_)));
        assert!(matches!(error("<?xml-stylesheet x?><stream:stream/>"), XmlError::Restricted(_)));
        assert!(matches!(error("<?xml version='1.0'?><?xml version='1.0'?>"), XmlError::Restricted(_)));
    }

    #[test]
    fn malformed_xml() {
        for bad in [
            "<message><body></message></body>",
            "</foo>",
            "<message><x:y/></message>",
            "<message x:a='1'/>",
            "<message a='1' a='2'/>",
            "<message a=1/>",
            "<message a='<'/>",
            "<message><</message>",
            "<message><!bogus></message>",
        ] {
            let e = body_error(bad);
            assert!(matches!(e, XmlError::Malformed(_)), "{bad}: {e:?}");
            assert_eq!(e.condition(), "not-well-formed");
        }
        for bad in [
            &b"<message><body>\xff</body></message>"[..],
            b"<message a='\xc3'/>",
            b"<message><body>\xe2\x82</body></message>",
        ] {
            let input = [HEADER.as_bytes(), bad].concat();
            assert!(matches!(run(&input, || 1).1, Some(XmlError::Malformed(_))));
        }
        assert!(matches!(error("hello"), XmlError::Malformed(_)));
    }

    #[test]
    fn bad_headers() {
        let e = error("<stream:stream xmlns:stream='jabber:client'>");
        assert!(matches!(e, XmlError::BadHeader(_)));
        assert_eq!(e.condition(), "invalid-namespace");
        let e = error("<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>");
        assert!(matches!(e, XmlError::BadHeader(_)));
        assert_eq!(e.condition(), "not-well-formed");
        assert_eq!(
            error("<stream:stream xmlns='jabber:client'>").to_string(),
            "bad stream header: undeclared namespace prefix 'stream'"
        );
        assert!(matches!(
            error("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>"),
            XmlError::BadHeader(_)
        ));
    }

    /// Events of `body` after the header, fed whole, with a parser whose size cap is `max`.
    fn events_within(max: usize, body: &str) -> (Vec<StreamEvent>, Option<XmlError>) {
        let mut p = StreamParser::new(max);
        p.feed(format!("{HEADER}{body}").as_bytes());
        let mut events = Vec::new();
        loop {
            match p.next_event() {
                Ok(Some(StreamEvent::Open(_))) => {}
                Ok(Some(e)) => events.push(e),
                Ok(None) => return (events, None),
                Err(e) => return (events, Some(e)),
            }
        }
    }

    fn nested(levels: usize) -> String {
        format!("{}{}", "<a>".repeat(levels), "</a>".repeat(levels))
    }

    const PING: &str = "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>";

    /// The stanza over a limit is dropped (with what its opening tag said), the next one
    /// arrives, and the stream goes on.
    fn assert_dropped(body: &str, limit: Limit) -> DroppedStanza {
        let (events, err) = events_within(4 << 20, &format!("{body}{PING}"));
        assert_eq!(err, None);
        assert_eq!(events.len(), 2, "{:?}", events.first());
        let StreamEvent::Dropped(d) = &events[0] else { panic!("not dropped: {:?}", events[0]) };
        assert_eq!(d.limit, limit);
        assert!(matches!(&events[1], StreamEvent::Stanza(s) if s.attr("id") == Some("p1")), "{:?}", events[1]);
        d.clone()
    }

    #[test]
    fn deep_nesting_is_dropped_and_the_stream_goes_on() {
        // What a stranger sent: ~36,000 levels in one message.
        let body = format!("<message from='mallory@evil.example/x' type='chat' id='m1'>{}</message>", nested(36_000));
        let d = assert_dropped(&body, Limit::Depth(MAX_DEPTH));
        assert_eq!((d.name.as_str(), d.id.as_deref(), d.kind.as_deref()), ("message", Some("m1"), Some("chat")));
        assert_eq!(d.from.as_deref(), Some("mallory@evil.example/x"));

        // Exactly at the limit is fine: the stanza is depth 1.
        let ok = stanza(&format!("<message>{}</message>", nested(MAX_DEPTH - 1)));
        let mut depth = 1;
        let mut el = &ok;
        while let Some(child) = el.elements().next() {
            el = child;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        // One more is not; an empty innermost element counts the same.
        let over = format!("<iq type='set' id='q&amp;1' from='a@b'>{}</iq>", nested(MAX_DEPTH));
        let d = assert_dropped(&over, Limit::Depth(MAX_DEPTH));
        assert_eq!((d.name.as_str(), d.id.as_deref(), d.kind.as_deref()), ("iq", Some("q&1"), Some("set")));
        let over_empty =
            format!("<message>{}<b/>{}</message>", "<a>".repeat(MAX_DEPTH - 1), "</a>".repeat(MAX_DEPTH - 1));
        assert_dropped(&over_empty, Limit::Depth(MAX_DEPTH));
    }

    #[test]
    fn skipping_keeps_nothing_and_still_counts_the_size() {
        // A deep stanza fed in 4 KiB chunks: nothing of it is buffered.
        let mut p = StreamParser::new(1 << 20);
        p.feed(HEADER.as_bytes());
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
        p.feed(b"<message id='deep'>");
        let chunk = "<a>".repeat(1365);
        for _ in 0..100 {
            p.feed(chunk.as_bytes());
            assert_eq!(p.next_event(), Ok(None));
            assert!(p.buffered() < 64, "{}", p.buffered());
        }
        // ...and the size cap still applies to it as a whole.
        let err = loop {
            p.feed(chunk.as_bytes());
            match p.next_event() {
                Ok(None) => continue,
                other => break other,
            }
        };
        assert_eq!(err, Err(XmlError::TooLarge { limit: 1 << 20 }));
        let (_, err) = events_within(100_000, &format!("<message>{}</message>", nested(20_000)));
        assert_eq!(err, Some(XmlError::TooLarge { limit: 100_000 }));
    }

    #[test]
    fn attribute_and_namespace_floods_are_dropped() {
        let attrs = |n: usize| (0..n).map(|i| format!(" a{i}='{i}'")).collect::<String>();
        stanza(&format!("<message><x{}/></message>", attrs(MAX_ATTRIBUTES)));
        let d = assert_dropped(
            &format!("<iq type='get' id='f'><x{}/></iq>", attrs(MAX_ATTRIBUTES + 1)),
            Limit::Attributes(MAX_ATTRIBUTES),
        );
        assert_eq!(d.id.as_deref(), Some("f"));
        // On the stanza itself: nothing of it is known.
        let d = assert_dropped(&format!("<iq type='get' id='f'{}/>", attrs(20_000)), Limit::Attributes(MAX_ATTRIBUTES));
        assert_eq!((d.name.as_str(), d.id), ("", None));
        assert_dropped(&format!("<iq{}><x/></iq>", attrs(20_000)), Limit::Attributes(MAX_ATTRIBUTES));
        // '=' inside values does not count.
        stanza(&format!("<message a='{}'/>", "=".repeat(1000)));

        let decls = |n: usize| (0..n).map(|i| format!(" xmlns:p{i}='urn:x:{i}'")).collect::<String>();
        stanza(&format!("<message><x{}/></message>", decls(MAX_NAMESPACE_DECLARATIONS)));
        let d = assert_dropped(
            &format!("<iq type='set' id='n'><x{}/></iq>", decls(MAX_NAMESPACE_DECLARATIONS + 1)),
            Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS),
        );
        assert_eq!((d.name.as_str(), d.id.as_deref()), ("iq", Some("n")));
        let d = assert_dropped(
            &format!("<iq type='set' id='n2'{}/>", decls(MAX_NAMESPACE_DECLARATIONS + 1)),
            Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS),
        );
        assert_eq!(d.id.as_deref(), Some("n2"));
    }

    #[test]
    fn wide_stanzas_are_dropped_past_the_children_limit() {
        let wide = |n: usize| format!("<message id='w'><x>{}</x></message>", "<a/>".repeat(n));
        let ok = stanza(&wide(MAX_CHILDREN));
        assert_eq!(ok.elements().next().unwrap().elements().count(), MAX_CHILDREN);
        let d = assert_dropped(&wide(MAX_CHILDREN + 1), Limit::Children(MAX_CHILDREN));
        assert_eq!(d.id.as_deref(), Some("w"));
        // Children of the stanza itself count too; text between them does not.
        assert_dropped(
            &format!("<message>{}</message>", "t<a/>".repeat(MAX_CHILDREN + 1)),
            Limit::Children(MAX_CHILDREN),
        );
    }

    #[test]
    fn dropped_stanzas_do_not_depend_on_chunking() {
        let input = format!(
            "{HEADER}<message id='1'>{}</message>{PING}<iq id='2'><x{}/></iq><presence/>",
            nested(500),
            (0..100).map(|i| format!(" a{i}='>'")).collect::<String>()
        );
        let (reference, err) = run(input.as_bytes(), || usize::MAX);
        assert_eq!(err, None);
        assert_eq!(reference.iter().filter(|e| matches!(e, StreamEvent::Dropped(_))).count(), 2);
        for size in [1, 2, 3, 7, 64, 1000] {
            assert_eq!(run(input.as_bytes(), || size), (reference.clone(), None), "chunks of {size}");
        }
    }

    #[test]
    fn attributes_in_other_namespaces_are_left_out() {
        let el =
            parse_element(b"<message xml:lang='en'><foo:bar xmlns:foo='urn:x' foo:a='1' b='2'/></message>").unwrap();
        assert_eq!(el.attr("xml:lang"), Some("en"));
        let child = el.elements().next().unwrap();
        assert_eq!(child.attrs, vec![("b".to_owned(), "2".to_owned())]);
        assert_eq!(parse_element(child.to_xml().as_bytes()).unwrap(), *child);
        // An undeclared prefix is still an error.
        assert!(parse_element(b"<a p:b='1'/>").is_err());
    }

    #[test]
    fn names_must_be_xml_names() {
        for bad in ["<a$b/>", "<a:b:c/>", "<1a/>", "<-a/>", "<a b$='1'/>", "<a :b='1'/>", "<a b:='1'/>"] {
            assert!(matches!(parse_element(bad.as_bytes()), Err(XmlError::Malformed(_))), "{bad}");
        }
        for good in ["<a.b-c_d/>", "<_x/>", "<名前 属性='1'/>", "<a xml:lang='en'/>"] {
            assert!(parse_element(good.as_bytes()).is_ok(), "{good}");
        }
    }

    #[test]
    fn namespace_names_are_unescaped_like_attribute_values() {
        let el = stanza("<iq type='get' id='n1'><query xmlns='urn:x:a&amp;b&#x3e;c&gt;'/></iq>");
        let q = el.elements().next().unwrap();
        assert_eq!(q.ns, "urn:x:a&b>c>");
        // ...so that what we write reads back the same.
        assert_eq!(parse_element(q.to_xml().as_bytes()).unwrap(), *q);
    }

    #[test]
    fn the_header_and_standalone_elements_obey_the_limits() {
        let decls = (0..MAX_NAMESPACE_DECLARATIONS).map(|i| format!(" xmlns:p{i}='urn:x:{i}'")).collect::<String>();
        let header =
            format!("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'{decls}>");
        assert_eq!(error(&header), XmlError::Limit(Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS)));
        assert_eq!(error(&header).condition(), "policy-violation");
        let deep = nested(100_000);
        assert_eq!(parse_element(deep.as_bytes()), Err(XmlError::Limit(Limit::Depth(MAX_DEPTH))));
        assert!(parse_element(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert!(parse_element(nested(MAX_DEPTH + 1).as_bytes()).is_err());
    }

    #[test]
    fn round_trips_real_stanzas() {
        let vectors = [
            "<iq type='set' id='offer1' to='receiver@jabber.org/resource'>\
               <si xmlns='http://jabber.org/protocol/si' id='a0' mime-type='text/plain'\
                   profile='http://jabber.org/protocol/si/profile/file-transfer'>\
                 <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='test.txt' size='1022'>\
                   <desc>This is a test. If this were a real file...</desc><range/></file>\
                 <feature xmlns='http://jabber.org/protocol/feature-neg'>\
                   <x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'>\
                     <option><value>http://jabber.org/protocol/bytestreams</value></option>\
                     <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si></iq>",
            "<iq type='set' from='requester@example.com/foo' to='target@example.org/bar' id='hu3vax16'>\
               <query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46' mode='tcp'>\
                 <streamhost jid='requester@example.com/foo' host='192.168.4.1' port='5086'/>\
                 <streamhost jid='proxy.example.net' host='24.24.24.1' zeroconf='_jabber.bytestreams'/></query></iq>",
            "<message to='a@b' type='chat' xml:lang='en'><body>&lt;&amp;&gt;&apos;&quot; \r\n\tdone</body>\
               <stream:error/><thread>t&#13;1</thread></message>",
        ];
        for v in vectors {
            let first = stanza(v);
            let written = write_stanza(&first);
            assert!(written.starts_with(&format!("<{} ", first.name)), "{written}");
            assert_eq!(stanza(&written), first, "{written}");
        }
        let m = stanza(vectors[2]);
        assert_eq!(m.child_text("body", ns::CLIENT).as_deref(), Some("<&>'\" \n\tdone"));
        assert_eq!(m.child_text("thread", ns::CLIENT).as_deref(), Some("t\r1"));
    }

    #[test]
    fn standalone_elements() {
        let e =
            parse_element(b"<?xml version='1.0'?>\n<!-- c --><a xmlns='urn:a' k='&lt;'><b:c xmlns:b='urn:b'/>x</a>\n ")
                .expect("parses");
        assert!(e.is("a", "urn:a") && e.child("c", "urn:b").is_some());
        assert_eq!((e.attr("k"), e.text().as_str()), (Some("<"), "x"));
        assert_eq!("<iq/>".parse::<Element>(), Ok(Element::new("iq", "")));
        assert!(matches!(parse_element(b"<a/>junk"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_element(b"<a/><b/>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_element(b"<a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_element(b""), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_element(b"<a><p:b/></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_element(b"<!DOCTYPE a><a/>"), Err(XmlError::Restricted(_))));
        assert!(matches!(parse_element(b"<a><?pi x?></a>"), Err(XmlError::Restricted(_))));
    }

    #[test]
    fn writers() {
        assert_eq!(
            open_stream("ex'ample.com", Some("me@ex.com")),
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             to='ex&apos;ample.com' from='me@ex.com' version='1.0' xml:lang='en'>"
        );
        let h = header(&open_stream("example.com", None));
        assert_eq!(
            h.attrs,
            vec![
                ("to".into(), "example.com".into()),
                ("version".into(), "1.0".into()),
                ("xml:lang".into(), "en".into())
            ]
        );
        let err = stream_error("policy-violation", Some("too <big>"));
        assert_eq!(
            err,
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too &lt;big&gt;</text></stream:error>"
        );
        let e = stanza(&err);
        assert!(e.is("error", ns::STREAM) && e.child("policy-violation", ns::STREAM_ERRORS).is_some());
        assert_eq!(
            stream_error("conflict", None),
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
        );
        assert_eq!(write_stanza(&Element::new("presence", ns::CLIENT)), "<presence/>");
        assert_eq!(XmlError::TooLarge { limit: 1 }.condition(), "policy-violation");
        assert_eq!(format!("{}{CLOSE_STREAM}", open_stream("a", None)).matches("stream:stream").count(), 2);
    }
}
