//! The parse error every payload parser returns.
//!
//! A router tries parsers in turn: [`ParseError::NotMine`] means "this element is not
//! the kind I parse, try the next one"; every other variant means "this element is mine
//! but broken", which is answered with `bad-request`.

use crate::xml::Element;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The element has another name or namespace than this parser handles.
    #[error("expected <{expected}/>, found <{found}/>")]
    NotMine { expected: &'static str, found: String },
    /// A required attribute is absent.
    #[error("<{element}/> lacks the required attribute '{attr}'")]
    MissingAttr { element: &'static str, attr: &'static str },
    /// A required child element is absent.
    #[error("<{element}/> lacks the required child <{child}/>")]
    MissingChild { element: &'static str, child: &'static str },
    /// Present but unusable: a bad number, an unknown value, a violated rule.
    #[error("<{element}/>: {reason}")]
    Invalid { element: &'static str, reason: String },
}

impl ParseError {
    pub fn is_not_mine(&self) -> bool {
        matches!(self, ParseError::NotMine { .. })
    }

    pub fn invalid(element: &'static str, reason: impl Into<String>) -> Self {
        ParseError::Invalid { element, reason: reason.into() }
    }
}

/// Checks that `el` is `<name xmlns=ns>`, else [`ParseError::NotMine`].
pub fn expect(el: &Element, name: &'static str, ns: &str) -> Result<(), ParseError> {
    if el.is(name, ns) {
        Ok(())
    } else {
        Err(ParseError::NotMine { expected: name, found: format!("{{{}}}{}", el.ns, el.name) })
    }
}

/// A required attribute.
pub fn req_attr<'a>(el: &'a Element, element: &'static str, attr: &'static str) -> Result<&'a str, ParseError> {
    el.attr(attr).ok_or(ParseError::MissingAttr { element, attr })
}

/// An optional attribute parsed with `FromStr`; a value that does not parse is an error.
pub fn opt_parse<T: std::str::FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<Option<T>, ParseError> {
    match el.attr(attr) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ParseError::invalid(element, format!("attribute '{attr}' has a bad value '{v}'"))),
    }
}

/// A required attribute parsed with `FromStr`.
pub fn req_parse<T: std::str::FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<T, ParseError> {
    opt_parse(el, element, attr)?.ok_or(ParseError::MissingAttr { element, attr })
}
