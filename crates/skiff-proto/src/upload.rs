//! XEP-0363: HTTP File Upload (`urn:xmpp:http:upload:0`).
//!
//! The client asks the upload service for a slot (`<request filename size
//! content-type/>`), PUTs the file to the slot's PUT URL with the headers the service
//! gave (only `Authorization`, `Cookie` and `Expires` may be passed on; anything else
//! is dropped, and header values must not contain line breaks), then shares the GET
//! URL, in practice in a message body and a `jabber:x:oob` element. The service
//! announces its limit as `max-file-size` in a XEP-0128 form in its disco#info.

use crate::dataforms::DataForm;
use crate::disco::DiscoInfoResult;
use crate::error::{expect, ParseError};
use crate::ns;
use crate::xml::Element;

/// `<request/>` for a slot (IQ-get to the upload service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    /// A file name (the service may put it in the URL); no path.
    pub filename: String,
    pub size: u64,
    pub content_type: Option<String>,
}

impl From<&SlotRequest> for Element {
    fn from(r: &SlotRequest) -> Element {
        let el = Element::new("request", ns::HTTP_UPLOAD)
            .with_attr("filename", r.filename.as_str())
            .with_attr("size", r.size.to_string());
        match &r.content_type {
            Some(ct) => el.with_attr("content-type", ct.as_str()),
            None => el,
        }
    }
}

/// The slot the service granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub put_url: String,
    /// The headers to send with the PUT: only those XEP-0363 allows.
    pub put_headers: Vec<(String, String)>,
    pub get_url: String,
}

/// Headers a slot may ask the client to send (XEP-0363 §5).
const ALLOWED_HEADERS: [&str; 3] = ["Authorization", "Cookie", "Expires"];

impl TryFrom<&Element> for Slot {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Slot, ParseError> {
        expect(el, "slot", ns::HTTP_UPLOAD)?;
        let put = el.child("put", ns::HTTP_UPLOAD).ok_or(ParseError::MissingChild { element: "slot", child: "put" })?;
        let get = el.child("get", ns::HTTP_UPLOAD).ok_or(ParseError::MissingChild { element: "slot", child: "get" })?;
        let url = |e: &Element, name: &'static str| -> Result<String, ParseError> {
            let u = e.attr("url").ok_or(ParseError::MissingAttr { element: name, attr: "url" })?.trim();
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ParseError::invalid(name, format!("not an http(s) URL: {u}")));
            }
            Ok(u.to_owned())
        };
        let mut put_headers = Vec::new();
        for h in put.children_named("header", ns::HTTP_UPLOAD) {
            let Some(name) = h.attr("name") else { continue };
            let Some(allowed) = ALLOWED_HEADERS.iter().find(|a| a.eq_ignore_ascii_case(name.trim())) else {
                continue;
            };
            let value = h.text();
            if value.contains(['\r', '\n']) {
                return Err(ParseError::invalid("header", "a line break in a header value"));
            }
            put_headers.push(((*allowed).to_owned(), value.trim().to_owned()));
        }
        Ok(Slot { put_url: url(put, "put")?, put_headers, get_url: url(get, "get")? })
    }
}

/// Whether a disco#info result is an upload service, and its size limit if it gives
/// one: `Some(None)` = a service without a stated limit.
pub fn service_limit(info: &DiscoInfoResult) -> Option<Option<u64>> {
    if !info.features.iter().any(|f| f == ns::HTTP_UPLOAD) {
        return None;
    }
    let limit = info
        .extensions
        .iter()
        .filter(|f: &&DataForm| f.form_type.as_deref() == Some(ns::HTTP_UPLOAD))
        .find_map(|f| f.field("max-file-size").and_then(|v| v.value()).and_then(|v| v.trim().parse().ok()));
    Some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::parse_element;

    #[test]
    fn request_serialises() {
        let r = SlotRequest { filename: "a b.jpg".into(), size: 23456, content_type: Some("image/jpeg".into()) };
        let el = Element::from(&r);
        assert_eq!(el.attr("filename"), Some("a b.jpg"));
        assert_eq!(el.attr("size"), Some("23456"));
        assert_eq!(el.attr("content-type"), Some("image/jpeg"));
        assert_eq!(el.ns, ns::HTTP_UPLOAD);
    }

    #[test]
    fn slot_keeps_only_allowed_headers() {
        let el = parse_element(
            b"<slot xmlns='urn:xmpp:http:upload:0'>\
               <put url='https://upload.example.org/a/b.jpg'>\
                 <header name='authorization'>Basic Base64String==</header>\
                 <header name='Cookie'>foo=bar; user=romeo</header>\
                 <header name='Host'>evil.example</header>\
               </put>\
               <get url='https://download.example.org/a/b.jpg'/>\
             </slot>",
        )
        .unwrap();
        let s = Slot::try_from(&el).unwrap();
        assert_eq!(s.put_url, "https://upload.example.org/a/b.jpg");
        assert_eq!(s.get_url, "https://download.example.org/a/b.jpg");
        assert_eq!(
            s.put_headers,
            vec![
                ("Authorization".to_owned(), "Basic Base64String==".to_owned()),
                ("Cookie".to_owned(), "foo=bar; user=romeo".to_owned())
            ]
        );
    }

    #[test]
    fn slot_errors() {
        let no_get = parse_element(b"<slot xmlns='urn:xmpp:http:upload:0'><put url='https://x/y'/></slot>").unwrap();
        assert!(Slot::try_from(&no_get).is_err());
        let ftp = parse_element(
            b"<slot xmlns='urn:xmpp:http:upload:0'><put url='ftp://x/y'/><get url='https://x/y'/></slot>",
        )
        .unwrap();
        assert!(Slot::try_from(&ftp).is_err());
        let crlf = parse_element(
            b"<slot xmlns='urn:xmpp:http:upload:0'><put url='https://x/y'><header name='Cookie'>a&#13;&#10;Host: b</header></put><get url='https://x/y'/></slot>",
        )
        .unwrap();
        assert!(Slot::try_from(&crlf).is_err());
    }

    #[test]
    fn service_and_limit_from_disco() {
        let el = parse_element(
            b"<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='store' type='file' name='HTTP File Upload'/>\
               <feature var='urn:xmpp:http:upload:0'/>\
               <x type='result' xmlns='jabber:x:data'>\
                 <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
                 <field var='max-file-size'><value>5242880</value></field>\
               </x>\
             </query>",
        )
        .unwrap();
        let info = DiscoInfoResult::try_from(&el).unwrap();
        assert_eq!(service_limit(&info), Some(Some(5_242_880)));
        let plain = parse_element(
            b"<query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:http:upload:0'/></query>",
        )
        .unwrap();
        assert_eq!(service_limit(&DiscoInfoResult::try_from(&plain).unwrap()), Some(None));
        let other =
            parse_element(b"<query xmlns='http://jabber.org/protocol/disco#info'><feature var='x'/></query>").unwrap();
        assert_eq!(service_limit(&DiscoInfoResult::try_from(&other).unwrap()), None);
    }
}
