//! A small namespace-aware XML element tree: what stanzas are made of.
//!
//! Names are stored as (namespace, local name); prefixes never survive parsing, so two
//! documents that differ only in prefixes give equal trees. Serialisation writes
//! `xmlns` only where an element's namespace differs from its parent's, and escapes
//! text and attribute values. Parsing lives in [`crate::stream`].

use std::fmt;

/// A child of an element: another element or character data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An XML element with its namespace resolved.
///
/// Equality is XML equality: attribute order does not matter.
#[derive(Clone, Debug, Eq)]
pub struct Element {
    /// Local name, without prefix.
    pub name: String,
    /// Namespace URI (empty string for no namespace).
    pub ns: String,
    /// Attributes in document order. Unqualified attributes by local name; `xml:lang`
    /// is kept as `xml:lang`. Namespace declarations are not attributes.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl PartialEq for Element {
    fn eq(&self, other: &Element) -> bool {
        self.name == other.name
            && self.ns == other.ns
            && self.attrs.len() == other.attrs.len()
            && self.attrs.iter().all(|(k, v)| other.attr(k) == Some(v.as_str()))
            && self.children == other.children
    }
}

impl Element {
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Element { name: name.into(), ns: ns.into(), attrs: Vec::new(), children: Vec::new() }
    }

    /// True when the element has this local name and namespace.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets (or replaces) an attribute.
    pub fn set_attr(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let pos = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(pos).1)
    }

    /// Builder form of [`Element::set_attr`].
    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Sets the attribute only when `value` is `Some`.
    pub fn with_opt_attr(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.with_attr(name, v),
            None => self,
        }
    }

    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    pub fn with_children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children.extend(children.into_iter().map(Node::Element));
        self
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.push_text(text);
        self
    }

    pub fn push_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        if let Some(Node::Text(last)) = self.children.last_mut() {
            last.push_str(&text);
        } else {
            self.children.push(Node::Text(text));
        }
    }

    /// Child elements, in order (text nodes skipped).
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this name and namespace.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(name, ns))
    }

    pub fn child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    /// All child elements with this name and namespace.
    pub fn children_named<'a>(&'a self, name: &'a str, ns: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(name, ns))
    }

    /// The first child element in namespace `ns`, whatever its name.
    pub fn child_in(&self, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.ns == ns)
    }

    /// Concatenated character data of this element (not of descendants).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }

    /// Text of the first child with this name and namespace.
    pub fn child_text(&self, name: &str, ns: &str) -> Option<String> {
        self.child(name, ns).map(Element::text)
    }

    /// Serialises the element as a standalone fragment (with its `xmlns`).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128);
        self.write_to(&mut out, None);
        out
    }

    /// Serialises the element inside a parent whose namespace is `parent_ns`: the
    /// `xmlns` attribute is written only when it differs. Stanzas on a stream whose
    /// default namespace is `jabber:client` are written with `Some("jabber:client")`.
    pub fn write_to(&self, out: &mut String, parent_ns: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        if parent_ns != Some(self.ns.as_str()) {
            out.push_str(" xmlns='");
            escape_into(out, &self.ns, true);
            out.push('\'');
        }
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape_into(out, v, true);
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write_to(out, Some(&self.ns)),
                Node::Text(t) => escape_into(out, t, false),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xml())
    }
}

impl std::str::FromStr for Element {
    type Err = crate::stream::XmlError;

    /// Parses one standalone element (a test vector, a stored stanza).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::stream::parse_element(s.as_bytes())
    }
}

/// Escapes XML character data (`attr = false`) or a single-quoted attribute value.
pub fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' if attr => out.push_str("&apos;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' if attr => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_namespaces_only_where_they_change() {
        let e = Element::new("iq", "jabber:client")
            .with_attr("type", "get")
            .with_child(Element::new("query", "jabber:iq:roster"))
            .with_child(Element::new("x", "jabber:client").with_text("a<b&'c'"));
        assert_eq!(
            e.to_xml(),
            "<iq xmlns='jabber:client' type='get'><query xmlns='jabber:iq:roster'/><x>a&lt;b&amp;'c'</x></iq>"
        );
        let mut s = String::new();
        e.write_to(&mut s, Some("jabber:client"));
        assert!(s.starts_with("<iq type='get'>"));
    }

    #[test]
    fn escapes_attribute_values() {
        let e = Element::new("a", "urn:x").with_attr("v", "'\"<&>\n");
        assert_eq!(e.to_xml(), "<a xmlns='urn:x' v='&apos;&quot;&lt;&amp;&gt;&#10;'/>");
    }

    #[test]
    fn equality_ignores_attribute_order() {
        let a = Element::new("a", "urn:x").with_attr("k", "1").with_attr("l", "2");
        let b = Element::new("a", "urn:x").with_attr("l", "2").with_attr("k", "1");
        assert_eq!(a, b);
        assert_ne!(a, Element::new("a", "urn:x").with_attr("k", "1").with_attr("l", "3"));
        assert_ne!(a, Element::new("a", "urn:x").with_attr("k", "1"));
    }

    #[test]
    fn accessors() {
        let mut e = Element::new("a", "urn:x").with_attr("k", "1").with_text("he").with_text("llo");
        e.set_attr("k", "2");
        assert_eq!(e.attr("k"), Some("2"));
        assert_eq!(e.text(), "hello");
        assert_eq!(e.children.len(), 1);
        e.push_child(Element::new("b", "urn:y"));
        assert!(e.child("b", "urn:y").is_some());
        assert!(e.child("b", "urn:x").is_none());
        assert_eq!(e.remove_attr("k").as_deref(), Some("2"));
        assert_eq!(e.attr("k"), None);
    }
}
