//! XEP-0030: Service Discovery.
//!
//! A disco#info get and its result share `<query xmlns='http://jabber.org/protocol/disco#info'/>`:
//! the get has no children, the result lists identities, features and (XEP-0128)
//! extension forms. Same for disco#items. Skiff uses disco#info to check that a
//! resource speaks SI file transfer and to find SOCKS5 proxies and upload services.

use crate::dataforms::DataForm;
use crate::error::{expect, req_attr, ParseError};
use crate::ns;
use crate::xml::Element;

fn node_of(el: &Element) -> Option<String> {
    el.attr("node").map(str::to_owned)
}

/// A disco#info request (IQ-get).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoInfoQuery {
    pub node: Option<String>,
}

impl TryFrom<&Element> for DiscoInfoQuery {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::DISCO_INFO)?;
        if el.elements().next().is_some() {
            return Err(ParseError::invalid("query", "a disco#info request has no children"));
        }
        Ok(DiscoInfoQuery { node: node_of(el) })
    }
}

impl From<DiscoInfoQuery> for Element {
    fn from(q: DiscoInfoQuery) -> Element {
        Element::new("query", ns::DISCO_INFO).with_opt_attr("node", q.node)
    }
}

/// `<identity category type [name] [xml:lang]/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub category: String,
    /// The `type` attribute.
    pub kind: String,
    pub name: Option<String>,
    pub lang: Option<String>,
}

impl Identity {
    pub fn new(category: impl Into<String>, kind: impl Into<String>) -> Identity {
        Identity { category: category.into(), kind: kind.into(), name: None, lang: None }
    }
}

impl TryFrom<&Element> for Identity {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "identity", ns::DISCO_INFO)?;
        Ok(Identity {
            category: req_attr(el, "identity", "category")?.to_owned(),
            kind: req_attr(el, "identity", "type")?.to_owned(),
            name: el.attr("name").map(str::to_owned),
            lang: el.attr("xml:lang").map(str::to_owned),
        })
    }
}

impl From<&Identity> for Element {
    fn from(i: &Identity) -> Element {
        Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", i.category.as_str())
            .with_attr("type", i.kind.as_str())
            .with_opt_attr("name", i.name.as_deref())
            .with_opt_attr("xml:lang", i.lang.as_deref())
    }
}

/// A disco#info result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoInfoResult {
    pub node: Option<String>,
    pub identities: Vec<Identity>,
    /// Feature vars, in document order.
    pub features: Vec<String>,
    /// XEP-0128 extension forms.
    pub extensions: Vec<DataForm>,
}

impl DiscoInfoResult {
    pub fn has_feature(&self, var: &str) -> bool {
        self.features.iter().any(|f| f == var)
    }

    pub fn has_identity(&self, category: &str, kind: &str) -> bool {
        self.identities.iter().any(|i| i.category == category && i.kind == kind)
    }

    /// Whether this entity is a XEP-0065 proxy: the identity `proxy/bytestreams` (the
    /// XEP's rule) or the bytestreams feature (what Gajim, Conversations, Dino check).
    pub fn is_bytestreams_proxy(&self) -> bool {
        self.has_identity("proxy", "bytestreams") || self.has_feature(ns::BYTESTREAMS)
    }

    /// The extension form whose `FORM_TYPE` is `form_type`.
    pub fn extension(&self, form_type: &str) -> Option<&DataForm> {
        self.extensions.iter().find(|f| f.form_type.as_deref() == Some(form_type))
    }
}

impl TryFrom<&Element> for DiscoInfoResult {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::DISCO_INFO)?;
        let mut info = DiscoInfoResult { node: node_of(el), ..Default::default() };
        for child in el.elements() {
            if child.is("identity", ns::DISCO_INFO) {
                info.identities.push(Identity::try_from(child)?);
            } else if child.is("feature", ns::DISCO_INFO) {
                info.features.push(req_attr(child, "feature", "var")?.to_owned());
            } else if child.is("x", ns::DATA_FORMS) {
                info.extensions.push(DataForm::try_from(child)?);
            }
        }
        Ok(info)
    }
}

impl From<&DiscoInfoResult> for Element {
    fn from(info: &DiscoInfoResult) -> Element {
        Element::new("query", ns::DISCO_INFO)
            .with_opt_attr("node", info.node.as_deref())
            .with_children(info.identities.iter().map(Element::from))
            .with_children(
                info.features.iter().map(|f| Element::new("feature", ns::DISCO_INFO).with_attr("var", f.as_str())),
            )
            .with_children(info.extensions.iter().map(Element::from))
    }
}

impl From<DiscoInfoResult> for Element {
    fn from(info: DiscoInfoResult) -> Element {
        Element::from(&info)
    }
}

/// A disco#items request (IQ-get).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoItemsQuery {
    pub node: Option<String>,
}

impl TryFrom<&Element> for DiscoItemsQuery {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::DISCO_ITEMS)?;
        if el.elements().next().is_some() {
            return Err(ParseError::invalid("query", "a disco#items request has no children"));
        }
        Ok(DiscoItemsQuery { node: node_of(el) })
    }
}

impl From<DiscoItemsQuery> for Element {
    fn from(q: DiscoItemsQuery) -> Element {
        Element::new("query", ns::DISCO_ITEMS).with_opt_attr("node", q.node)
    }
}

/// `<item jid [node] [name]/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub jid: String,
    pub node: Option<String>,
    pub name: Option<String>,
}

impl TryFrom<&Element> for Item {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "item", ns::DISCO_ITEMS)?;
        Ok(Item {
            jid: req_attr(el, "item", "jid")?.to_owned(),
            node: node_of(el),
            name: el.attr("name").map(str::to_owned),
        })
    }
}

impl From<&Item> for Element {
    fn from(i: &Item) -> Element {
        Element::new("item", ns::DISCO_ITEMS)
            .with_attr("jid", i.jid.as_str())
            .with_opt_attr("node", i.node.as_deref())
            .with_opt_attr("name", i.name.as_deref())
    }
}

/// A disco#items result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoItemsResult {
    pub node: Option<String>,
    pub items: Vec<Item>,
}

impl TryFrom<&Element> for DiscoItemsResult {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::DISCO_ITEMS)?;
        let items = el.children_named("item", ns::DISCO_ITEMS).map(Item::try_from).collect::<Result<_, _>>()?;
        Ok(DiscoItemsResult { node: node_of(el), items })
    }
}

impl From<&DiscoItemsResult> for Element {
    fn from(r: &DiscoItemsResult) -> Element {
        Element::new("query", ns::DISCO_ITEMS)
            .with_opt_attr("node", r.node.as_deref())
            .with_children(r.items.iter().map(Element::from))
    }
}

impl From<DiscoItemsResult> for Element {
    fn from(r: DiscoItemsResult) -> Element {
        Element::from(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataforms::FormType;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn info_query_round_trip() {
        let xml = "<query xmlns='http://jabber.org/protocol/disco#info' node='n'/>";
        let q = DiscoInfoQuery::try_from(&el(xml)).unwrap();
        assert_eq!(q.node.as_deref(), Some("n"));
        assert_eq!(Element::from(q), el(xml));
        // A bare get also parses as an empty result.
        let r = DiscoInfoResult::try_from(&el("<query xmlns='http://jabber.org/protocol/disco#info'/>")).unwrap();
        assert_eq!(r, DiscoInfoResult::default());
    }

    #[test]
    fn info_result_round_trip() {
        let xml = "<query xmlns='http://jabber.org/protocol/disco#info'>\
            <identity category='proxy' type='bytestreams' name='SOCKS5 Bytestreams Service' xml:lang='en'/>\
            <feature var='http://jabber.org/protocol/bytestreams'/>\
            <feature var='http://jabber.org/protocol/disco#info'/>\
            <x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
            <field var='max-file-size'><value>5242880</value></field></x></query>";
        let info = DiscoInfoResult::try_from(&el(xml)).unwrap();
        assert!(info.has_identity("proxy", "bytestreams"));
        assert!(!info.has_identity("client", "pc"));
        assert!(info.has_feature(ns::BYTESTREAMS));
        assert!(!info.has_feature(ns::IBB));
        assert!(info.is_bytestreams_proxy());
        assert_eq!(info.identities[0].lang.as_deref(), Some("en"));
        let form = info.extension(ns::HTTP_UPLOAD).unwrap();
        assert_eq!(form.kind, FormType::Result);
        assert_eq!(form.field("max-file-size").unwrap().value(), Some("5242880"));
        assert_eq!(Element::from(&info), el(xml));
    }

    #[test]
    fn proxy_by_feature_only() {
        let info = DiscoInfoResult { features: vec![ns::BYTESTREAMS.into()], ..Default::default() };
        assert!(info.is_bytestreams_proxy());
        let info = DiscoInfoResult { identities: vec![Identity::new("server", "im")], ..Default::default() };
        assert!(!info.is_bytestreams_proxy());
    }

    #[test]
    fn items_from_seed() {
        // The Openfire answer in the seed document (whitespace and all).
        let xml = r#"<query xmlns="http://jabber.org/protocol/disco#items">
            <item jid="proxy.rabbitim.com" name="Socks 5 Bytestreams Proxy"/>
            <item jid="pubsub.rabbitim.com" name="Publish-Subscribe service"/>
            <item jid="conference.rabbitim.com" name="公共房间"/>
            <item jid="search.rabbitim.com" name="User Search"/>
        </query>"#;
        let r = DiscoItemsResult::try_from(&el(xml)).unwrap();
        assert_eq!(r.items.len(), 4);
        assert_eq!(r.items[0].jid, "proxy.rabbitim.com");
        assert_eq!(r.items[0].name.as_deref(), Some("Socks 5 Bytestreams Proxy"));
        assert_eq!(r.items[2].name.as_deref(), Some("公共房间"));
        assert_eq!(r.node, None);
        // The seed's request.
        let q = DiscoItemsQuery::try_from(&el(r#"<query xmlns="http://jabber.org/protocol/disco#items" />"#)).unwrap();
        assert_eq!(q, DiscoItemsQuery::default());
    }

    #[test]
    fn items_round_trip() {
        let xml = "<query xmlns='http://jabber.org/protocol/disco#items' node='music'>\
            <item jid='a.example' node='n1' name='A'/><item jid='b.example'/></query>";
        let r = DiscoItemsResult::try_from(&el(xml)).unwrap();
        assert_eq!(r.items[1], Item { jid: "b.example".into(), node: None, name: None });
        assert_eq!(Element::from(r), el(xml));
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            DiscoItemsResult::try_from(&el(
                "<query xmlns='http://jabber.org/protocol/disco#items'><item name='x'/></query>"
            )),
            Err(ParseError::MissingAttr { element: "item", attr: "jid" })
        );
        assert_eq!(
            DiscoInfoResult::try_from(&el(
                "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client'/></query>"
            )),
            Err(ParseError::MissingAttr { element: "identity", attr: "type" })
        );
        assert_eq!(
            DiscoInfoResult::try_from(&el("<query xmlns='http://jabber.org/protocol/disco#info'><feature/></query>")),
            Err(ParseError::MissingAttr { element: "feature", attr: "var" })
        );
        assert_eq!(
            DiscoInfoQuery::try_from(&el(
                "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/></query>"
            )),
            Err(ParseError::invalid("query", "a disco#info request has no children"))
        );
        assert!(DiscoInfoResult::try_from(&el("<query xmlns='http://jabber.org/protocol/disco#items'/>"))
            .unwrap_err()
            .is_not_mine());
        assert!(DiscoItemsQuery::try_from(&el("<query xmlns='http://jabber.org/protocol/disco#info'/>"))
            .unwrap_err()
            .is_not_mine());
    }
}
