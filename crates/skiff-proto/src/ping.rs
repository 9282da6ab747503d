//! XEP-0199 XMPP Ping: `<ping xmlns='urn:xmpp:ping'/>` in an IQ get.

use crate::ns;
use crate::xml::Element;

/// The ping payload.
pub fn ping() -> Element {
    Element::new("ping", ns::PING)
}

/// True when `el` is a ping payload.
pub fn is_ping(el: &Element) -> bool {
    el.is("ping", ns::PING)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ping_payload() {
        let el = super::ping();
        assert_eq!(el.to_xml(), "<ping xmlns='urn:xmpp:ping'/>");
        assert!(super::is_ping(&el));
        assert!(!super::is_ping(&crate::xml::Element::new("ping", "urn:other")));
    }
}
