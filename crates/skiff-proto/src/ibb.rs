//! XEP-0047: In-Band Bytestreams.
//!
//! `<open block-size sid stanza/>`, `<data seq sid>base64</data>`, `<close sid/>`, plus
//! the rules around them: a 16-bit sequence number per sender that wraps from 65535 to
//! 0, and blocks no larger than the negotiated block-size (counted before base64).
//!
//! QXmpp's and Gajim's receivers do not wrap the sequence number, so a transfer of more
//! than [`SEQ_SPACE`] blocks fails against them: prefer large blocks ([`blocks_for`]).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use crate::error::{expect, req_attr, req_parse, ParseError};
use crate::ns;
use crate::xml::Element;

/// The block-size XEP-0047 recommends.
pub const DEFAULT_BLOCK_SIZE: u16 = 4096;
/// How many blocks fit before the sequence number wraps.
pub const SEQ_SPACE: u64 = 1 << 16;

/// Decodes with or without padding (peers differ); whitespace is removed beforehand.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The largest decoded payload a block may carry: the block-size counts bytes before
/// base64. (libpurple declares the base64 size instead; its blocks are then smaller than
/// declared, which is accepted.)
pub fn max_data_len(block_size: u16) -> usize {
    usize::from(block_size)
}

/// How many blocks a payload of `len` bytes needs; more than [`SEQ_SPACE`] means the
/// sequence number wraps.
pub fn blocks_for(len: u64, block_size: u16) -> u64 {
    len.div_ceil(u64::from(block_size.max(1)))
}

/// Which stanza carries the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StanzaKind {
    #[default]
    Iq,
    Message,
}

impl StanzaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaKind::Iq => "iq",
            StanzaKind::Message => "message",
        }
    }
}

/// `<open/>` (IQ-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub sid: String,
    /// 1..=65535 bytes, before base64.
    pub block_size: u16,
    pub stanza: StanzaKind,
}

impl TryFrom<&Element> for Open {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "open", ns::IBB)?;
        let sid = req_attr(el, "open", "sid")?.to_owned();
        let block_size: u64 = req_parse(el, "open", "block-size")?;
        let block_size = u16::try_from(block_size)
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| ParseError::invalid("open", format!("block-size {block_size} is not within 1..=65535")))?;
        let stanza = match el.attr("stanza") {
            None | Some("iq") => StanzaKind::Iq,
            Some("message") => StanzaKind::Message,
            Some(other) => return Err(ParseError::invalid("open", format!("unknown stanza kind '{other}'"))),
        };
        Ok(Open { sid, block_size, stanza })
    }
}

impl From<&Open> for Element {
    fn from(o: &Open) -> Element {
        Element::new("open", ns::IBB)
            .with_attr("block-size", o.block_size.to_string())
            .with_attr("sid", o.sid.as_str())
            .with_attr("stanza", o.stanza.as_str())
    }
}

/// `<data/>`: one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    pub sid: String,
    pub seq: u16,
    /// Decoded bytes.
    pub data: Vec<u8>,
}

impl Data {
    /// Checks the block against the negotiated block-size.
    pub fn check_len(&self, block_size: u16) -> Result<(), ParseError> {
        if self.data.len() > max_data_len(block_size) {
            return Err(ParseError::invalid(
                "data",
                format!("a block of {} bytes exceeds the block-size {block_size}", self.data.len()),
            ));
        }
        Ok(())
    }
}

impl TryFrom<&Element> for Data {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "data", ns::IBB)?;
        let sid = req_attr(el, "data", "sid")?.to_owned();
        let seq = req_parse(el, "data", "seq")?;
        let mut b64 = el.text().into_bytes();
        b64.retain(|b| !b.is_ascii_whitespace());
        let data = LENIENT.decode(&b64).map_err(|e| ParseError::invalid("data", format!("bad base64: {e}")))?;
        Ok(Data { sid, seq, data })
    }
}

impl From<&Data> for Element {
    fn from(d: &Data) -> Element {
        Element::new("data", ns::IBB)
            .with_attr("seq", d.seq.to_string())
            .with_attr("sid", d.sid.as_str())
            .with_text(STANDARD.encode(&d.data))
    }
}

/// `<close/>` (IQ-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub sid: String,
}

impl TryFrom<&Element> for Close {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "close", ns::IBB)?;
        Ok(Close { sid: req_attr(el, "close", "sid")?.to_owned() })
    }
}

impl From<&Close> for Element {
    fn from(c: &Close) -> Element {
        Element::new("close", ns::IBB).with_attr("sid", c.sid.as_str())
    }
}

/// Any IBB payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IbbPayload {
    Open(Open),
    Data(Data),
    Close(Close),
}

impl IbbPayload {
    pub fn sid(&self) -> &str {
        match self {
            IbbPayload::Open(o) => &o.sid,
            IbbPayload::Data(d) => &d.sid,
            IbbPayload::Close(c) => &c.sid,
        }
    }
}

impl TryFrom<&Element> for IbbPayload {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        match (el.ns == ns::IBB).then_some(el.name.as_str()) {
            Some("open") => Open::try_from(el).map(IbbPayload::Open),
            Some("data") => Data::try_from(el).map(IbbPayload::Data),
            Some("close") => Close::try_from(el).map(IbbPayload::Close),
            _ => Err(ParseError::NotMine { expected: "open|data|close", found: format!("{{{}}}{}", el.ns, el.name) }),
        }
    }
}

impl From<&IbbPayload> for Element {
    fn from(p: &IbbPayload) -> Element {
        match p {
            IbbPayload::Open(x) => x.into(),
            IbbPayload::Data(x) => x.into(),
            IbbPayload::Close(x) => x.into(),
        }
    }
}

impl From<IbbPayload> for Element {
    fn from(p: IbbPayload) -> Element {
        Element::from(&p)
    }
}

/// The sender's sequence numbers: 0, 1, …, 65535, 0, …
#[derive(Debug, Clone, Default)]
pub struct SeqCounter {
    next: u16,
}

impl SeqCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number for the next block.
    #[allow(clippy::should_implement_trait)] // endless: an Iterator would only add unwraps
    pub fn next(&mut self) -> u16 {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        seq
    }
}

/// A sequence number the receiver must not process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SeqError {
    /// Close the stream.
    #[error("in-band block out of order: expected sequence number {expected}, got {got}")]
    OutOfOrder { expected: u16, got: u16 },
    /// The previous block again: answer `unexpected-request`.
    #[error("in-band block {0} received twice")]
    Reused(u16),
}

/// The receiver's check of sequence numbers (wrapping 65535 to 0).
#[derive(Debug, Clone, Default)]
pub struct SeqCheck {
    expected: u16,
    started: bool,
}

impl SeqCheck {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number the next block must carry.
    pub fn expected(&self) -> u16 {
        self.expected
    }

    /// Accepts `seq` if it is the expected one.
    pub fn check(&mut self, seq: u16) -> Result<(), SeqError> {
        if seq == self.expected {
            self.expected = self.expected.wrapping_add(1);
            self.started = true;
            Ok(())
        } else if self.started && seq == self.expected.wrapping_sub(1) {
            Err(SeqError::Reused(seq))
        } else {
            Err(SeqError::OutOfOrder { expected: self.expected, got: seq })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    fn round_trip(xml: &str) -> IbbPayload {
        let p = IbbPayload::try_from(&el(xml)).unwrap();
        assert_eq!(Element::from(&p), el(xml));
        p
    }

    #[test]
    fn round_trips() {
        let open =
            round_trip("<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='i781hf64' stanza='iq'/>");
        assert_eq!(open, IbbPayload::Open(Open { sid: "i781hf64".into(), block_size: 4096, stanza: StanzaKind::Iq }));
        let open =
            round_trip("<open xmlns='http://jabber.org/protocol/ibb' block-size='65535' sid='s' stanza='message'/>");
        assert!(matches!(open, IbbPayload::Open(Open { block_size: 65535, stanza: StanzaKind::Message, .. })));
        let data = round_trip("<data xmlns='http://jabber.org/protocol/ibb' seq='65535' sid='s'>aGVsbG8=</data>");
        assert_eq!(data, IbbPayload::Data(Data { sid: "s".into(), seq: 65535, data: b"hello".to_vec() }));
        let close = round_trip("<close xmlns='http://jabber.org/protocol/ibb' sid='s'/>");
        assert_eq!(close.sid(), "s");
    }

    #[test]
    fn stanza_defaults_to_iq() {
        let o = Open::try_from(&el("<open xmlns='http://jabber.org/protocol/ibb' block-size='1' sid='s'/>")).unwrap();
        assert_eq!(o.stanza, StanzaKind::Iq);
    }

    #[test]
    fn base64_with_whitespace_and_without_padding() {
        let d = Data::try_from(&el(
            "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'>aGVs\nbG8g\r\n d29y bGQ=\n</data>",
        ))
        .unwrap();
        assert_eq!(d.data, b"hello world");
        let d =
            Data::try_from(&el("<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'>aGVsbG8</data>")).unwrap();
        assert_eq!(d.data, b"hello");
        let d = Data::try_from(&el("<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'/>")).unwrap();
        assert!(d.data.is_empty());
    }

    #[test]
    fn bad_input() {
        let open = |attrs: &str| {
            Open::try_from(&el(&format!("<open xmlns='http://jabber.org/protocol/ibb' sid='s' {attrs}/>")))
        };
        assert_eq!(open("block-size='0'"), Err(ParseError::invalid("open", "block-size 0 is not within 1..=65535")));
        assert_eq!(
            open("block-size='65536'"),
            Err(ParseError::invalid("open", "block-size 65536 is not within 1..=65535"))
        );
        assert_eq!(
            open("block-size='-5'"),
            Err(ParseError::invalid("open", "attribute 'block-size' has a bad value '-5'"))
        );
        assert_eq!(open(""), Err(ParseError::MissingAttr { element: "open", attr: "block-size" }));
        assert_eq!(
            open("block-size='1' stanza='presence'"),
            Err(ParseError::invalid("open", "unknown stanza kind 'presence'"))
        );
        assert_eq!(
            Data::try_from(&el("<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s'>a*b=</data>")),
            Err(ParseError::invalid("data", "bad base64: Invalid symbol 42, offset 1."))
        );
        assert_eq!(
            Data::try_from(&el("<data xmlns='http://jabber.org/protocol/ibb' seq='65536' sid='s'>AA==</data>")),
            Err(ParseError::invalid("data", "attribute 'seq' has a bad value '65536'"))
        );
        assert_eq!(
            Data::try_from(&el("<data xmlns='http://jabber.org/protocol/ibb' sid='s'>AA==</data>")),
            Err(ParseError::MissingAttr { element: "data", attr: "seq" })
        );
        assert_eq!(
            IbbPayload::try_from(&el("<close xmlns='http://jabber.org/protocol/ibb'/>")),
            Err(ParseError::MissingAttr { element: "close", attr: "sid" })
        );
        assert!(IbbPayload::try_from(&el("<open xmlns='http://jabber.org/protocol/si'/>")).unwrap_err().is_not_mine());
        assert!(IbbPayload::try_from(&el("<ping xmlns='http://jabber.org/protocol/ibb'/>")).unwrap_err().is_not_mine());
    }

    #[test]
    fn block_size_rule() {
        let d = Data { sid: "s".into(), seq: 0, data: vec![0; 4097] };
        assert_eq!(
            d.check_len(4096),
            Err(ParseError::invalid("data", "a block of 4097 bytes exceeds the block-size 4096"))
        );
        assert_eq!(d.check_len(65535), Ok(()));
        // libpurple counts base64 size: its blocks are smaller than declared, accepted.
        let d = Data { data: vec![0; 3072], ..d };
        assert_eq!(d.check_len(4096), Ok(()));
        assert_eq!(max_data_len(4096), 4096);
        assert_eq!(blocks_for(0, 4096), 0);
        assert_eq!(blocks_for(4097, 4096), 2);
        assert!(blocks_for(1 << 30, 4096) > SEQ_SPACE);
        assert!(blocks_for(1 << 30, 65535) <= SEQ_SPACE);
    }

    #[test]
    fn seq_counter_wraps() {
        let mut c = SeqCounter::new();
        assert_eq!((c.next(), c.next()), (0, 1));
        let mut c = SeqCounter { next: 65535 };
        assert_eq!((c.next(), c.next()), (65535, 0));
    }

    #[test]
    fn seq_check() {
        let mut s = SeqCheck::new();
        assert_eq!(s.check(1), Err(SeqError::OutOfOrder { expected: 0, got: 1 }));
        // 65535 before anything is out of order, not "reused".
        assert_eq!(s.check(65535), Err(SeqError::OutOfOrder { expected: 0, got: 65535 }));
        assert_eq!(s.check(0), Ok(()));
        assert_eq!(s.check(0), Err(SeqError::Reused(0)));
        assert_eq!(s.check(1), Ok(()));
        assert_eq!(s.check(3), Err(SeqError::OutOfOrder { expected: 2, got: 3 }));
        assert_eq!(s.expected(), 2);
        // Wrap-around passes.
        let mut s = SeqCheck { expected: 65534, started: true };
        assert_eq!(s.check(65534), Ok(()));
        assert_eq!(s.check(65535), Ok(()));
        assert_eq!(s.check(0), Ok(()));
        assert_eq!(s.check(0), Err(SeqError::Reused(0)));
        let mut s = SeqCheck { expected: 0, started: true };
        assert_eq!(s.check(65535), Err(SeqError::Reused(65535)));
    }
}
