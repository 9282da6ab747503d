//! One complete element's bytes to an `Element` tree: names, namespaces, attributes,
//! references and text checked; the structural limits enforced as it is built.

use super::*;

pub(super) fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

pub(super) fn utf8(bytes: &[u8]) -> Result<&str, XmlError> {
    std::str::from_utf8(bytes).map_err(|_| malformed("invalid UTF-8"))
}

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whether `s` is an XML name without a colon (`NCName`): quick-xml does not check
/// names, so `<a$b='c'>` would otherwise become an element we cannot write back
/// (found by fuzzing). Non-ASCII characters are taken as name characters.
pub(super) fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else { return false };
    let start = |c: char| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii();
    start(first) && chars.all(|c| start(c) || c.is_ascii_digit() || c == '-' || c == '.')
}

/// `name`, or an error when it is not a name (`prefix:local` allowed for attributes).
pub(super) fn checked_name(name: &str, qualified: bool) -> Result<&str, XmlError> {
    let ok = match name.split_once(':') {
        Some((p, l)) if qualified => is_ncname(p) && is_ncname(l),
        Some(_) => false,
        None => is_ncname(name),
    };
    if ok {
        Ok(name)
    } else {
        Err(malformed(format!("'{name}' is not an XML name")))
    }
}

/// XML 1.0 `Char` production (Rust strings already exclude surrogates).
pub(super) fn check_chars(s: &str) -> Result<(), XmlError> {
    let bad = |c: char| matches!(c, '\0'..='\x08' | '\x0B' | '\x0C' | '\x0E'..='\x1F' | '\u{FFFE}' | '\u{FFFF}');
    match s.chars().find(|&c| bad(c)) {
        Some(c) => Err(malformed(format!("character U+{:04X} is not allowed in XML", c as u32))),
        None => Ok(()),
    }
}

pub(super) fn ns_name(res: ResolveResult<'_>) -> Result<String, XmlError> {
    match res {
        // The declaration's value as written: references in it stand for characters
        // like in any attribute value (found by fuzzing: `xmlns='a&amp;b'` is `a&b`).
        ResolveResult::Bound(n) => {
            let raw = utf8(n.into_inner())?;
            Ok(quick_xml::escape::unescape(raw).map_err(malformed)?.into_owned())
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => {
            Err(malformed(format!("undeclared namespace prefix '{}'", String::from_utf8_lossy(&p))))
        }
    }
}

/// Attributes of `start`, values decoded and normalised (XML 1.0 §3.3.3). Namespace
/// declarations go to `decls` (when given) instead of the result. Attribute names keep
/// their qualified form (`xml:lang`), after checking the prefix is declared.
pub(super) fn read_attrs(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    mut decls: Option<&mut Vec<(String, String)>>,
) -> Result<Vec<(String, String)>, XmlError> {
    let mut attrs = Vec::new();
    let mut declared = 0;
    for attr in start.attributes() {
        let attr = attr.map_err(malformed)?;
        let raw = utf8(&attr.value)?;
        if raw.contains('<') {
            return Err(malformed("'<' in an attribute value"));
        }
        let raw: Cow<'_, str> = if raw.contains(['\t', '\n', '\r']) {
            raw.replace("\r\n", " ").replace(['\t', '\n', '\r'], " ").into()
        } else {
            raw.into()
        };
        let value = quick_xml::escape::unescape(&raw).map_err(malformed)?.into_owned();
        check_chars(&value)?;
        let key = checked_name(utf8(attr.key.as_ref())?, true)?.to_owned();
        if attrs.len() + declared >= MAX_ATTRIBUTES {
            return Err(Limit::Attributes(MAX_ATTRIBUTES).into());
        }
        if attr.key.as_namespace_binding().is_some() {
            declared += 1;
            if declared > MAX_NAMESPACE_DECLARATIONS {
                return Err(Limit::NamespaceDeclarations(MAX_NAMESPACE_DECLARATIONS).into());
            }
            if let Some(d) = decls.as_deref_mut() {
                d.push((key, value));
            }
            continue;
        }
        ns_name(reader.resolve_attribute(attr.key).0)?;
        // Attributes in other namespaces than `xml:` mean nothing to any protocol here,
        // and kept as `prefix:name` they would be written without their declaration
        // (found by fuzzing): they are left out of the tree.
        if key.split_once(':').is_some_and(|(prefix, _)| prefix != "xml") {
            continue;
        }
        attrs.push((key, value));
    }
    Ok(attrs)
}

/// The character a `&...;` reference stands for: the five predefined entities and
/// character references; anything else is an error (there is no DTD to define it).
pub(super) fn resolve_ref(r: &BytesRef<'_>) -> Result<char, XmlError> {
    if let Some(c) = r.resolve_char_ref().map_err(malformed)? {
        return Ok(c);
    }
    match &*r.decode().map_err(malformed)? {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(malformed(format!("unknown entity '&{other};'"))),
    }
}

pub(super) fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    check_chars(text)?;
    match stack.last_mut() {
        Some(top) => top.push_text(text),
        None if text.bytes().all(is_ws) => {}
        None => return Err(malformed("text outside the root element")),
    }
    Ok(())
}

/// Builds the tree of the single root element of `xml`. `standalone` (for
/// [`parse_element`]) allows a leading XML declaration and skips comments; otherwise
/// both are restricted, and the root is the namespace wrapper around one stanza (one
/// level more than [`MAX_DEPTH`], and any number of... one child). The [`Limit`]s are
/// checked element by element, before anything is added past them.
pub(super) fn read_tree(xml: &str, standalone: bool) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(xml);
    let max_depth = if standalone { MAX_DEPTH } else { MAX_DEPTH + 1 };
    let mut stack: Vec<Element> = Vec::new();
    // Child elements of each open element so far.
    let mut counts: Vec<usize> = Vec::new();
    let mut root: Option<Element> = None;
    let mut decl_ok = standalone;
    loop {
        let (res, event) = reader.read_resolved_event().map_err(malformed)?;
        let ns = ns_name(res);
        let mut finished = None;
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                if stack.len() >= max_depth {
                    return Err(Limit::Depth(MAX_DEPTH).into());
                }
                if let Some(n) = counts.last_mut() {
                    *n += 1;
                    if *n > MAX_CHILDREN {
                        return Err(Limit::Children(MAX_CHILDREN).into());
                    }
                }
                checked_name(utf8(s.name().as_ref())?, true)?;
                let el = Element {
                    name: checked_name(utf8(s.local_name().as_ref())?, false)?.to_owned(),
                    ns: ns?,
                    attrs: read_attrs(&reader, s, None)?,
                    children: Vec::new(),
                };
                match event {
                    Event::Start(_) => {
                        stack.push(el);
                        counts.push(0);
                    }
                    _ => finished = Some(el),
                }
            }
            Event::End(_) => {
                counts.pop();
                finished = Some(stack.pop().ok_or_else(|| malformed("unexpected end tag"))?)
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content().map_err(malformed)?)?,
            Event::CData(c) if !stack.is_empty() => push_text(&mut stack, &c.xml10_content().map_err(malformed)?)?,
            Event::GeneralRef(r) if !stack.is_empty() => {
                push_text(&mut stack, resolve_ref(&r)?.encode_utf8(&mut [0; 4]))?
            }
            Event::CData(_) | Event::GeneralRef(_) => return Err(malformed("text outside the root element")),
            Event::Decl(_) if decl_ok => {}
            Event::Comment(_) if standalone => {}
            Event::Comment(_) => return Err(XmlError::Restricted("comments are not allowed")),
            Event::Decl(_) | Event::PI(_) => {
                return Err(XmlError::Restricted("processing instructions are not allowed"))
            }
            Event::DocType(_) => return Err(XmlError::Restricted("DTDs are not allowed")),
            Event::Eof => break,
        }
        decl_ok = false;
        if let Some(el) = finished {
            match stack.last_mut() {
                Some(parent) => parent.push_child(el),
                None => root = Some(el),
            }
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unclosed element"));
    }
    root.ok_or_else(|| malformed("no element"))
}

/// Parses one standalone element (a test vector, a stored stanza). Namespaces are
/// resolved; a leading XML declaration, whitespace around the element and comments are
/// allowed; DTDs, processing instructions and anything else after the element are not.
pub fn parse_element(bytes: &[u8]) -> Result<Element, XmlError> {
    read_tree(utf8(bytes)?, true)
}
