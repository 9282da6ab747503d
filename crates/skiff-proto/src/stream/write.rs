//! What we write on the stream: its opening, its close, a stream error, a stanza.

use super::*;

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
