//! The XEP's examples (§5.2, §5.3, the presences and disco#info of §1.2), round trips,
//! each rule of §5.4 and the ones added here, and the cache's bookkeeping.

use super::*;
use crate::dataforms::{DataForm, Field, FormType};
use crate::disco::Identity;
use crate::jid::Jid;
use crate::stream::parse_element;

fn el(xml: &str) -> Element {
    parse_element(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"))
}

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

const EXODUS_VER: &str = "QgayPKawpkPSDYmwT/WM94uAlu0=";
const PSI_VER: &str = "q07IKJEyjvHSyhy//CH0CxmKi8w=";

/// §1.2: Romeo's presence.
const ROMEO_PRESENCE: &str = "<presence xmlns='jabber:client' from='romeo@montague.lit/orchard'>\
    <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' \
    ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>";

/// §1.2: Romeo's answer (the §5.2 example).
const EXODUS_QUERY: &str = "<query xmlns='http://jabber.org/protocol/disco#info' \
    node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>\
    <identity category='client' name='Exodus 0.9.1' type='pc'/>\
    <feature var='http://jabber.org/protocol/caps'/>\
    <feature var='http://jabber.org/protocol/disco#info'/>\
    <feature var='http://jabber.org/protocol/disco#items'/>\
    <feature var='http://jabber.org/protocol/muc'/></query>";

/// §5.3 (the query as the XEP prints it, whitespace and all).
const PSI_IQ: &str = "<iq xmlns='jabber:client' from='benvolio@capulet.lit/230193' id='disco1' to='juliet@capulet.lit/chamber' type='result'>
  <query xmlns='http://jabber.org/protocol/disco#info'
         node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
    <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
    <identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/>
    <feature var='http://jabber.org/protocol/caps'/>
    <feature var='http://jabber.org/protocol/disco#info'/>
    <feature var='http://jabber.org/protocol/disco#items'/>
    <feature var='http://jabber.org/protocol/muc'/>
    <x xmlns='jabber:x:data' type='result'>
      <field var='FORM_TYPE' type='hidden'>
        <value>urn:xmpp:dataforms:softwareinfo</value>
      </field>
      <field var='ip_version' type='text-multi' >
        <value>ipv4</value>
        <value>ipv6</value>
      </field>
      <field var='os'>
        <value>Mac</value>
      </field>
      <field var='os_version'>
        <value>10.5.1</value>
      </field>
      <field var='software'>
        <value>Psi</value>
      </field>
      <field var='software_version'>
        <value>0.11</value>
      </field>
    </x>
  </query>
</iq>";

fn exodus_caps() -> Caps {
    Caps { hash: SHA_1.into(), node: "http://code.google.com/p/exodus".into(), ver: EXODUS_VER.into() }
}

fn psi_caps() -> Caps {
    Caps { hash: SHA_1.into(), node: "http://psi-im.org".into(), ver: PSI_VER.into() }
}

fn exodus() -> DiscoInfoResult {
    DiscoInfoResult::try_from(&el(EXODUS_QUERY)).unwrap()
}

fn psi_query() -> Element {
    el(PSI_IQ).child("query", ns::DISCO_INFO).unwrap().clone()
}

fn psi() -> DiscoInfoResult {
    DiscoInfoResult::try_from(&psi_query()).unwrap()
}

/// `info` and the caps that match it whatever it holds (so that only the rules fail).
fn own(info: &DiscoInfoResult) -> Caps {
    our_caps("http://example.org/client", info)
}

#[test]
fn xep_simple_example() {
    let info = exodus();
    assert_eq!(
        ver_string(&info),
        "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<\
         http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"
    );
    assert_eq!(ver(&info), EXODUS_VER);
    assert_eq!(check(&exodus_caps(), &info), Ok(()));
    assert!(verify_query(&exodus_caps(), &el(EXODUS_QUERY)));
}

#[test]
fn xep_complex_example() {
    let info = psi();
    assert_eq!(
        ver_string(&info),
        "client/pc/el/\u{3a8} 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<\
         http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
         http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<\
         ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
    );
    assert_eq!(ver(&info), PSI_VER);
    assert!(verify(&psi_caps(), &info));
    assert!(verify_query(&psi_caps(), &psi_query()));
}

#[test]
fn the_order_of_the_answer_does_not_matter() {
    let mut info = psi();
    info.identities.reverse();
    info.features.reverse();
    let mut form = info.extensions[0].clone();
    form.fields.reverse();
    for f in &mut form.fields {
        f.values.reverse();
    }
    // Another form, before and after, without FORM_TYPE (left out, §5.4 3.6).
    let mut untyped = DataForm::new(FormType::Result);
    untyped.fields.push(Field { values: vec!["x".into()], ..Field::new("y") });
    info.extensions = vec![untyped.clone(), form, untyped];
    assert_eq!(ver(&info), PSI_VER);
    assert!(verify(&psi_caps(), &info));
}

#[test]
fn caps_round_trip() {
    let presence = el(ROMEO_PRESENCE);
    let payloads: Vec<Element> = presence.elements().cloned().collect();
    let caps = Caps::find(&payloads).unwrap();
    assert_eq!(caps, exodus_caps());
    assert_eq!(caps.disco_node(), "http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0=");
    assert_eq!(Element::from(&caps), payloads[0]);
    let xml = "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/>";
    let caps = Caps::try_from(&el(xml)).unwrap();
    assert_eq!(caps, psi_caps());
    let written = Element::from(caps);
    assert_eq!(written, el(xml));
    assert_eq!(Caps::try_from(&el(&written.to_xml())).unwrap(), psi_caps());
    // `ext` (deprecated) is ignored; the longest node is kept.
    let long = format!(
        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='{}' ver='v' ext='a b'/>",
        "n".repeat(1024)
    );
    assert_eq!(Caps::try_from(&el(&long)).unwrap().node.len(), MAX_ATTR);
}

#[test]
fn caps_bad_input() {
    // The legacy format: no hash, a version number as ver.
    assert_eq!(
        Caps::try_from(&el("<c xmlns='http://jabber.org/protocol/caps' node='http://exodus.jabberstudio.org/caps' ver='0.9' ext='jingle'/>")),
        Err(ParseError::MissingAttr { element: "c", attr: "hash" })
    );
    assert_eq!(
        Caps::try_from(&el("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' ver='v'/>")),
        Err(ParseError::MissingAttr { element: "c", attr: "node" })
    );
    assert_eq!(
        Caps::try_from(&el("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver=''/>")),
        Err(ParseError::invalid("c", "empty 'ver'"))
    );
    let long = format!("<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='{}'/>", "v".repeat(1025));
    assert_eq!(Caps::try_from(&el(&long)), Err(ParseError::invalid("c", "'ver' is longer than 1024 bytes")));
    let long = format!("<c xmlns='http://jabber.org/protocol/caps' hash='{}' node='n' ver='v'/>", "h".repeat(65));
    assert_eq!(Caps::try_from(&el(&long)), Err(ParseError::invalid("c", "'hash' is longer than 64 bytes")));
    assert!(Caps::try_from(&el("<c xmlns='urn:other' hash='sha-1' node='n' ver='v'/>")).unwrap_err().is_not_mine());
    assert_eq!(Caps::find(&[el("<c xmlns='http://jabber.org/protocol/caps' node='n' ver='1.0'/>")]), None);
}

#[test]
fn only_sha1_is_trusted() {
    let caps = Caps { hash: "sha-256".into(), ..exodus_caps() };
    assert_eq!(check(&caps, &exodus()), Err(Rejection::UnsupportedHash));
    assert!(!verify(&caps, &exodus()));
    // The name in other case is still SHA-1.
    assert!(verify(&Caps { hash: "SHA-1".into(), ..exodus_caps() }, &exodus()));
}

#[test]
fn a_mismatch_is_refused() {
    let mut info = exodus();
    info.features.push(ns::SI_FILE_TRANSFER.into());
    assert_eq!(check(&exodus_caps(), &info), Err(Rejection::Mismatch));
    assert_eq!(check(&own(&info), &info), Ok(()));
}

#[test]
fn duplicates_are_refused() {
    let mut info = exodus();
    info.identities.push(info.identities[0].clone());
    assert_eq!(check(&own(&info), &info), Err(Rejection::DuplicateIdentity));
    // Same category/type/lang with another name is two identities.
    let mut info = exodus();
    info.identities.push(Identity { name: Some("Exodus 1.0".into()), ..info.identities[0].clone() });
    assert_eq!(check(&own(&info), &info), Ok(()));

    let mut info = exodus();
    info.features.push(info.features[2].clone());
    assert_eq!(check(&own(&info), &info), Err(Rejection::DuplicateFeature));

    let mut info = psi();
    let mut second = info.extensions[0].clone();
    second.fields.truncate(1);
    info.extensions.push(second);
    assert_eq!(check(&own(&info), &info), Err(Rejection::DuplicateForm));
}

#[test]
fn form_type_must_be_hidden_single_and_one_valued() {
    // Not hidden: only the element shows it.
    let xml = PSI_IQ.replace("<field var='FORM_TYPE' type='hidden'>", "<field var='FORM_TYPE'>");
    let query = el(&xml).child("query", ns::DISCO_INFO).unwrap().clone();
    assert_eq!(check_forms(&query), Err(Rejection::BadFormType));
    assert!(!verify_query(&psi_caps(), &query));
    assert!(verify(&psi_caps(), &DiscoInfoResult::try_from(&query).unwrap()), "the parsed value cannot tell");
    let mut cache = CapsCache::default();
    let benvolio = jid("benvolio@capulet.lit/230193");
    assert!(cache.on_presence(&benvolio, Some(&psi_caps()), true).is_some());
    assert!(!cache.on_disco_element(&benvolio, &query));
    assert_eq!(cache.ver_features(PSI_VER), None);
    assert_eq!(cache.supports(&benvolio, "http://jabber.org/protocol/muc"), Some(true), "still its own");

    // Two values that differ; the same value twice is allowed.
    let two = |second: &str| {
        let xml = PSI_IQ.replace(
            "<value>urn:xmpp:dataforms:softwareinfo</value>",
            &format!("<value>urn:xmpp:dataforms:softwareinfo</value><value>{second}</value>"),
        );
        el(&xml).child("query", ns::DISCO_INFO).unwrap().clone()
    };
    assert_eq!(check_forms(&two("urn:xmpp:other")), Err(Rejection::BadFormType));
    assert_eq!(check_forms(&two("urn:xmpp:dataforms:softwareinfo")), Ok(()));
    assert!(verify_query(&psi_caps(), &two("urn:xmpp:dataforms:softwareinfo")));

    // Two FORM_TYPE fields: the element shows it, and so does the parsed value.
    let xml = PSI_IQ.replace(
        "<field var='os'>",
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field><field var='os'>",
    );
    let query = el(&xml).child("query", ns::DISCO_INFO).unwrap().clone();
    assert_eq!(check_forms(&query), Err(Rejection::BadFormType));
    let info = DiscoInfoResult::try_from(&query).unwrap();
    assert_eq!(check(&own(&info), &info), Err(Rejection::BadFormType));
}

#[test]
fn a_form_without_form_type_is_left_out() {
    let mut info = exodus();
    let mut form = DataForm::new(FormType::Result);
    form.fields.push(Field { values: vec!["v".into()], ..Field::new("x") });
    info.extensions.push(form);
    assert_eq!(ver(&info), EXODUS_VER);
    assert!(verify(&exodus_caps(), &info));
}

#[test]
fn a_separator_inside_a_factor_is_refused() {
    // The 2009 attack (§9.3): a name that swallows a feature gives the same string.
    let mut info = exodus();
    info.identities[0].name = Some("Exodus 0.9.1<http://jabber.org/protocol/caps".into());
    info.features.retain(|f| f != "http://jabber.org/protocol/caps");
    assert_eq!(ver(&info), EXODUS_VER);
    assert_eq!(check(&exodus_caps(), &info), Err(Rejection::Separator));
    let mut info = psi();
    info.extensions[0].fields[1].values[0] = "Mac<os_version".into();
    assert_eq!(check(&own(&info), &info), Err(Rejection::Separator));
}

#[test]
fn an_identity_that_a_feature_could_pose_as_is_refused() {
    for (category, kind, lang) in
        [("client", "", None), ("", "pc", None), ("cli/ent", "pc", None), ("client", "pc", Some("e/n"))]
    {
        let mut info = exodus();
        info.identities[0] = Identity { lang: lang.map(Into::into), ..Identity::new(category, kind) };
        assert_eq!(check(&own(&info), &info), Err(Rejection::BadIdentity), "{category}/{kind}/{lang:?}");
    }
    // 'http://jabber.org/protocol/muc' read as an identity needs an empty type.
    let mut info = exodus();
    info.features.retain(|f| !f.ends_with("muc"));
    info.identities.push(Identity {
        lang: Some("jabber.org".into()),
        name: Some("protocol/muc".into()),
        ..Identity::new("http:", "")
    });
    assert_eq!(check(&own(&info), &info), Err(Rejection::BadIdentity));
}

#[test]
fn features_moved_into_a_form_are_refused() {
    // Romeo's last two features as a form: the same string, the same ver, and
    // everyone on Exodus 0.9.1 would seem to lack MUC.
    let mut info = exodus();
    info.features.truncate(2);
    let mut form = DataForm::new(FormType::Result);
    form.form_type = Some("http://jabber.org/protocol/disco#items".into());
    form.fields.push(Field::new("http://jabber.org/protocol/muc"));
    info.extensions.push(form);
    assert_eq!(ver(&info), EXODUS_VER);
    assert_eq!(check(&exodus_caps(), &info), Err(Rejection::Ambiguous));
    // With no features at all, likewise.
    let mut info = exodus();
    info.features.clear();
    let mut form = DataForm::new(FormType::Result);
    form.form_type = Some("http://jabber.org/protocol/caps".into());
    form.fields.push(Field {
        values: vec!["http://jabber.org/protocol/disco#items".into(), "http://jabber.org/protocol/muc".into()],
        ..Field::new("http://jabber.org/protocol/disco#info")
    });
    info.extensions.push(form);
    assert_eq!(ver(&info), EXODUS_VER);
    assert_eq!(check(&exodus_caps(), &info), Err(Rejection::Ambiguous));
}

/// Skiff's own disco#info (the protocol notes' list).
fn skiff_info() -> DiscoInfoResult {
    DiscoInfoResult {
        node: None,
        identities: vec![Identity { name: Some("Skiff".into()), ..Identity::new("client", "pc") }],
        features: [ns::SI, ns::SI_FILE_TRANSFER, ns::BYTESTREAMS, ns::IBB, ns::IQ_OOB, ns::DISCO_INFO, ns::CAPS]
            .map(String::from)
            .to_vec(),
        extensions: Vec::new(),
    }
}

#[test]
fn our_caps_verify() {
    let caps = our_caps("https://skiff.example/", &skiff_info());
    assert_eq!(caps.hash, "sha-1");
    assert_eq!(caps.ver.len(), 28);
    assert!(verify(&caps, &skiff_info()));
    let written = Element::from(&caps);
    assert_eq!(written.attr("node"), Some("https://skiff.example/"));
    assert_eq!(Caps::try_from(&written).unwrap(), caps);
}

// ------------------------------------------------------------------ the cache

fn exodus_with(feature: &str) -> (Caps, DiscoInfoResult) {
    let mut info = exodus();
    info.features.push(feature.into());
    (own(&info), info)
}

#[test]
fn one_query_answers_for_everyone_on_the_same_ver() {
    let mut cache = CapsCache::default();
    let (romeo, nurse) = (jid("romeo@montague.lit/orchard"), jid("nurse@capulet.lit/chamber"));
    let query = cache.on_presence(&romeo, Some(&exodus_caps()), true).unwrap();
    assert_eq!(query, Query { to: romeo.clone(), node: format!("http://code.google.com/p/exodus#{EXODUS_VER}") });
    assert_eq!(
        Element::from(query.payload()),
        el(&format!("<query xmlns='http://jabber.org/protocol/disco#info' node='{}'/>", query.node))
    );
    // One query per ver; the same presence again asks nothing either.
    assert_eq!(cache.on_presence(&nurse, Some(&exodus_caps()), true), None);
    assert_eq!(cache.on_presence(&romeo, Some(&exodus_caps()), true), None);
    assert_eq!(cache.features(&nurse), None);
    assert_eq!(cache.supports(&romeo, "http://jabber.org/protocol/muc"), None);

    assert!(cache.on_disco_element(&romeo, &el(EXODUS_QUERY)));
    assert_eq!(cache.poll_query(), None);
    for who in [&romeo, &nurse] {
        assert_eq!(cache.features(who).unwrap(), &exodus().features[..]);
        assert_eq!(cache.supports(who, "http://jabber.org/protocol/muc"), Some(true));
        assert_eq!(cache.supports(who, ns::SI_FILE_TRANSFER), Some(false));
    }
    // Someone new on that ver is known at once.
    let friar = jid("friar@verona.lit/cell");
    assert_eq!(cache.on_presence(&friar, Some(&exodus_caps()), true), None);
    assert_eq!(cache.supports(&friar, "http://jabber.org/protocol/caps"), Some(true));
    assert_eq!(cache.sizes(), (1, 3, 0, 0));
}

#[test]
fn a_strangers_bogus_answer_is_never_cached() {
    let mut cache = CapsCache::default();
    let (stranger, romeo) = (jid("mallory@evil.example/x"), jid("romeo@montague.lit/orchard"));
    // The stranger claims Exodus's ver first and gets the query.
    assert_eq!(cache.on_presence(&stranger, Some(&exodus_caps()), true).unwrap().to, stranger);
    assert_eq!(cache.on_presence(&romeo, Some(&exodus_caps()), true), None);
    let bogus = DiscoInfoResult {
        identities: vec![Identity::new("client", "pc")],
        features: vec![ns::SI_FILE_TRANSFER.into()],
        ..DiscoInfoResult::default()
    };
    assert!(!cache.on_disco_result(&stranger, Some(&exodus_caps().disco_node()), &bogus));
    assert_eq!(cache.ver_features(EXODUS_VER), None);
    // Its answer describes itself only.
    assert_eq!(cache.supports(&stranger, ns::SI_FILE_TRANSFER), Some(true));
    assert_eq!(cache.features(&romeo), None);
    // The ver is asked of someone else who advertises it.
    let retry = cache.poll_query().unwrap();
    assert_eq!(retry.to, romeo);
    assert_eq!(cache.poll_query(), None);
    assert!(cache.on_disco_result(&romeo, Some(&retry.node), &exodus()));
    assert_eq!(cache.supports(&romeo, ns::SI_FILE_TRANSFER), Some(false));
    assert_eq!(cache.supports(&stranger, ns::SI_FILE_TRANSFER), Some(true), "its own answer still");
    // It is not asked again for the same caps.
    assert_eq!(cache.on_presence(&stranger, Some(&exodus_caps()), true), None);
    // A bogus answer for a ver nobody asked about is not cached either.
    let (caps, _) = exodus_with("urn:x:1");
    assert!(!cache.on_disco_result(&stranger, Some(&caps.disco_node()), &bogus));
    assert_eq!(cache.ver_features(&caps.ver), None);
}

#[test]
fn other_hashes_count_for_their_own_jid_only() {
    let mut cache = CapsCache::default();
    let caps = Caps { hash: "sha-256".into(), ver: "abc=".into(), ..exodus_caps() };
    let (a, b) = (jid("a@x.lit/1"), jid("b@x.lit/2"));
    // Nothing is shared: each JID is asked.
    let qa = cache.on_presence(&a, Some(&caps), true).unwrap();
    let qb = cache.on_presence(&b, Some(&caps), true).unwrap();
    assert_eq!((qa.to.clone(), qb.to), (a.clone(), b.clone()));
    assert!(!cache.on_disco_result(&a, Some(&qa.node), &exodus()));
    assert_eq!(cache.supports(&a, "http://jabber.org/protocol/muc"), Some(true));
    assert_eq!(cache.features(&b), None);
    assert_eq!(cache.ver_features("abc="), None);
    assert_eq!(cache.poll_query(), None);
}

#[test]
fn presences_keep_change_and_forget() {
    let mut cache = CapsCache::default();
    let romeo = jid("romeo@montague.lit/orchard");
    cache.on_presence(&romeo, Some(&exodus_caps()), true).unwrap();
    assert!(cache.on_disco_element(&romeo, &el(EXODUS_QUERY)));
    // No <c/> (a server may strip repeats): the caps stay.
    assert_eq!(cache.on_presence(&romeo, None, true), None);
    assert_eq!(cache.caps(&romeo), Some(&exodus_caps()));
    assert_eq!(cache.supports(&romeo, "http://jabber.org/protocol/muc"), Some(true));
    // New caps: unknown until answered.
    let (caps, info) = exodus_with(ns::SI_FILE_TRANSFER);
    let q = cache.on_presence(&romeo, Some(&caps), true).unwrap();
    assert_eq!(cache.features(&romeo), None);
    assert!(cache.on_disco_result(&romeo, Some(&q.node), &info));
    assert_eq!(cache.supports(&romeo, ns::SI_FILE_TRANSFER), Some(true));
    // Unavailable: forgotten (the vers stay).
    assert_eq!(cache.on_presence(&romeo, None, false), None);
    assert_eq!((cache.caps(&romeo), cache.features(&romeo)), (None, None));
    assert_eq!(cache.sizes(), (2, 0, 0, 0));
    // A presence without caps from someone unknown is nothing.
    assert_eq!(cache.on_presence(&romeo, None, true), None);
    assert_eq!(cache.sizes().1, 0);
}

#[test]
fn an_answer_for_the_old_ver_or_about_the_entity() {
    let mut cache = CapsCache::default();
    let romeo = jid("romeo@montague.lit/orchard");
    let old = cache.on_presence(&romeo, Some(&exodus_caps()), true).unwrap();
    let (caps, info) = exodus_with(ns::IBB);
    let new = cache.on_presence(&romeo, Some(&caps), true).unwrap();
    // The old answer arrives late: good for the old ver, not for Romeo now.
    assert!(cache.on_disco_result(&romeo, Some(&old.node), &exodus()));
    assert_eq!(cache.ver_features(EXODUS_VER).unwrap().len(), 4);
    assert_eq!(cache.features(&romeo), None);
    // An answer without node is about the entity, checked against its caps now.
    assert!(cache.on_disco_result(&romeo, None, &info));
    assert_eq!(cache.supports(&romeo, ns::IBB), Some(true));
    assert_eq!(cache.sizes().3, 0, "{new:?} is answered");
    // A node that is no caps node says nothing.
    assert!(!cache.on_disco_result(&romeo, Some("music"), &exodus()));
}

#[test]
fn a_failed_query_asks_someone_else() {
    let mut cache = CapsCache::default();
    let (romeo, nurse, friar) =
        (jid("romeo@montague.lit/orchard"), jid("nurse@capulet.lit/chamber"), jid("friar@verona.lit/cell"));
    let q = cache.on_presence(&romeo, Some(&exodus_caps()), true).unwrap();
    assert_eq!(cache.on_presence(&nurse, Some(&exodus_caps()), true), None);
    // An error from someone else, or about another node, changes nothing.
    cache.on_disco_error(&nurse, None);
    cache.on_disco_error(&romeo, Some("http://code.google.com/p/exodus#other"));
    assert_eq!(cache.poll_query(), None);
    cache.on_disco_error(&romeo, Some(&q.node));
    assert_eq!(cache.poll_query().map(|q| q.to), Some(nurse.clone()));
    assert_eq!(cache.poll_query(), None);
    // The nurse goes offline before answering: the friar is asked.
    assert_eq!(cache.on_presence(&friar, Some(&exodus_caps()), true), None);
    cache.on_presence(&nurse, None, false);
    assert_eq!(cache.poll_query().map(|q| q.to), Some(friar.clone()));
    // An answer that does not parse is an error: nobody is left to ask.
    assert!(
        !cache.on_disco_element(&friar, &el("<query xmlns='http://jabber.org/protocol/disco#info'><feature/></query>"))
    );
    assert_eq!(cache.poll_query(), None);
    assert_eq!(cache.features(&romeo), None);
    // Romeo's caps again: he was asked already.
    assert_eq!(cache.on_presence(&romeo, Some(&exodus_caps()), true), None);
}

#[test]
fn the_least_recently_seen_ver_goes_first() {
    let mut cache = CapsCache::with_limits(2, 16);
    let who: Vec<Jid> = (0..3).map(|i| jid(&format!("u{i}@x.lit/r"))).collect();
    let answers: Vec<(Caps, DiscoInfoResult)> = ["urn:x:0", "urn:x:1", "urn:x:2"].map(exodus_with).to_vec();
    for i in 0..2 {
        cache.on_presence(&who[i], Some(&answers[i].0), true).unwrap();
        assert!(cache.on_disco_result(&who[i], None, &answers[i].1));
    }
    // Seen again, ver 0 is the most recent; ver 1 goes when ver 2 comes.
    assert_eq!(cache.on_presence(&jid("v@x.lit/r"), Some(&answers[0].0), true), None);
    cache.on_presence(&who[2], Some(&answers[2].0), true).unwrap();
    assert!(cache.on_disco_result(&who[2], None, &answers[2].1));
    assert!(cache.ver_features(&answers[0].0.ver).is_some());
    assert!(cache.ver_features(&answers[1].0.ver).is_none());
    assert_eq!(cache.features(&who[1]), None);
    assert_eq!(cache.sizes().0, 2);
}

#[test]
fn the_oldest_jid_goes_first() {
    let mut cache = CapsCache::default();
    let (caps, info) = exodus_with("urn:x:0");
    let first = jid("u0@x.lit/r");
    cache.on_presence(&first, Some(&caps), true).unwrap();
    assert!(cache.on_disco_result(&first, None, &info));
    for i in 1..MAX_JIDS {
        assert_eq!(cache.on_presence(&jid(&format!("u{i}@x.lit/r")), Some(&caps), true), None);
    }
    assert!(cache.features(&first).is_some());
    cache.on_presence(&jid("last@x.lit/r"), Some(&caps), true);
    assert_eq!(cache.caps(&first), None);
    assert_eq!(cache.features(&first), None);
    assert_eq!(cache.sizes().1, MAX_JIDS);
    assert!(cache.features(&jid("u1@x.lit/r")).is_some());
}

#[test]
fn too_many_features_are_not_kept() {
    let mut cache = CapsCache::default();
    let mut info = exodus();
    info.features.extend((0..MAX_FEATURES).map(|i| format!("urn:x:{i}")));
    let caps = own(&info);
    let romeo = jid("romeo@montague.lit/orchard");
    cache.on_presence(&romeo, Some(&caps), true).unwrap();
    assert!(verify(&caps, &info));
    assert!(!cache.on_disco_result(&romeo, None, &info));
    assert_eq!((cache.features(&romeo), cache.ver_features(&caps.ver)), (None, None));
}
