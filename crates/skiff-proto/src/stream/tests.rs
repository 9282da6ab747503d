use super::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s-1' version='1.0' xml:lang='en'>";

/// Feeds `input` in chunks whose sizes `next_size` picks, pulling every event in between.
fn run(input: &[u8], mut next_size: impl FnMut() -> usize) -> (Vec<StreamEvent>, Option<XmlError>) {
    let mut parser = StreamParser::new(1 << 16);
    let (mut events, mut rest) = (Vec::new(), input);
    loop {
        loop {
            match parser.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
        if rest.is_empty() {
            return (events, None);
        }
        let n = next_size().clamp(1, rest.len());
        parser.feed(&rest[..n]);
        rest = &rest[n..];
    }
}

fn whole(input: &str) -> (Vec<StreamEvent>, Option<XmlError>) {
    run(input.as_bytes(), || usize::MAX)
}

fn stanzas(body: &str) -> Vec<Element> {
    let (events, err) = whole(&format!("{HEADER}{body}"));
    assert_eq!(err, None, "{body}");
    events.into_iter().filter_map(|e| if let StreamEvent::Stanza(s) = e { Some(s) } else { None }).collect()
}

fn stanza(body: &str) -> Element {
    let mut all = stanzas(body);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn error(input: &str) -> XmlError {
    whole(input).1.expect("an error")
}

fn body_error(body: &str) -> XmlError {
    error(&format!("{HEADER}{body}"))
}

fn header(input: &str) -> StreamHeader {
    match whole(input).0.first() {
        Some(StreamEvent::Open(h)) => h.clone(),
        other => panic!("no header: {other:?}"),
    }
}

#[test]
fn header_with_declaration() {
    let h = header(HEADER);
    assert_eq!(h.default_ns, "jabber:client");
    assert_eq!((h.id(), h.from()), (Some("s-1"), Some("example.com")));
    assert_eq!(h.attr("version"), Some("1.0"));
    assert_eq!(h.attr("xml:lang"), Some("en"));
    assert_eq!(h.attrs.len(), 4, "namespace declarations are not attributes");
}

#[test]
fn header_without_declaration_double_quotes_other_prefix() {
    let h = header(
        "\n <s:stream xmlns=\"jabber:client\" xmlns:s=\"http://etherx.jabber.org/streams\" to=\"a&amp;b&#x41;\">",
    );
    assert_eq!(h.attr("to"), Some("a&bA"));
    let (events, err) = whole(
        "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>\
         <s:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></s:features></s:stream >",
    );
    assert_eq!(err, None);
    let StreamEvent::Stanza(f) = &events[1] else { panic!("{events:?}") };
    assert!(f.is("features", ns::STREAM) && f.child("starttls", ns::TLS).is_some());
    assert_eq!(events[2], StreamEvent::Close);
}

#[test]
fn stanzas_resolve_namespaces() {
    let iq = stanza("<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>");
    assert!(iq.is("iq", "jabber:client"));
    assert_eq!(iq.attrs, vec![("type".into(), "result".into()), ("id".into(), "1".into())]);
    let item = iq.child("query", ns::ROSTER).and_then(|q| q.child("item", ns::ROSTER)).expect("item");
    assert_eq!(item.attr("jid"), Some("a@b"));

    let m = stanza("<message><foo:bar xmlns:foo='urn:x' foo:a='1'><baz/><foo:q/></foo:bar></message>");
    let bar = m.child("bar", "urn:x").expect("bar");
    assert_eq!(bar.attr("foo:a"), None, "attributes in other namespaces are left out");
    assert!(bar.child("baz", ns::CLIENT).is_some() && bar.child("q", "urn:x").is_some());

    let all = stanzas(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
         </mechanisms></stream:features><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         </stream:error>",
    );
    assert!(all[0].is("features", ns::STREAM));
    assert_eq!(
        all[0].child("mechanisms", ns::SASL).and_then(|m| m.child_text("mechanism", ns::SASL)).as_deref(),
        Some("PLAIN")
    );
    assert!(all[1].is("error", ns::STREAM) && all[1].child("conflict", ns::STREAM_ERRORS).is_some());
}

#[test]
fn references_cdata_and_line_ends() {
    let m = stanza(
        "<message to='a&apos;b&#x41;&#66;&quot;' note='x\ty\r\nz'><body>&lt;&gt;&amp;&apos;&quot;&#233;&#x1F600;\
         r\r\nn</body><x><![CDATA[<y>&amp;]]]]><![CDATA[>]]></x></message>",
    );
    assert_eq!(m.attr("to"), Some("a'bAB\""));
    assert_eq!(m.attr("note"), Some("x y z"));
    assert_eq!(m.child_text("body", ns::CLIENT).as_deref(), Some("<>&'\"é😀r\nn"));
    assert_eq!(m.child_text("x", ns::CLIENT).as_deref(), Some("<y>&amp;]]>"));
    assert!(matches!(body_error("<message><body>&nbsp;</body></message>"), XmlError::Malformed(_)));
    assert!(matches!(body_error("<message><body>&#1;</body></message>"), XmlError::Malformed(_)));
    assert!(matches!(body_error("<message a='&bogus;'/>"), XmlError::Malformed(_)));
    assert!(matches!(body_error("<message><body>a & b</body></message>"), XmlError::Malformed(_)));
}

#[test]
fn keepalives_and_close() {
    let input = format!("{HEADER} \n<presence/>\t \r\n<presence/>  </stream:stream>\n");
    let (events, err) = whole(&input);
    assert_eq!(err, None);
    assert_eq!(events.len(), 4);
    assert!(matches!(events[0], StreamEvent::Open(_)) && events[3] == StreamEvent::Close);
    let mut p = StreamParser::new(1000);
    p.feed(format!("{HEADER}<presence/>").as_bytes());
    while let Ok(Some(_)) = p.next_event() {}
    p.feed(b" \n \n");
    assert_eq!(p.next_event(), Ok(None));
    assert_eq!(p.buffered(), 0, "keepalives are dropped");
    p.feed(b"<presence");
    assert_eq!(p.next_event(), Ok(None));
    assert_eq!(p.buffered(), 9);
    assert!(matches!(body_error("<presence/>x<presence/>"), XmlError::Malformed(_)));
    assert!(matches!(body_error("<![CDATA[x]]>"), XmlError::Malformed(_)));
    assert!(matches!(error(&format!("{HEADER}</stream:stream><presence/>")), XmlError::Malformed(_)));
}

const FIXTURE: &str = "<?xml version='1.0' encoding='UTF-8'?>\n\
    <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='ïd' version='1.0'>\
    <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\n \
    <message from='jüliet@ex.com' to=\"r&#xF6;meo@ex.com\" a='>'><body>Grüße 😀 &amp; ]]&gt; --&gt;</body>\
    <x xmlns='jabber:x:data' type=\"form\"><field var='a'><value><![CDATA[<>]]]]><![CDATA[>]]>Zoë]]></value>\
    </field></x></message>\r\n<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>";

#[test]
fn any_chunking_gives_the_same_events() {
    let (expected, err) = whole(FIXTURE);
    assert_eq!(err, None);
    assert_eq!(expected.len(), 5);
    assert_eq!(run(FIXTURE.as_bytes(), || 1), (expected.clone(), None));
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for max in [2, 3, 7, 16, 64] {
        for _ in 0..50 {
            let sizes = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % max) as usize + 1
            };
            assert_eq!(run(FIXTURE.as_bytes(), sizes), (expected.clone(), None));
        }
    }
}

#[test]
fn reset_restarts_the_stream() {
    let mut p = StreamParser::new(4096);
    p.feed(format!("{HEADER}<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01garbage").as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(s))) if s.is("proceed", ns::TLS)));
    p.reset();
    assert_eq!(p.buffered(), 0);
    p.feed(HEADER.replace("s-1", "s-2").as_bytes());
    p.feed(b"<stream:features/>");
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(h))) if h.id() == Some("s-2")));
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(s))) if s.is("features", ns::STREAM)));
}

#[test]
fn oversize_stanza_fails_early_with_bounded_memory() {
    const CAP: usize = 64 * 1024;
    let mut p = StreamParser::new(CAP);
    p.feed(HEADER.as_bytes());
    p.feed(b"<message><body>");
    let chunk = [b'a'; 4096];
    let mut fed = 0;
    let err = loop {
        assert!(fed < 10 << 20, "never failed");
        match p.next_event() {
            Ok(Some(StreamEvent::Open(_))) => continue,
            Ok(None) => assert!(p.buffered() <= CAP + 4096 + 64, "{}", p.buffered()),
            other => break other,
        }
        p.feed(&chunk);
        fed += chunk.len();
    };
    assert_eq!(err, Err(XmlError::TooLarge { limit: CAP }));
    assert!(fed <= CAP + 8192);
    assert_eq!(p.buffered(), 0);
    p.feed(b"</body></message>");
    assert_eq!(p.next_event(), Err(XmlError::TooLarge { limit: CAP }), "poisoned");

    // The cap counts the whole stanza, header too.
    let exact = "<presence/>";
    let mut p = StreamParser::new(HEADER.len());
    p.feed(format!("{HEADER}{exact}").as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    let mut p = StreamParser::new(exact.len() - 1);
    p.feed(format!("{HEADER}{exact}").as_bytes());
    assert_eq!(p.next_event(), Err(XmlError::TooLarge { limit: exact.len() - 1 }));
}

#[test]
fn restricted_xml() {
    let laughs = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]>";
    assert!(matches!(error(&format!("{laughs}{HEADER}")), XmlError::Restricted(_)));
    assert!(matches!(body_error("<message><!ENTITY x 'y'></message>"), XmlError::Restricted(_)));
    for bad in
        ["<!-- hi -->", "<message><!-- hi --></message>", "<?foo bar?>", "<message><?xml version='1.0'?></message>"]
    {
        let e = body_error(bad);
        assert!(matches!(e, XmlError::Restricted(_)), "{bad}: {e:?}");
        assert_eq!(e.condition(), "restricted-xml");
    }
    assert!(matches!(error("<!-- c --><stream:stream/>"), XmlError::Restricted(_)));
    assert!(matches!(error("<?xml-stylesheet x?><stream:stream/>"), XmlError::Restricted(_)));
    assert!(matches!(error("<?xml version='1.0'?><?xml version='1.0'?>"), XmlError::Restricted(_)));
}

#[test]
fn malformed_xml() {
    for bad in [
        "<message><body></message></body>",
        "</foo>",
        "<message><x:y/></message>",
        "<message x:a='1'/>",
        "<message a='1' a='2'/>",
        "<message a=1/>",
        "<message a='<'/>",
        "<message><</message>",
        "<message><!bogus></message>",
    ] {
        let e = body_error(bad);
        assert!(matches!(e, XmlError::Malformed(_)), "{bad}: {e:?}");
        assert_eq!(e.condition(), "not-well-formed");
    }
    for bad in [
        &b"<message><body>\xff</body></message>"[..],
        b"<message a='\xc3'/>",
        b"<message><body>\xe2\x82</body></message>",
    ] {
        let input = [HEADER.as_bytes(), bad].concat();
        assert!(matches!(run(&input, || 1).1, Some(XmlError::Malformed(_))));
    }
    assert!(matches!(error("hello"), XmlError::Malformed(_)));
}

#[test]
fn bad_headers() {
    let e = error("<stream:stream xmlns:stream='jabber:client'>");
    assert!(matches!(e, XmlError::BadHeader(_)));
    assert_eq!(e.condition(), "invalid-namespace");
    let e = error("<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>");
    assert!(matches!(e, XmlError::BadHeader(_)));
    assert_eq!(e.condition(), "not-well-formed");
    assert_eq!(
        error("<stream:stream xmlns='jabber:client'>").to_string(),
        "bad stream header: undeclared namespace prefix 'stream'"
    );
    assert!(matches!(
        error("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>"),
        XmlError::BadHeader(_)
    ));
}

/// Events of `body` after the header, fed whole, with a parser whose size cap is `max`.
fn events_within(max: usize, body: &str) -> (Vec<StreamEvent>, Option<XmlError>) {
    let mut p = StreamParser::new(max);
    p.feed(format!("{HEADER}{body}").as_bytes());
    let mut events = Vec::new();
    loop {
        match p.next_event() {
            Ok(Some(StreamEvent::Open(_))) => {}
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

fn nested(levels: usize) -> String {
    format!("{}{}", "<a>".repeat(levels), "</a>".repeat(levels))
}

const PING: &str = "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>";

/// The stanza over a limit is dropped (with what its opening tag said), the next one
/// arrives, and the stream goes on.
fn assert_dropped(body: &str, limit: Limit) -> DroppedStanza {
    let (events, err) = events_within(4 << 20, &format!("{body}{PING}"));
    assert_eq!(err, None);
    assert_eq!(events.len(), 2, "{:?}", events.first());
    let StreamEvent::Dropped(d) = &events[0] else { panic!("not dropped: {:?}", events[0]) };
    assert_eq!(d.limit, limit);
    assert!(matches!(&events[1], StreamEvent::Stanza(s) if s.attr("id") == Some("p1")), "{:?}", events[1]);
    d.clone()
}

#[test]
fn deep_nesting_is_dropped_and_the_stream_goes_on() {
    // What a stranger sent: ~36,000 levels in one message.
    let body = format!("<message from='mallory@evil.example/x' type='chat' id='m1'>{}</message>", nested(36_000));
    let d = assert_dropped(&body, Limit::Depth(MAX_DEPTH));
    assert_eq!((d.name.as_str(), d.id.as_deref(), d.kind.as_deref()), ("message", Some("m1"), Some("chat")));
    assert_eq!(d.from.as_deref(), Some("mallory@evil.example/x"));

    // Exactly at the limit is fine: the stanza is depth 1.
    let ok = stanza(&format!("<message>{}</message>", nested(MAX_DEPTH - 1)));
    let mut depth = 1;
    let mut el = &ok;
    while let Some(child) = el.elements().next() {
        el = child;
        depth += 1;
    }
    assert_eq!(depth, MAX_DEPTH);
    // One more is not; an empty innermost element counts the same.
    let over = format!("<iq type='set' id='q&amp;1' from='a@b'>{}</iq>", nested(MAX_DEPTH));
    let d = assert_dropped(&over, Limit::Depth(MAX_DEPTH));
    assert_eq!((d.name.as_str(), d.id.as_deref(), d.kind.as_deref()), ("iq", Some("q&1"), Some("set")));
    let over_empty = format!("<message>{}<b/>{}</message>", "<a>".repeat(MAX_DEPTH - 1), "</a>".repeat(MAX_DEPTH - 1));
    assert_dropped(&over_empty, Limit::Depth(MAX_DEPTH));
}

#[test]
fn skipping_keeps_nothing_and_still_counts_the_size() {
    // A deep stanza fed in 4 KiB chunks: nothing of it is buffered.
    let mut p = StreamParser::new(1 << 20);
    p.feed(HEADER.as_bytes());
    assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Open(_)))));
    p.feed(b"<message id='deep'>");
    let chunk = "<a>".repeat(1365);
    for _ in 0..100 {
        p.feed(chunk.as_bytes());
        assert_eq!(p.next_event(), Ok(None));
        assert!(p.buffered() < 64, "{}", p.buffered());
    }
    // ...and the size cap still applies to it as a whole.
    let err = loop {
        p.feed(chunk.as_bytes());
        match p.next_event() {
            Ok(None) => continue,
            other => break other,
        }
    };
    assert_eq!(err, Err(XmlError::TooLarge { limit: 1 << 20 }));
    let (_, err) = events_within(100_000, &format!("<message>{}</message>", nested(20_000)));
    assert_eq!(err, Some(XmlError::TooLarge { limit: 100_000 }));
}

#[test]
fn attribute_and_namespace_floods_are_dropped() {
    let attrs = |n: usize| (0..n).map(|i| format!(" a{i}='{i}'")).collect::<String>();
    stanza(&format!("<message><x{}/></message>", attrs(MAX_ATTRIBUTES)));
    let d = assert_dropped(
        &format!("<iq type='get' id='f'><x{}/></iq>", attrs(MAX_ATTRIBUTES + 1)),
        Limit::Attributes(MAX_ATTRIBUTES),
    );
    assert_eq!(d.id.as_deref(), Some("f"));
    // On the stanza itself: nothing of it is known.
    let d = assert_dropped(&format!("<iq type='get' id='f'{}/>", attrs(20_000)), Limit::Attributes(MAX_ATTRIBUTES));
    assert_eq!((d.name.as_str(), d.id), ("", None));
    assert_dropped(&format!("<iq{}><x/></iq>", attrs(20_000)), Limit::Attributes(MAX_ATTRIBUTES));
    // '=' inside values does not count.
    stanza(&format!("<message a='{}'/>", "=".repeat(1000)));

    let decls = |n: usize| (0..n).map(|i| format!(" xmlns:p{i}='urn:x:{i}'")).collect::<String>();
    stanza(&format!("<message><x{}/></message>", decls(MAX_NAMESPACE_DECLARATIONS)));
    let d = assert_dropped(
        &format!("<iq type='set' id='n'><x{}/></iq>", decls(MAX_NAMESPACE_DECLARATIONS + 1)),
        Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS),
    );
    assert_eq!((d.name.as_str(), d.id.as_deref()), ("iq", Some("n")));
    let d = assert_dropped(
        &format!("<iq type='set' id='n2'{}/>", decls(MAX_NAMESPACE_DECLARATIONS + 1)),
        Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS),
    );
    assert_eq!(d.id.as_deref(), Some("n2"));
}

#[test]
fn wide_stanzas_are_dropped_past_the_children_limit() {
    let wide = |n: usize| format!("<message id='w'><x>{}</x></message>", "<a/>".repeat(n));
    let ok = stanza(&wide(MAX_CHILDREN));
    assert_eq!(ok.elements().next().unwrap().elements().count(), MAX_CHILDREN);
    let d = assert_dropped(&wide(MAX_CHILDREN + 1), Limit::Children(MAX_CHILDREN));
    assert_eq!(d.id.as_deref(), Some("w"));
    // Children of the stanza itself count too; text between them does not.
    assert_dropped(&format!("<message>{}</message>", "t<a/>".repeat(MAX_CHILDREN + 1)), Limit::Children(MAX_CHILDREN));
}

#[test]
fn dropped_stanzas_do_not_depend_on_chunking() {
    let input = format!(
        "{HEADER}<message id='1'>{}</message>{PING}<iq id='2'><x{}/></iq><presence/>",
        nested(500),
        (0..100).map(|i| format!(" a{i}='>'")).collect::<String>()
    );
    let (reference, err) = run(input.as_bytes(), || usize::MAX);
    assert_eq!(err, None);
    assert_eq!(reference.iter().filter(|e| matches!(e, StreamEvent::Dropped(_))).count(), 2);
    for size in [1, 2, 3, 7, 64, 1000] {
        assert_eq!(run(input.as_bytes(), || size), (reference.clone(), None), "chunks of {size}");
    }
}

#[test]
fn attributes_in_other_namespaces_are_left_out() {
    let el = parse_element(b"<message xml:lang='en'><foo:bar xmlns:foo='urn:x' foo:a='1' b='2'/></message>").unwrap();
    assert_eq!(el.attr("xml:lang"), Some("en"));
    let child = el.elements().next().unwrap();
    assert_eq!(child.attrs, vec![("b".to_owned(), "2".to_owned())]);
    assert_eq!(parse_element(child.to_xml().as_bytes()).unwrap(), *child);
    // An undeclared prefix is still an error.
    assert!(parse_element(b"<a p:b='1'/>").is_err());
}

#[test]
fn names_must_be_xml_names() {
    for bad in ["<a$b/>", "<a:b:c/>", "<1a/>", "<-a/>", "<a b$='1'/>", "<a :b='1'/>", "<a b:='1'/>"] {
        assert!(matches!(parse_element(bad.as_bytes()), Err(XmlError::Malformed(_))), "{bad}");
    }
    for good in ["<a.b-c_d/>", "<_x/>", "<名前 属性='1'/>", "<a xml:lang='en'/>"] {
        assert!(parse_element(good.as_bytes()).is_ok(), "{good}");
    }
}

#[test]
fn namespace_names_are_unescaped_like_attribute_values() {
    let el = stanza("<iq type='get' id='n1'><query xmlns='urn:x:a&amp;b&#x3e;c&gt;'/></iq>");
    let q = el.elements().next().unwrap();
    assert_eq!(q.ns, "urn:x:a&b>c>");
    // ...so that what we write reads back the same.
    assert_eq!(parse_element(q.to_xml().as_bytes()).unwrap(), *q);
}

#[test]
fn the_header_and_standalone_elements_obey_the_limits() {
    let decls = (0..MAX_NAMESPACE_DECLARATIONS).map(|i| format!(" xmlns:p{i}='urn:x:{i}'")).collect::<String>();
    let header =
        format!("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'{decls}>");
    assert_eq!(error(&header), XmlError::Limit(Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS)));
    assert_eq!(error(&header).condition(), "policy-violation");
    let deep = nested(100_000);
    assert_eq!(parse_element(deep.as_bytes()), Err(XmlError::Limit(Limit::Depth(MAX_DEPTH))));
    assert!(parse_element(nested(MAX_DEPTH).as_bytes()).is_ok());
    assert!(parse_element(nested(MAX_DEPTH + 1).as_bytes()).is_err());
}

#[test]
fn round_trips_real_stanzas() {
    let vectors = [
        "<iq type='set' id='offer1' to='receiver@jabber.org/resource'>\
           <si xmlns='http://jabber.org/protocol/si' id='a0' mime-type='text/plain'\
               profile='http://jabber.org/protocol/si/profile/file-transfer'>\
             <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='test.txt' size='1022'>\
               <desc>This is a test. If this were a real file...</desc><range/></file>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'>\
               <x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'>\
                 <option><value>http://jabber.org/protocol/bytestreams</value></option>\
                 <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si></iq>",
        "<iq type='set' from='requester@example.com/foo' to='target@example.org/bar' id='hu3vax16'>\
           <query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46' mode='tcp'>\
             <streamhost jid='requester@example.com/foo' host='192.168.4.1' port='5086'/>\
             <streamhost jid='proxy.example.net' host='24.24.24.1' zeroconf='_jabber.bytestreams'/></query></iq>",
        "<message to='a@b' type='chat' xml:lang='en'><body>&lt;&amp;&gt;&apos;&quot; \r\n\tdone</body>\
           <stream:error/><thread>t&#13;1</thread></message>",
    ];
    for v in vectors {
        let first = stanza(v);
        let written = write_stanza(&first);
        assert!(written.starts_with(&format!("<{} ", first.name)), "{written}");
        assert_eq!(stanza(&written), first, "{written}");
    }
    let m = stanza(vectors[2]);
    assert_eq!(m.child_text("body", ns::CLIENT).as_deref(), Some("<&>'\" \n\tdone"));
    assert_eq!(m.child_text("thread", ns::CLIENT).as_deref(), Some("t\r1"));
}

#[test]
fn standalone_elements() {
    let e = parse_element(b"<?xml version='1.0'?>\n<!-- c --><a xmlns='urn:a' k='&lt;'><b:c xmlns:b='urn:b'/>x</a>\n ")
        .expect("parses");
    assert!(e.is("a", "urn:a") && e.child("c", "urn:b").is_some());
    assert_eq!((e.attr("k"), e.text().as_str()), (Some("<"), "x"));
    assert_eq!("<iq/>".parse::<Element>(), Ok(Element::new("iq", "")));
    assert!(matches!(parse_element(b"<a/>junk"), Err(XmlError::Malformed(_))));
    assert!(matches!(parse_element(b"<a/><b/>"), Err(XmlError::Malformed(_))));
    assert!(matches!(parse_element(b"<a>"), Err(XmlError::Malformed(_))));
    assert!(matches!(parse_element(b""), Err(XmlError::Malformed(_))));
    assert!(matches!(parse_element(b"<a><p:b/></a>"), Err(XmlError::Malformed(_))));
    assert!(matches!(parse_element(b"<!DOCTYPE a><a/>"), Err(XmlError::Restricted(_))));
    assert!(matches!(parse_element(b"<a><?pi x?></a>"), Err(XmlError::Restricted(_))));
}

#[test]
fn writers() {
    assert_eq!(
        open_stream("ex'ample.com", Some("me@ex.com")),
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
         to='ex&apos;ample.com' from='me@ex.com' version='1.0' xml:lang='en'>"
    );
    let h = header(&open_stream("example.com", None));
    assert_eq!(
        h.attrs,
        vec![("to".into(), "example.com".into()), ("version".into(), "1.0".into()), ("xml:lang".into(), "en".into())]
    );
    let err = stream_error("policy-violation", Some("too <big>"));
    assert_eq!(
        err,
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too &lt;big&gt;</text></stream:error>"
    );
    let e = stanza(&err);
    assert!(e.is("error", ns::STREAM) && e.child("policy-violation", ns::STREAM_ERRORS).is_some());
    assert_eq!(
        stream_error("conflict", None),
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    );
    assert_eq!(write_stanza(&Element::new("presence", ns::CLIENT)), "<presence/>");
    assert_eq!(XmlError::TooLarge { limit: 1 }.condition(), "policy-violation");
    assert_eq!(format!("{}{CLOSE_STREAM}", open_stream("a", None)).matches("stream:stream").count(), 2);
}
