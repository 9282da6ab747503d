//! RFC 6120 4.9 stream errors: `<stream:error>` parsed into plain words.

use crate::ns;
use crate::xml::Element;

/// A stream error received from (or sent to) the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The defined condition, e.g. `conflict`, `policy-violation`.
    pub condition: String,
    pub text: Option<String>,
}

impl StreamError {
    /// Reads a `<stream:error/>`; `None` when `el` is something else.
    pub fn from_element(el: &Element) -> Option<StreamError> {
        if !el.is("error", ns::STREAM) {
            return None;
        }
        let condition = el
            .elements()
            .find(|e| e.ns == ns::STREAM_ERRORS && e.name != "text")
            .map(|e| e.name.clone())
            .unwrap_or_else(|| "undefined-condition".to_owned());
        let text = el.child("text", ns::STREAM_ERRORS).map(Element::text).filter(|t| !t.is_empty());
        Some(StreamError { condition, text })
    }

    /// What the condition means for a user.
    pub fn explain(&self) -> &'static str {
        match self.condition.as_str() {
            "conflict" => "another client signed in with the same resource",
            "connection-timeout" => "the server closed an idle connection",
            "host-unknown" => "the server does not serve this domain",
            "not-authorized" => "the server refused the sign-in",
            "policy-violation" => "the server says a local policy was broken (often a stanza too large or too fast)",
            "resource-constraint" => "the server is short of resources",
            "system-shutdown" => "the server is shutting down",
            "see-other-host" => "the server redirects to another host",
            "not-well-formed" | "bad-format" | "invalid-xml" => "the server could not read what this client sent",
            "restricted-xml" => "the server refused XML it does not allow",
            "reset" => "the server reset the stream",
            "internal-server-error" => "the server had an internal error",
            "remote-connection-failed" => "the server could not reach another server it needed",
            "unsupported-version" => "the server does not support this version of XMPP",
            _ => "the server ended the stream",
        }
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.explain(), self.condition)?;
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_explains() {
        let el: Element = "<error xmlns='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></error>"
            .parse()
            .unwrap();
        let e = StreamError::from_element(&el).unwrap();
        assert_eq!(e.condition, "conflict");
        assert_eq!(
            e.to_string(),
            "another client signed in with the same resource (conflict): Replaced by new connection"
        );
        let other: Element = "<error xmlns='jabber:client'/>".parse().unwrap();
        assert_eq!(StreamError::from_element(&other), None);
    }
}
