//! JIDs (RFC 7622 addresses): parsing and normalisation.
//!
//! The local part goes through nodeprep, the domain through nameprep (and loses a
//! trailing dot), the resource through resourceprep (the stringprep profiles of
//! RFC 6122, which every server in the field still applies). Two JIDs that a server
//! considers the same compare equal here, which matters for the XEP-0065 DST.ADDR hash
//! and for matching IQ replies.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    #[error("the address is empty")]
    Empty,
    #[error("the address has no domain")]
    NoDomain,
    #[error("the part before '@' is empty")]
    EmptyLocal,
    #[error("the part after '/' is empty")]
    EmptyResource,
    #[error("the {0} part contains characters not allowed in an XMPP address")]
    Prep(&'static str),
    #[error("the {0} part is longer than 1023 bytes")]
    TooLong(&'static str),
    #[error("the domain has an empty label (two dots in a row, or only dots)")]
    EmptyLabel,
}

/// A normalised JID: `[local@]domain[/resource]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    local: Option<String>,
    domain: String,
    resource: Option<String>,
}

impl Jid {
    /// Builds a JID from parts, normalising each.
    pub fn from_parts(local: Option<&str>, domain: &str, resource: Option<&str>) -> Result<Jid, JidError> {
        let local = match local {
            None => None,
            Some("") => return Err(JidError::EmptyLocal),
            Some(l) => Some(prep(l, "local", stringprep::nodeprep)?),
        };
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if domain.is_empty() {
            return Err(JidError::NoDomain);
        }
        let domain = prep(domain, "domain", stringprep::nameprep)?;
        // Found by fuzzing: nameprep's NFKC turns U+2106 (℆) into "c/u", and "@" and
        // "/" may come out of other compatibility forms too: such a domain would read
        // back as another JID.
        if domain.contains(['@', '/']) {
            return Err(JidError::Prep("domain"));
        }
        // Found by fuzzing: ".." was read as the domain ".", which reads back as none.
        if domain.split('.').any(str::is_empty) {
            return Err(JidError::EmptyLabel);
        }
        let resource = match resource {
            None => None,
            Some("") => return Err(JidError::EmptyResource),
            Some(r) => Some(prep(r, "resource", stringprep::resourceprep)?),
        };
        Ok(Jid { local, domain, resource })
    }

    pub fn local(&self) -> Option<&str> {
        self.local.as_deref()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    pub fn is_bare(&self) -> bool {
        self.resource.is_none()
    }

    /// The JID without its resource.
    pub fn bare(&self) -> Jid {
        Jid { local: self.local.clone(), domain: self.domain.clone(), resource: None }
    }

    /// The domain alone, as a JID (the server or a component).
    pub fn domain_jid(&self) -> Jid {
        Jid { local: None, domain: self.domain.clone(), resource: None }
    }

    /// This JID's bare part with another resource.
    pub fn with_resource(&self, resource: &str) -> Result<Jid, JidError> {
        Jid::from_parts(self.local.as_deref(), &self.domain, Some(resource))
    }
}

fn prep(
    s: &str,
    part: &'static str,
    profile: fn(&str) -> Result<std::borrow::Cow<'_, str>, stringprep::Error>,
) -> Result<String, JidError> {
    let out = profile(s).map_err(|_| JidError::Prep(part))?;
    // Stringprep is not idempotent for every input (found by fuzzing: a capital lunate
    // sigma among combining marks came out as σ, which prepares to Σ on a second
    // pass): such a part would read back as another JID, so it is refused.
    if profile(&out).map_err(|_| JidError::Prep(part))? != out {
        return Err(JidError::Prep(part));
    }
    if out.is_empty() {
        return Err(JidError::Prep(part));
    }
    if out.len() > 1023 {
        return Err(JidError::TooLong(part));
    }
    Ok(out.into_owned())
}

impl FromStr for Jid {
    type Err = JidError;

    fn from_str(s: &str) -> Result<Jid, JidError> {
        if s.is_empty() {
            return Err(JidError::Empty);
        }
        // The resource may contain '@' and '/', so split it off first.
        let (rest, resource) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (local, domain) = match rest.find('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        Jid::from_parts(local, domain, resource)
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.local {
            write!(f, "{l}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(r) = &self.resource {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_domain_labels_are_refused() {
        for bad in ["..", "a@..", ".", "a@b..c", "a@.b", "a@b../r"] {
            assert!(bad.parse::<Jid>().is_err(), "{bad}");
        }
        assert_eq!("a@b.c.".parse::<Jid>().unwrap().domain(), "b.c");
    }

    #[test]
    fn parses_and_normalises() {
        let j: Jid = "Alice@Example.COM./Phone".parse().unwrap();
        assert_eq!(j.local(), Some("alice"));
        assert_eq!(j.domain(), "example.com");
        assert_eq!(j.resource(), Some("Phone"));
        assert_eq!(j.to_string(), "alice@example.com/Phone");
        assert_eq!(j.bare().to_string(), "alice@example.com");
        assert!(!j.is_bare());
        assert_eq!(j.domain_jid().to_string(), "example.com");
    }

    #[test]
    fn resource_may_hold_at_and_slash() {
        let j: Jid = "a@b/c@d/e".parse().unwrap();
        assert_eq!(j.local(), Some("a"));
        assert_eq!(j.domain(), "b");
        assert_eq!(j.resource(), Some("c@d/e"));
        let d: Jid = "proxy.example.com".parse().unwrap();
        assert_eq!(d.local(), None);
        assert!(d.is_bare());
    }

    #[test]
    fn equal_after_normalisation() {
        let a: Jid = "ALICE@localhost/R".parse().unwrap();
        let b: Jid = "alice@LOCALHOST/R".parse().unwrap();
        assert_eq!(a, b);
        let c: Jid = "alice@localhost/r".parse().unwrap();
        assert_ne!(a, c, "resources are case-sensitive");
    }

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!("".parse::<Jid>(), Err(JidError::Empty));
        assert_eq!("@example.com".parse::<Jid>(), Err(JidError::EmptyLocal));
        assert_eq!("a@".parse::<Jid>(), Err(JidError::NoDomain));
        // A compatibility character whose normal form holds a separator.
        assert_eq!("m(\u{2106}".parse::<Jid>(), Err(JidError::Prep("domain")));
        assert_eq!("a@m\u{2106}x/r".parse::<Jid>(), Err(JidError::Prep("domain")));
        assert_eq!("a@b/".parse::<Jid>(), Err(JidError::EmptyResource));
        assert_eq!("a b@example.com".parse::<Jid>(), Err(JidError::Prep("local")));
        assert_eq!("a\"b@example.com".parse::<Jid>(), Err(JidError::Prep("local")));
        let long = format!("{}@example.com", "a".repeat(1024));
        assert_eq!(long.parse::<Jid>(), Err(JidError::TooLong("local")));
    }
}
