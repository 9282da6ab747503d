//! XEP-0261: Jingle In-Band Bytestreams, the transport `<transport
//! xmlns='urn:xmpp:jingle:transports:ibb:1' block-size sid stanza/>`. The data then
//! flows as XEP-0047 (`crate::ibb`) with that `sid`; the responder may answer a
//! smaller block size in its `session-accept` or `transport-accept`, which both use.

use crate::error::{expect, req_parse, ParseError};
use crate::ns;
use crate::xml::Element;

/// The in-band transport of a content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub sid: String,
    /// Bytes per block before base64 (1 to 65535).
    pub block_size: u16,
    /// Data in IQs (`stanza='iq'`, the default and all Skiff sends) or in messages.
    pub stanza_iq: bool,
}

impl TryFrom<&Element> for Transport {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Transport, ParseError> {
        expect(el, "transport", ns::JINGLE_IBB)?;
        let sid = crate::jingle::id_attr(el, "transport", "sid")?;
        let block_size: u16 = req_parse(el, "transport", "block-size")?;
        if block_size == 0 {
            return Err(ParseError::invalid("transport", "block-size must be at least 1"));
        }
        let stanza_iq = match el.attr("stanza") {
            None | Some("iq") => true,
            Some("message") => false,
            Some(other) => return Err(ParseError::invalid("transport", format!("unknown stanza '{other}'"))),
        };
        Ok(Transport { sid, block_size, stanza_iq })
    }
}

impl From<&Transport> for Element {
    fn from(t: &Transport) -> Element {
        let el = Element::new("transport", ns::JINGLE_IBB)
            .with_attr("block-size", t.block_size.to_string())
            .with_attr("sid", t.sid.as_str());
        if t.stanza_iq {
            el
        } else {
            el.with_attr("stanza", "message")
        }
    }
}
