//! The demo server: the same accounts, folder and ports for the `skiff-devserver`
//! binary and the desktop app's demo mode.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{Prosody, ProsodyOptions, TlsMode};

/// The demo's accounts; each one's password is `USER-demo`, all are mutual contacts.
pub const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// (c2s, proxy65, HTTP), used when free.
pub const PREFERRED_PORTS: (u16, u16, u16) = (15222, 17777, 15280);

/// The demo password of `user`.
pub fn password(user: &str) -> String {
    format!("{user}-demo")
}

/// `$XDG_DATA_HOME/skiff-demo`, else `$HOME/.local/share/skiff-demo`; `None` without
/// either.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("skiff-demo"));
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
    Some(PathBuf::from(home).join(".local/share/skiff-demo"))
}

/// STARTTLS, the demo accounts, everyone a contact of everyone.
pub fn options() -> ProsodyOptions {
    let users = USERS.iter().map(|u| (u.to_string(), password(u))).collect();
    let mut contacts = Vec::new();
    for (i, a) in USERS.iter().enumerate() {
        for b in &USERS[i + 1..] {
            contacts.push((a.to_string(), b.to_string()));
        }
    }
    ProsodyOptions { tls: TlsMode::StartTls, users, contacts, ..ProsodyOptions::default() }
}

/// The preferred ports where they can be bound now, other free ports otherwise. All
/// three listeners are held while choosing, so the ports are distinct.
pub fn choose_ports() -> Result<(u16, u16, u16)> {
    let (c2s, proxy, http) = PREFERRED_PORTS;
    let mut listeners = Vec::new();
    for port in [c2s, proxy, http] {
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(l) => l,
            Err(_) => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
                tracing::info!("port {port} is taken, using {} instead", l.local_addr()?.port());
                l
            }
        };
        listeners.push(listener);
    }
    let port = |i: usize| listeners[i].local_addr().map(|a| a.port());
    Ok((port(0)?, port(1)?, port(2)?))
}

/// Starts the demo server in `dir` on the preferred ports where free (others when
/// one is taken, also while Prosody starts).
pub fn start(dir: &Path) -> Result<Prosody> {
    Prosody::start_in_preferring(dir, options(), choose_ports()?)
        .with_context(|| format!("starting the demo Prosody in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_is_everyones_contact() {
        let o = options();
        assert_eq!(o.users.len(), 3);
        assert_eq!(o.users[0], ("alice".to_owned(), "alice-demo".to_owned()));
        assert_eq!(o.contacts.len(), 3);
        assert!(o.contacts.contains(&("bob".to_owned(), "carol".to_owned())));
        assert_eq!(o.tls, TlsMode::StartTls);
    }

    #[test]
    fn ports_are_distinct() {
        let (a, b, c) = choose_ports().unwrap();
        assert!(a != b && b != c && a != c);
    }
}
