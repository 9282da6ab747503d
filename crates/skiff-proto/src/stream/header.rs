//! The stream header: its attributes, and what later stanzas need from it.

use super::*;

/// What the header taught us, needed to parse stanzas and the close tag.
#[derive(Debug)]
pub(super) struct StreamCtx {
    /// The header's qualified name (`stream:stream`), to match the closing tag.
    pub(super) qname: String,
    /// `<w xmlns='...' xmlns:stream='...'>`: re-declares the header's namespaces.
    pub(super) wrapper: String,
}

pub(super) fn parse_header(bytes: &[u8]) -> Result<(StreamHeader, StreamCtx), XmlError> {
    let mut reader = NsReader::from_str(utf8(bytes)?);
    let (res, event) = reader.read_resolved_event().map_err(malformed)?;
    let ns = ns_name(res).map_err(|e| match e {
        XmlError::Malformed(m) => XmlError::BadHeader(m),
        e => e,
    })?;
    let start = match event {
        Event::Start(s) => s,
        Event::Empty(_) => return Err(XmlError::BadHeader("the stream element is empty".into())),
        _ => return Err(malformed("expected the stream header")),
    };
    if ns != ns::STREAM {
        return Err(XmlError::BadHeader(format!(
            "namespace of the stream element must be '{}', not '{ns}'",
            ns::STREAM
        )));
    }
    if start.local_name().as_ref() != b"stream" {
        return Err(XmlError::BadHeader("the root element must be <stream>".into()));
    }
    let mut decls = Vec::new();
    let attrs = read_attrs(&reader, &start, Some(&mut decls))?;
    let default_ns = decls.iter().find(|(k, _)| k == "xmlns").map(|(_, v)| v.clone()).unwrap_or_default();
    let mut wrapper = String::from("<w");
    for (k, v) in &decls {
        wrapper.push(' ');
        wrapper.push_str(k);
        wrapper.push_str("='");
        escape_into(&mut wrapper, v, true);
        wrapper.push('\'');
    }
    wrapper.push('>');
    let qname = utf8(start.name().as_ref())?.to_owned();
    Ok((StreamHeader { attrs, default_ns }, StreamCtx { qname, wrapper }))
}
