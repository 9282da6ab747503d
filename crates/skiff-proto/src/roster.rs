//! RFC 6121 roster: the contact list, fetched once and updated by pushes.

use crate::error::{expect, req_attr, ParseError};
use crate::jid::Jid;
use crate::ns;
use crate::xml::Element;

/// `subscription` of a roster item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    None,
    To,
    From,
    Both,
    /// Only in pushes: the item was removed.
    Remove,
}

impl Subscription {
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
            Subscription::Remove => "remove",
        }
    }
}

/// One contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    pub jid: Jid,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// A subscription request of ours is pending (`ask='subscribe'`).
    pub ask: bool,
    pub groups: Vec<String>,
}

/// `<query xmlns='jabber:iq:roster'/>`: a request (no items), a result, or a push.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roster {
    pub ver: Option<String>,
    pub items: Vec<RosterItem>,
}

impl TryFrom<&Element> for RosterItem {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "item", ns::ROSTER)?;
        let jid =
            req_attr(el, "item", "jid")?.parse().map_err(|e| ParseError::invalid("item", format!("bad jid: {e}")))?;
        let subscription = match el.attr("subscription").unwrap_or("none") {
            "none" => Subscription::None,
            "to" => Subscription::To,
            "from" => Subscription::From,
            "both" => Subscription::Both,
            "remove" => Subscription::Remove,
            other => return Err(ParseError::invalid("item", format!("unknown subscription '{other}'"))),
        };
        Ok(RosterItem {
            jid,
            name: el.attr("name").filter(|n| !n.is_empty()).map(str::to_owned),
            subscription,
            ask: el.attr("ask") == Some("subscribe"),
            groups: el.children_named("group", ns::ROSTER).map(Element::text).collect(),
        })
    }
}

impl From<&RosterItem> for Element {
    fn from(i: &RosterItem) -> Element {
        Element::new("item", ns::ROSTER)
            .with_attr("jid", i.jid.to_string())
            .with_opt_attr("name", i.name.clone())
            .with_attr("subscription", i.subscription.as_str())
            .with_opt_attr("ask", i.ask.then_some("subscribe"))
            .with_children(i.groups.iter().map(|g| Element::new("group", ns::ROSTER).with_text(g.clone())))
    }
}

impl TryFrom<&Element> for Roster {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "query", ns::ROSTER)?;
        let items = el.children_named("item", ns::ROSTER).map(RosterItem::try_from).collect::<Result<_, _>>()?;
        Ok(Roster { ver: el.attr("ver").map(str::to_owned), items })
    }
}

impl From<&Roster> for Element {
    fn from(r: &Roster) -> Element {
        Element::new("query", ns::ROSTER)
            .with_opt_attr("ver", r.ver.clone())
            .with_children(r.items.iter().map(Element::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let xml = "<query xmlns='jabber:iq:roster' ver='ver7'><item jid='bob@localhost' name='Bob' subscription='both'><group>Friends</group><group>Work</group></item><item jid='carol@localhost' subscription='none' ask='subscribe'/></query>";
        let el: Element = xml.parse().unwrap();
        let r = Roster::try_from(&el).unwrap();
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.items[0].groups, vec!["Friends", "Work"]);
        assert_eq!(r.items[1].subscription, Subscription::None);
        assert!(r.items[1].ask);
        assert_eq!(Element::from(&r), el);
    }

    #[test]
    fn defaults_and_errors() {
        let el: Element = "<query xmlns='jabber:iq:roster'><item jid='Bob@LOCALHOST'/></query>".parse().unwrap();
        let r = Roster::try_from(&el).unwrap();
        assert_eq!(r.items[0].subscription, Subscription::None);
        assert_eq!(r.items[0].jid.to_string(), "bob@localhost");
        let bad: Element = "<query xmlns='jabber:iq:roster'><item/></query>".parse().unwrap();
        assert_eq!(Roster::try_from(&bad), Err(ParseError::MissingAttr { element: "item", attr: "jid" }));
        let bad: Element =
            "<query xmlns='jabber:iq:roster'><item jid='a@b' subscription='maybe'/></query>".parse().unwrap();
        assert_eq!(Roster::try_from(&bad), Err(ParseError::invalid("item", "unknown subscription 'maybe'")));
        let other: Element = "<query xmlns='jabber:iq:private'/>".parse().unwrap();
        assert!(Roster::try_from(&other).unwrap_err().is_not_mine());
    }
}
