//! Where HTTP requests for links may go, checked where it counts: at every redirect and
//! on the addresses a host name resolves to (so a name cannot rebind into the local
//! network or this machine).
//!
//! The rules (the URL's own form is checked by `upload::check_url`):
//! - public addresses: allowed;
//! - this machine (loopback): only when the URL names it itself (`127.0.0.1`,
//!   `localhost`), never by a redirect from elsewhere or a name resolving to it;
//! - the local network (RFC 1918, link-local, CGNAT, fc00::/7, unspecified, multicast,
//!   broadcast): only by a literal address in a `jabber:iq:oob` URL, or for host names
//!   under the account's own server domain (a self-hosted server on the LAN is the
//!   user's own); never by a redirect from elsewhere or another name resolving to it.

use std::net::{IpAddr, SocketAddr};

/// Where an address points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    Public,
    /// This machine.
    Loopback,
    /// The local network or nothing routable: private ranges, link-local, CGNAT,
    /// unique-local, unspecified, multicast, broadcast.
    Local,
}

/// The class of `ip` (IPv4-mapped IPv6 addresses as their IPv4 address).
pub fn classify(ip: IpAddr) -> AddrClass {
    match ip {
        IpAddr::V4(a) => {
            let [o1, o2, ..] = a.octets();
            if a.is_loopback() {
                AddrClass::Loopback
            } else if a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || (o1 == 100 && (o2 & 0xc0) == 64)
                || o1 == 0
                || o1 >= 240
            {
                AddrClass::Local
            } else {
                AddrClass::Public
            }
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return classify(IpAddr::V4(v4));
            }
            let s0 = a.segments()[0];
            if a.is_loopback() {
                AddrClass::Loopback
            } else if a.is_unspecified() || a.is_multicast() || (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfe80 {
                AddrClass::Local
            } else {
                AddrClass::Public
            }
        }
    }
}

/// Whether `host` is `domain` or a name under it (both compared without case and
/// trailing dot).
pub fn is_under(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

fn is_localhost(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// The class a URL's host names by itself: a literal address's, `localhost`'s, or
/// `None` for other names (decided when they are resolved).
fn literal_class(url: &reqwest::Url) -> Option<AddrClass> {
    match url.host()? {
        url::Host::Ipv4(a) => Some(classify(IpAddr::V4(a))),
        url::Host::Ipv6(a) => Some(classify(IpAddr::V6(a))),
        url::Host::Domain(d) if is_localhost(d) => Some(AddrClass::Loopback),
        url::Host::Domain(_) => None,
    }
}

/// Whether a link's own URL may be dialled, as far as its host is a literal address:
/// this machine when named (`127.0.0.1`, `localhost`: the URL check decides), the
/// local network only when `lan` (a contact's `jabber:iq:oob` URL: clients serve files
/// from their own machine on the same network). Host names are checked when they are
/// resolved ([`PolicyResolver`]).
pub fn link_target_allowed(url: &reqwest::Url, lan: bool) -> Result<(), String> {
    match literal_class(url) {
        Some(AddrClass::Local) if !lan => Err(format!("refusing a link into the local network ({url})")),
        _ => Ok(()),
    }
}

/// Whether a redirect from `previous` to `next` may be followed: `next` must pass the
/// message-link URL check (https, or http to this machine), and may point at this
/// machine (or the local network) by a literal address only when `previous` was on
/// this machine (on the local network) too.
pub fn redirect_allowed(previous: &reqwest::Url, next: &reqwest::Url) -> Result<(), String> {
    let from = literal_class(previous).unwrap_or(AddrClass::Public);
    let inwards = match (literal_class(next), from) {
        (Some(AddrClass::Loopback), AddrClass::Loopback) => Ok(()),
        (Some(AddrClass::Local), AddrClass::Local) => Ok(()),
        (Some(AddrClass::Loopback), _) => Err(format!("refusing a redirect from {previous} to this machine ({next})")),
        (Some(AddrClass::Local), _) => {
            Err(format!("refusing a redirect from {previous} into the local network ({next})"))
        }
        _ => Ok(()),
    };
    inwards?;
    super::upload::check_url(next.as_str()).map_err(|e| format!("refusing a redirect to {next}: {e}"))?;
    Ok(())
}

/// The redirect policy of the HTTP client: at most 5 hops, each checked with
/// [`redirect_allowed`].
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > 5 {
            return attempt.error("too many redirects");
        }
        let Some(previous) = attempt.previous().last().cloned() else { return attempt.follow() };
        match redirect_allowed(&previous, attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    })
}

/// Resolves host names for the HTTP client and refuses names that resolve to this
/// machine or the local network, except `localhost` (to loopback) and names under
/// `own_domain` (the account's server).
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    pub own_domain: Option<String>,
}

/// Whether addresses of `name` in `class` may be used.
pub fn resolved_allowed(name: &str, class: AddrClass, own_domain: Option<&str>) -> bool {
    match class {
        AddrClass::Public => true,
        AddrClass::Loopback if is_localhost(name) => true,
        _ => own_domain.is_some_and(|d| is_under(name, d)),
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let own = self.own_domain.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !resolved_allowed(&name, classify(a.ip()), own.as_deref())) {
                let what = match classify(bad.ip()) {
                    AddrClass::Loopback => "this machine",
                    _ => "the local network",
                };
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("refusing {name}: it resolves to {} ({what})", bad.ip()).into();
                return Err(e);
            }
            if addrs.is_empty() {
                return Err(format!("{name} has no address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> AddrClass {
        classify(s.parse().unwrap())
    }

    fn url(s: &str) -> reqwest::Url {
        s.parse().unwrap()
    }

    #[test]
    fn address_classes() {
        for a in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(ip(a), AddrClass::Loopback, "{a}");
        }
        for a in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::",
            "ff02::1",
            "::ffff:192.168.0.1",
        ] {
            assert_eq!(ip(a), AddrClass::Local, "{a}");
        }
        for a in ["1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2001:db8::1", "2a00:1450::1"] {
            assert_eq!(ip(a), AddrClass::Public, "{a}");
        }
    }

    #[test]
    fn redirects_may_not_move_inwards() {
        let public = url("https://files.example.org/a");
        assert!(redirect_allowed(&public, &url("https://cdn.example.net/b")).is_ok());
        for inward in [
            "http://127.0.0.1/x",
            "https://127.0.0.1/x",
            "http://localhost:8080/x",
            "https://[::1]/x",
            "https://192.168.1.1/admin",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
        ] {
            let e = redirect_allowed(&public, &url(inward)).unwrap_err();
            assert!(e.contains("refusing"), "{inward}: {e}");
        }
        // Downgrades to plain http elsewhere are refused by the URL check itself.
        let e = redirect_allowed(&public, &url("http://files.example.org/a")).unwrap_err();
        assert!(e.contains("refusing") && e.contains("plain http"), "{e}");
        // A local server may redirect within this machine.
        assert!(redirect_allowed(&url("http://127.0.0.1:8080/a"), &url("http://127.0.0.1:8080/b")).is_ok());
        assert!(redirect_allowed(&url("http://localhost:1/a"), &url("http://127.0.0.1:2/b")).is_ok());
        // ...but not from there into the local network.
        assert!(redirect_allowed(&url("http://127.0.0.1:8080/a"), &url("https://192.168.1.1/b")).is_err());
    }

    #[test]
    fn literal_lan_addresses_only_for_a_contacts_iq_oob() {
        for bad in ["https://192.168.1.1/f", "https://10.0.0.1/f", "https://[fe80::1]/f", "https://100.64.1.1/f"] {
            let e = link_target_allowed(&url(bad), false).unwrap_err();
            assert!(e.contains("refusing") && e.contains("local network"), "{bad}: {e}");
            assert!(link_target_allowed(&url(bad), true).is_ok(), "{bad}");
        }
        for ok in ["https://files.example.org/f", "http://127.0.0.1:8080/f", "http://localhost/f", "https://1.1.1.1/f"]
        {
            assert!(link_target_allowed(&url(ok), false).is_ok(), "{ok}");
        }
    }

    #[test]
    fn resolved_addresses() {
        assert!(resolved_allowed("files.example.org", AddrClass::Public, None));
        assert!(!resolved_allowed("evil.example", AddrClass::Loopback, None));
        assert!(!resolved_allowed("evil.example", AddrClass::Local, Some("example.org")));
        assert!(resolved_allowed("localhost", AddrClass::Loopback, None));
        assert!(!resolved_allowed("localhost", AddrClass::Local, None));
        assert!(resolved_allowed("upload.home.example", AddrClass::Local, Some("home.example")));
        assert!(resolved_allowed("home.example.", AddrClass::Loopback, Some("HOME.example")));
        assert!(!resolved_allowed("nothome.example", AddrClass::Local, Some("home.example")));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_into_this_machine() {
        use reqwest::dns::Resolve;
        let r = PolicyResolver { own_domain: Some("example.org".into()) };
        // "localhost" resolves to loopback and is allowed by its name.
        let ok: Vec<_> = r.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(ok.iter().all(|a| a.ip().is_loopback()));
        // A name that is not localhost but resolves to loopback (the system resolver
        // maps *.localhost there too on some systems; use an /etc/hosts-style name that
        // every resolver knows instead: the literal dotted name of loopback).
        let e = match r.resolve("127.0.0.1".parse().unwrap()).await {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("this machine"), "{e}");
    }
}
