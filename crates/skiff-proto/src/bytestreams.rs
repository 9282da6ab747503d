//! XEP-0065: SOCKS5 Bytestreams, the IQ payloads and the DST.ADDR hash.
//!
//! Every payload is `<query xmlns='http://jabber.org/protocol/bytestreams'/>`; which one
//! it is depends on the IQ type and the children, so [`BytestreamsPayload::parse`]
//! takes the IQ type. The SOCKS5 wire handshake is in [`crate::socks5`].

use sha1::{Digest, Sha1};

use crate::error::{expect, req_attr, req_parse, ParseError};
use crate::ns;
use crate::xml::Element;

/// DST.ADDR: lowercase hex SHA-1 of SID + requester JID + target JID (the JIDs exactly
/// as used in the IQ exchange, normalised).
pub fn dst_addr(sid: &str, requester: &str, target: &str) -> String {
    let mut h = Sha1::new();
    h.update(sid.as_bytes());
    h.update(requester.as_bytes());
    h.update(target.as_bytes());
    hex::encode(h.finalize())
}

fn query(sid: Option<&str>) -> Element {
    Element::new("query", ns::BYTESTREAMS).with_opt_attr("sid", sid)
}

fn hosts_of(el: &Element) -> Result<Vec<StreamHost>, ParseError> {
    el.children_named("streamhost", ns::BYTESTREAMS).map(StreamHost::try_from).collect()
}

/// `<streamhost jid host port/>`. The XEP lets `port` be absent (zeroconf); we need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHost {
    pub jid: String,
    pub host: String,
    pub port: u16,
}

impl TryFrom<&Element> for StreamHost {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "streamhost", ns::BYTESTREAMS)?;
        Ok(StreamHost {
            jid: req_attr(el, "streamhost", "jid")?.to_owned(),
            host: req_attr(el, "streamhost", "host")?.to_owned(),
            port: req_parse(el, "streamhost", "port")?,
        })
    }
}

impl From<&StreamHost> for Element {
    fn from(h: &StreamHost) -> Element {
        Element::new("streamhost", ns::BYTESTREAMS)
            .with_attr("jid", h.jid.as_str())
            .with_attr("host", h.host.as_str())
            .with_attr("port", h.port.to_string())
    }
}

/// The requester's candidates (IQ-set to the target), in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHosts {
    pub sid: String,
    /// TCP (`mode` absent or `tcp`); `false` would be UDP, which parsing rejects.
    pub mode_tcp: bool,
    pub hosts: Vec<StreamHost>,
}

impl TryFrom<&Element> for StreamHosts {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::BYTESTREAMS)?;
        let sid = req_attr(el, "query", "sid")?.to_owned();
        match el.attr("mode") {
            None | Some("tcp") => {}
            Some("udp") => return Err(ParseError::invalid("query", "UDP mode is not supported")),
            Some(m) => return Err(ParseError::invalid("query", format!("unknown mode '{m}'"))),
        }
        let hosts = hosts_of(el)?;
        if hosts.is_empty() {
            return Err(ParseError::MissingChild { element: "query", child: "streamhost" });
        }
        Ok(StreamHosts { sid, mode_tcp: true, hosts })
    }
}

impl From<&StreamHosts> for Element {
    fn from(s: &StreamHosts) -> Element {
        query(Some(&s.sid))
            .with_attr("mode", if s.mode_tcp { "tcp" } else { "udp" })
            .with_children(s.hosts.iter().map(Element::from))
    }
}

/// The target's answer: the streamhost it connected to (IQ-result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHostUsed {
    /// Not in the XEP's example; QXmpp sends it (with `mode`).
    pub sid: Option<String>,
    pub jid: String,
}

impl TryFrom<&Element> for StreamHostUsed {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::BYTESTREAMS)?;
        let used = el
            .child("streamhost-used", ns::BYTESTREAMS)
            .ok_or(ParseError::MissingChild { element: "query", child: "streamhost-used" })?;
        Ok(StreamHostUsed {
            sid: el.attr("sid").map(str::to_owned),
            jid: req_attr(used, "streamhost-used", "jid")?.to_owned(),
        })
    }
}

impl From<&StreamHostUsed> for Element {
    fn from(u: &StreamHostUsed) -> Element {
        query(u.sid.as_deref())
            .with_child(Element::new("streamhost-used", ns::BYTESTREAMS).with_attr("jid", u.jid.as_str()))
    }
}

/// The requester's activation request to a proxy (IQ-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activate {
    pub sid: String,
    /// The target's full JID.
    pub target: String,
}

impl TryFrom<&Element> for Activate {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::BYTESTREAMS)?;
        let sid = req_attr(el, "query", "sid")?.to_owned();
        let activate = el
            .child("activate", ns::BYTESTREAMS)
            .ok_or(ParseError::MissingChild { element: "query", child: "activate" })?;
        let target = activate.text().trim().to_owned();
        if target.is_empty() {
            return Err(ParseError::invalid("activate", "no target JID"));
        }
        Ok(Activate { sid, target })
    }
}

impl From<&Activate> for Element {
    fn from(a: &Activate) -> Element {
        query(Some(&a.sid)).with_child(Element::new("activate", ns::BYTESTREAMS).with_text(a.target.as_str()))
    }
}

/// The request for a proxy's network address (IQ-get, no children). The XEP sends no
/// `sid`; QXmpp does, and servers accept it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyQuery {
    pub sid: Option<String>,
}

impl TryFrom<&Element> for ProxyQuery {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::BYTESTREAMS)?;
        if el.elements().next().is_some() {
            return Err(ParseError::invalid("query", "a proxy address request has no children"));
        }
        Ok(ProxyQuery { sid: el.attr("sid").map(str::to_owned) })
    }
}

impl From<&ProxyQuery> for Element {
    fn from(q: &ProxyQuery) -> Element {
        query(q.sid.as_deref())
    }
}

/// A proxy's network address(es) (IQ-result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub hosts: Vec<StreamHost>,
}

impl TryFrom<&Element> for ProxyInfo {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::BYTESTREAMS)?;
        let hosts = hosts_of(el)?;
        if hosts.is_empty() {
            return Err(ParseError::MissingChild { element: "query", child: "streamhost" });
        }
        Ok(ProxyInfo { hosts })
    }
}

impl From<&ProxyInfo> for Element {
    fn from(p: &ProxyInfo) -> Element {
        query(None).with_children(p.hosts.iter().map(Element::from))
    }
}

/// Any bytestreams payload, told apart by IQ type and children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BytestreamsPayload {
    StreamHosts(StreamHosts),
    Used(StreamHostUsed),
    Activate(Activate),
    ProxyQuery(ProxyQuery),
    ProxyInfo(ProxyInfo),
}

impl BytestreamsPayload {
    /// Parses `el` as carried by an IQ of type `iq_type` (`get`, `set`, `result`).
    pub fn parse(el: &Element, iq_type: &str) -> Result<Self, ParseError> {
        expect(el, "query", ns::BYTESTREAMS)?;
        let has = |name| el.child(name, ns::BYTESTREAMS).is_some();
        Ok(match iq_type {
            "set" if has("activate") => BytestreamsPayload::Activate(Activate::try_from(el)?),
            "set" if has("streamhost") => BytestreamsPayload::StreamHosts(StreamHosts::try_from(el)?),
            "set" => return Err(ParseError::invalid("query", "a set carries neither streamhosts nor activate")),
            "get" => BytestreamsPayload::ProxyQuery(ProxyQuery::try_from(el)?),
            "result" if has("streamhost-used") => BytestreamsPayload::Used(StreamHostUsed::try_from(el)?),
            "result" if has("streamhost") => BytestreamsPayload::ProxyInfo(ProxyInfo::try_from(el)?),
            "result" => {
                return Err(ParseError::invalid("query", "a result carries neither streamhost-used nor streamhost"))
            }
            other => return Err(ParseError::invalid("query", format!("unexpected in an iq of type '{other}'"))),
        })
    }
}

impl From<&BytestreamsPayload> for Element {
    fn from(p: &BytestreamsPayload) -> Element {
        match p {
            BytestreamsPayload::StreamHosts(x) => x.into(),
            BytestreamsPayload::Used(x) => x.into(),
            BytestreamsPayload::Activate(x) => x.into(),
            BytestreamsPayload::ProxyQuery(x) => x.into(),
            BytestreamsPayload::ProxyInfo(x) => x.into(),
        }
    }
}

impl From<BytestreamsPayload> for Element {
    fn from(p: BytestreamsPayload) -> Element {
        Element::from(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    const SID: &str = "MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr";

    fn round_trip(xml: &str, iq_type: &str) -> BytestreamsPayload {
        let p = BytestreamsPayload::parse(&el(xml), iq_type).unwrap();
        assert_eq!(Element::from(&p), el(xml));
        p
    }

    #[test]
    fn dst_addr_vectors() {
        // printf '%s' 'SIDreq@a/rtarget@b/t' | sha1sum
        assert_eq!(dst_addr("SID", "req@a/r", "target@b/t"), "ebb4d0f517348cc1cc62a8f3eccf6826fc817818");
        // The seed's exchange (b sends to c).
        assert_eq!(
            dst_addr(SID, "b@rabbitim.com/QXmpp", "c@rabbitim.com/QXmpp"),
            "306ac621fa1ce6d8283436298bda2cd71113feef"
        );
    }

    #[test]
    fn seed_streamhosts() {
        let xml = r#"<query xmlns="http://jabber.org/protocol/bytestreams"
               sid="MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr">
               <streamhost host="192.168.1.101" jid="b@rabbitim.com/QXmpp" port="1346"/>
               <streamhost host="2001:0:5ef5:79fb:86b:f7e8:50fd:af01" jid="b@rabbitim.com/QXmpp" port="1346"/>
               <streamhost host="182.254.185.29" jid="proxy.rabbitim.com" port="7777"/>
        </query>"#;
        let BytestreamsPayload::StreamHosts(s) = BytestreamsPayload::parse(&el(xml), "set").unwrap() else { panic!() };
        assert_eq!(s.sid, SID);
        assert!(s.mode_tcp);
        let hosts: Vec<_> = s.hosts.iter().map(|h| (h.jid.as_str(), h.host.as_str(), h.port)).collect();
        assert_eq!(
            hosts,
            [
                ("b@rabbitim.com/QXmpp", "192.168.1.101", 1346),
                ("b@rabbitim.com/QXmpp", "2001:0:5ef5:79fb:86b:f7e8:50fd:af01", 1346),
                ("proxy.rabbitim.com", "182.254.185.29", 7777),
            ]
        );
    }

    #[test]
    fn seed_used_query_info_activate() {
        let used = r#"<query xmlns="http://jabber.org/protocol/bytestreams"
            sid="MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr" mode="tcp">
            <streamhost-used jid="proxy.rabbitim.com"/>
        </query>"#;
        assert_eq!(
            BytestreamsPayload::parse(&el(used), "result").unwrap(),
            BytestreamsPayload::Used(StreamHostUsed { sid: Some(SID.into()), jid: "proxy.rabbitim.com".into() })
        );
        let q = r#"<query xmlns="http://jabber.org/protocol/bytestreams"
                sid="MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr"/>"#;
        assert_eq!(
            BytestreamsPayload::parse(&el(q), "get").unwrap(),
            BytestreamsPayload::ProxyQuery(ProxyQuery { sid: Some(SID.into()) })
        );
        let info = r#"<query xmlns="http://jabber.org/protocol/bytestreams">
            <streamhost jid="proxy.rabbitim.com" host="182.254.185.29" port="7777"/>
        </query>"#;
        let host = StreamHost { jid: "proxy.rabbitim.com".into(), host: "182.254.185.29".into(), port: 7777 };
        assert_eq!(
            BytestreamsPayload::parse(&el(info), "result").unwrap(),
            BytestreamsPayload::ProxyInfo(ProxyInfo { hosts: vec![host] })
        );
        let act = r#"<query xmlns="http://jabber.org/protocol/bytestreams" sid="MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr">
            <activate>c@rabbitim.com/QXmpp</activate>
        </query>"#;
        assert_eq!(
            BytestreamsPayload::parse(&el(act), "set").unwrap(),
            BytestreamsPayload::Activate(Activate { sid: SID.into(), target: "c@rabbitim.com/QXmpp".into() })
        );
    }

    #[test]
    fn round_trips() {
        round_trip(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1' mode='tcp'>\
             <streamhost jid='a@b/c' host='127.0.0.1' port='5086'/>\
             <streamhost jid='proxy.b' host='::1' port='7777'/></query>",
            "set",
        );
        round_trip(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><streamhost-used jid='proxy.b'/></query>",
            "result",
        );
        round_trip(
            "<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='a@b/c'/></query>",
            "result",
        );
        round_trip(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><activate>t@b/r</activate></query>",
            "set",
        );
        round_trip("<query xmlns='http://jabber.org/protocol/bytestreams'/>", "get");
        round_trip(
            "<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost jid='proxy.b' host='10.0.0.1' port='7777'/></query>",
            "result",
        );
    }

    #[test]
    fn mode_absent_is_tcp() {
        let s = StreamHosts::try_from(&el(
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s'><streamhost jid='j' host='h' port='1'/></query>",
        ))
        .unwrap();
        assert!(s.mode_tcp);
    }

    #[test]
    fn bad_input() {
        let bs = |inner: &str, attrs: &str| {
            el(&format!("<query xmlns='http://jabber.org/protocol/bytestreams'{attrs}>{inner}</query>"))
        };
        assert_eq!(
            BytestreamsPayload::parse(&bs("<streamhost jid='j' host='h'/>", " sid='s'"), "set"),
            Err(ParseError::MissingAttr { element: "streamhost", attr: "port" })
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("<streamhost jid='j' host='h' port='70000'/>", " sid='s'"), "set"),
            Err(ParseError::invalid("streamhost", "attribute 'port' has a bad value '70000'"))
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("<streamhost jid='j' host='h' port='1'/>", " sid='s' mode='udp'"), "set"),
            Err(ParseError::invalid("query", "UDP mode is not supported"))
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("<streamhost jid='j' host='h' port='1'/>", ""), "set"),
            Err(ParseError::MissingAttr { element: "query", attr: "sid" })
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("", " sid='s'"), "set"),
            Err(ParseError::invalid("query", "a set carries neither streamhosts nor activate"))
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("<activate/>", " sid='s'"), "set"),
            Err(ParseError::invalid("activate", "no target JID"))
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("<streamhost-used/>", ""), "result"),
            Err(ParseError::MissingAttr { element: "streamhost-used", attr: "jid" })
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("", ""), "result"),
            Err(ParseError::invalid("query", "a result carries neither streamhost-used nor streamhost"))
        );
        assert_eq!(
            BytestreamsPayload::parse(&bs("<streamhost jid='j' host='h' port='1'/>", ""), "get"),
            Err(ParseError::invalid("query", "a proxy address request has no children"))
        );
        assert!(BytestreamsPayload::parse(&el("<query xmlns='http://jabber.org/protocol/disco#info'/>"), "get")
            .unwrap_err()
            .is_not_mine());
    }
}
