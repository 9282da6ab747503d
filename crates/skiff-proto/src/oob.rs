//! XEP-0066: Out of Band Data.
//!
//! `jabber:iq:oob` asks the receiver to fetch a URL (answered only once the whole file
//! is fetched; inside SI it carries the `sid`). `jabber:x:oob` carries a URL in a
//! message: how HTTP Upload (XEP-0363) links arrive from Conversations, Gajim, Dino.

use crate::error::{expect, ParseError};
use crate::ns;
use crate::xml::Element;

/// The trimmed, non-empty `<url/>` and the optional `<desc/>` of `el`.
fn url_desc(el: &Element, element: &'static str, ns: &str) -> Result<(String, Option<String>), ParseError> {
    let url = el.child_text("url", ns).ok_or(ParseError::MissingChild { element, child: "url" })?;
    let url = url.trim();
    if url.is_empty() {
        return Err(ParseError::invalid(element, "empty url"));
    }
    Ok((url.to_owned(), el.child_text("desc", ns)))
}

fn with_url_desc(el: Element, url: &str, desc: Option<&str>) -> Element {
    let ns = el.ns.clone();
    let desc = desc.map(|d| Element::new("desc", ns.as_str()).with_text(d));
    el.with_child(Element::new("url", ns.as_str()).with_text(url)).with_children(desc)
}

/// `<query xmlns='jabber:iq:oob' [sid]><url/>[<desc/>]</query>` (IQ-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IqOob {
    pub url: String,
    pub desc: Option<String>,
    /// Present when the query is the stream of an SI offer.
    pub sid: Option<String>,
}

impl TryFrom<&Element> for IqOob {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::IQ_OOB)?;
        let (url, desc) = url_desc(el, "query", ns::IQ_OOB)?;
        Ok(IqOob { url, desc, sid: el.attr("sid").map(str::to_owned) })
    }
}

impl From<&IqOob> for Element {
    fn from(o: &IqOob) -> Element {
        let query = Element::new("query", ns::IQ_OOB).with_opt_attr("sid", o.sid.as_deref());
        with_url_desc(query, &o.url, o.desc.as_deref())
    }
}

impl From<IqOob> for Element {
    fn from(o: IqOob) -> Element {
        Element::from(&o)
    }
}

/// `<x xmlns='jabber:x:oob'><url/>[<desc/>]</x>` (in a message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XOob {
    pub url: String,
    pub desc: Option<String>,
}

impl TryFrom<&Element> for XOob {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "x", ns::X_OOB)?;
        let (url, desc) = url_desc(el, "x", ns::X_OOB)?;
        Ok(XOob { url, desc })
    }
}

impl From<&XOob> for Element {
    fn from(o: &XOob) -> Element {
        with_url_desc(Element::new("x", ns::X_OOB), &o.url, o.desc.as_deref())
    }
}

impl From<XOob> for Element {
    fn from(o: XOob) -> Element {
        Element::from(&o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn iq_round_trip() {
        let xml = "<query xmlns='jabber:iq:oob' sid='s1'><url>http://example.com/a%20b.txt</url><desc>A &amp; B</desc></query>";
        let o = IqOob::try_from(&el(xml)).unwrap();
        assert_eq!(
            o,
            IqOob { url: "http://example.com/a%20b.txt".into(), desc: Some("A & B".into()), sid: Some("s1".into()) }
        );
        assert_eq!(Element::from(&o), el(xml));
        let bare = "<query xmlns='jabber:iq:oob'><url>http://h/f</url></query>";
        assert_eq!(Element::from(IqOob::try_from(&el(bare)).unwrap()), el(bare));
    }

    #[test]
    fn x_round_trip() {
        let xml = "<x xmlns='jabber:x:oob'><url>https://upload.example.org/abc/photo.jpg</url></x>";
        let o = XOob::try_from(&el(xml)).unwrap();
        assert_eq!(o, XOob { url: "https://upload.example.org/abc/photo.jpg".into(), desc: None });
        assert_eq!(Element::from(o), el(xml));
    }

    #[test]
    fn url_is_trimmed() {
        let o = XOob::try_from(&el("<x xmlns='jabber:x:oob'><url>\n  https://h/f\n</url></x>")).unwrap();
        assert_eq!(o.url, "https://h/f");
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            IqOob::try_from(&el("<query xmlns='jabber:iq:oob'><desc>d</desc></query>")),
            Err(ParseError::MissingChild { element: "query", child: "url" })
        );
        assert_eq!(
            XOob::try_from(&el("<x xmlns='jabber:x:oob'><url> </url></x>")),
            Err(ParseError::invalid("x", "empty url"))
        );
        assert!(XOob::try_from(&el("<query xmlns='jabber:iq:oob'/>")).unwrap_err().is_not_mine());
        assert!(IqOob::try_from(&el("<x xmlns='jabber:x:oob'/>")).unwrap_err().is_not_mine());
    }
}
