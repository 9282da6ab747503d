//! Every XML namespace Skiff speaks, in one place.

/// RFC 6120 client stanzas.
pub const CLIENT: &str = "jabber:client";
/// RFC 6120 stream envelope.
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// RFC 6120 stream errors.
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// RFC 6120 stanza errors.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// RFC 6120 STARTTLS.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// RFC 6120 SASL.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// RFC 6120 resource binding.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// RFC 3921 session establishment (legacy, optional).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// RFC 6121 roster.
pub const ROSTER: &str = "jabber:iq:roster";
/// XEP-0030 Service Discovery, info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030 Service Discovery, items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0199 XMPP Ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0004 Data Forms.
pub const DATA_FORMS: &str = "jabber:x:data";
/// XEP-0020 Feature Negotiation.
pub const FEATURE_NEG: &str = "http://jabber.org/protocol/feature-neg";
/// XEP-0095 Stream Initiation.
pub const SI: &str = "http://jabber.org/protocol/si";
/// XEP-0096 SI File Transfer profile.
pub const SI_FILE_TRANSFER: &str = "http://jabber.org/protocol/si/profile/file-transfer";
/// XEP-0065 SOCKS5 Bytestreams.
pub const BYTESTREAMS: &str = "http://jabber.org/protocol/bytestreams";
/// XEP-0047 In-Band Bytestreams.
pub const IBB: &str = "http://jabber.org/protocol/ibb";
/// XEP-0066 Out of Band Data, IQ form.
pub const IQ_OOB: &str = "jabber:iq:oob";
/// XEP-0066 Out of Band Data, message extension.
pub const X_OOB: &str = "jabber:x:oob";
/// XEP-0363 HTTP File Upload.
pub const HTTP_UPLOAD: &str = "urn:xmpp:http:upload:0";
/// XEP-0115 Entity Capabilities.
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// The `xml:` prefix namespace (for `xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// XEP-0300: hashes.
pub const HASHES: &str = "urn:xmpp:hashes:2";
/// Skiff's SHA-256 checksum after the data of an SI transfer ([`crate::hashes`]).
pub const SKIFF_CHECKSUM: &str = "urn:x-skiff:si-checksum:0";
/// XEP-0300 hashes, the older namespace (Jingle File Transfer before `:5`).
pub const HASHES_1: &str = "urn:xmpp:hashes:1";
/// XEP-0166 Jingle.
pub const JINGLE: &str = "urn:xmpp:jingle:1";
/// XEP-0166 Jingle error conditions.
pub const JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
/// XEP-0234 Jingle File Transfer.
pub const JINGLE_FT5: &str = "urn:xmpp:jingle:apps:file-transfer:5";
/// XEP-0234 Jingle File Transfer, namespace version 4 (0.16–0.17).
pub const JINGLE_FT4: &str = "urn:xmpp:jingle:apps:file-transfer:4";
/// XEP-0234 Jingle File Transfer, namespace version 3 (0.14–0.15, `<offer/>` wrapper).
pub const JINGLE_FT3: &str = "urn:xmpp:jingle:apps:file-transfer:3";
/// XEP-0260 Jingle SOCKS5 Bytestreams transport.
pub const JINGLE_S5B: &str = "urn:xmpp:jingle:transports:s5b:1";
/// XEP-0261 Jingle In-Band Bytestreams transport.
pub const JINGLE_IBB: &str = "urn:xmpp:jingle:transports:ibb:1";
