//! The events the engine emits: the contract with the CLI and the desktop shell.
//!
//! Serialised as JSON objects tagged by `type` (the CLI's `--json` lines are exactly
//! these). The state is written before the event that announces it is sent.

use serde::Serialize;

/// One contact of the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Contact {
    /// Bare JID.
    pub jid: String,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// We asked to see their presence and wait for the answer.
    pub pending_out: bool,
    pub groups: Vec<String>,
}

/// One online resource of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ResourcePresence {
    pub resource: String,
    pub show: Show,
    pub status: Option<String>,
    pub priority: i8,
}

/// Whose presence a roster contact and we see (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Subscription {
    /// Neither sees the other's presence.
    None,
    /// We see theirs.
    To,
    /// They see ours.
    From,
    Both,
}

impl From<skiff_proto::roster::Subscription> for Subscription {
    fn from(s: skiff_proto::roster::Subscription) -> Subscription {
        use skiff_proto::roster::Subscription as P;
        match s {
            P::To => Subscription::To,
            P::From => Subscription::From,
            P::Both => Subscription::Both,
            // A removed item is no contact any more (pushes only).
            P::None | P::Remove => Subscription::None,
        }
    }
}

/// How available a contact's resource is: its `<show/>`, `available` without one, and
/// `unavailable` when it went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Show {
    Available,
    Away,
    Chat,
    Dnd,
    Xa,
    Unavailable,
}

impl From<Option<skiff_proto::stanza::Show>> for Show {
    fn from(s: Option<skiff_proto::stanza::Show>) -> Show {
        use skiff_proto::stanza::Show as P;
        match s {
            None => Show::Available,
            Some(P::Away) => Show::Away,
            Some(P::Chat) => Show::Chat,
            Some(P::Dnd) => Show::Dnd,
            Some(P::Xa) => Show::Xa,
        }
    }
}

skiff_proto::wire_enum!(Subscription, "subscription", { None => "none", To => "to", From => "from", Both => "both" });
skiff_proto::wire_enum!(Show, "presence", { Available => "available", Away => "away", Chat => "chat", Dnd => "dnd", Xa => "xa", Unavailable => "unavailable" });

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A connection attempt starts.
    Connecting { attempt: u32 },
    /// Signed in and bound.
    Online { jid: String, tls: bool, mechanism: String },
    /// The connection ended. `will_retry` tells whether the engine reconnects.
    Offline { reason: String, will_retry: bool },
    /// The next attempt starts after `delay_ms`.
    Reconnecting { attempt: u32, delay_ms: u64 },
    /// The connection dropped, but the server keeps the session for a while (XEP-0198
    /// stream management): the engine is resuming it. Contacts' presence, requests
    /// waiting for an answer, offers and in-band transfers wait; if it comes back,
    /// [`Event::Resumed`] follows and nothing was lost. If it cannot be resumed,
    /// [`Event::Offline`] follows and a new session starts as after any drop.
    Interrupted { reason: String },
    /// The interrupted session goes on where it stopped (same address, nothing lost).
    Resumed { jid: String, tls: bool, mechanism: String },
    /// The whole roster, after sign-in.
    Roster { contacts: Vec<Contact> },
    /// A roster push added or changed a contact.
    ContactChanged { contact: Contact },
    /// A roster push removed a contact.
    ContactRemoved { jid: String },
    /// A contact's resource came online, changed, or went offline (`available: false`).
    Presence { jid: String, resource: String, available: bool, show: Show, status: Option<String>, priority: i8 },
    /// Someone asks to see our presence.
    SubscriptionRequest { from: String },
    /// A transfer was offered: to us (`direction: incoming`, waiting for accept or
    /// reject unless a policy decides) or by us. `resume_from` > 0 when the receiver
    /// already holds that many bytes of this file. `size` 0 on an incoming offer means
    /// "unknown" for a link (`transfer::links::SIZE_UNKNOWN`: not looked up before
    /// acceptance; the download tells it, in `TransferProgress.total` and the record),
    /// and an empty file otherwise; either way it says nothing about how much an
    /// accepted link will bring, so it is no ground for accepting by size.
    ///
    /// A batch (a folder, several files offered together) is one offer: `files` says
    /// how many it holds, `name` is its folder's name and `size` the files' together.
    /// Accepted, it lands as a new folder of that name in the folder chosen; its
    /// progress, start, end and failure come as for one file, under its id, with
    /// [`Event::BatchProgress`] counting the files done. Its files are in the history
    /// under it (`HistoryQuery.parent`).
    TransferOffered {
        id: i64,
        direction: crate::store::Direction,
        peer: String,
        name: String,
        size: u64,
        description: Option<String>,
        resume_from: u64,
        /// A batch of this many files; `None` for a single file.
        files: Option<u64>,
    },
    /// Data starts to flow over `route` (`s5b-direct`, `s5b-proxy`, `ibb`).
    TransferStarted {
        id: i64,
        route: crate::store::Route,
        /// The signalling that set it up (none for links and uploads).
        protocol: Option<crate::store::Protocol>,
        streamhost: Option<String>,
        offset: u64,
    },
    /// Progress, at most about ten times a second per transfer.
    TransferProgress { id: i64, bytes: u64, total: u64, bytes_per_sec: u64 },
    /// Done and verified. `bytes` counts what travelled in this attempt.
    TransferCompleted {
        id: i64,
        name: String,
        path: String,
        size: u64,
        bytes: u64,
        sha256: String,
        route: crate::store::Route,
        seconds: f64,
        /// How the content was checked; `none` = "received, not verified" (only the
        /// size matched), which the shells must say instead of a plain "completed".
        verified: crate::store::Verification,
    },
    /// Failed; `resumable` when the partial data is kept for a later resume;
    /// `upload_fallback` when the file can be sent by HTTP upload instead
    /// (`Transfers::upload_instead`).
    TransferFailed {
        id: i64,
        name: String,
        /// Why, for the shells to branch on (`cancelled` is a user's stop, not an error).
        reason: crate::transfer::FailReason,
        /// The sentence for the user.
        error: String,
        resumable: bool,
        upload_fallback: bool,
    },
    /// Files of batch `id` done so far (verified and named), of `files`.
    BatchProgress { id: i64, files_done: u64, files: u64 },
    /// Something the user should know about a running transfer (e.g. why it is slow).
    TransferNotice { id: i64, message: String },
    /// The receiver declined, or we did.
    TransferRejected { id: i64, name: String, reason: String },
    /// Offers from `peer` were refused without asking, `count` of them since the last
    /// such event (at most one a second per peer): too many were waiting already.
    OffersRefused { peer: String, count: u64, reason: String },
    /// Sign-in failed in a way retrying will not fix (wrong password, untrusted
    /// certificate, ...). `code` is stable for the UI to branch on; with the codes
    /// `certificate-untrusted` and `certificate-changed`, `untrusted` tells what the
    /// server presented (to show before the user pins it, or to warn).
    Fatal { code: FatalCode, message: String, untrusted: Option<Box<crate::trust::Untrusted>> },
}

/// Why signing in failed for good ([`Event::Fatal`]): stable, for the shells to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum FatalCode {
    /// The server's name does not resolve.
    Resolve,
    /// No TCP connection (refused, unreachable), or it broke during sign-in.
    Connect,
    /// TLS failed (or the server does not offer it, or refuses it).
    Tls,
    /// The server's certificate is not trusted (see `untrusted`).
    CertificateUntrusted,
    /// The server's certificate is not the one pinned for the account.
    CertificateChanged,
    /// The CA file given cannot be read.
    CaFile,
    /// Plaintext to an address other than loopback.
    PlaintextRefused,
    /// Wrong password or unknown account, or no sign-in method we can use safely.
    AuthFailed,
    /// Only PLAIN offered to an account that signed in with SCRAM before.
    PlainDowngrade,
    /// The server's SCRAM messages break SCRAM's rules.
    ServerAuthInvalid,
    /// Something else the server sent during sign-in.
    Protocol,
    /// Sign-in took too long.
    Timeout,
    /// Another client signed in with the same resource and the server kept that one.
    Conflict,
}

skiff_proto::wire_enum!(FatalCode, "fatal code", {
    Resolve => "resolve",
    Connect => "connect",
    Tls => "tls",
    CertificateUntrusted => "certificate-untrusted",
    CertificateChanged => "certificate-changed",
    CaFile => "ca-file",
    PlaintextRefused => "plaintext-refused",
    AuthFailed => "auth-failed",
    PlainDowngrade => "plain-downgrade",
    ServerAuthInvalid => "server-auth-invalid",
    Protocol => "protocol",
    Timeout => "timeout",
    Conflict => "conflict",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = Event::Presence {
            jid: "bob@localhost".into(),
            resource: "pc".into(),
            available: true,
            show: Show::Away,
            status: None,
            priority: 5,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"presence","jid":"bob@localhost","resource":"pc","available":true,"show":"away","status":null,"priority":5}"#
        );
    }

    #[test]
    fn json_names_are_the_wire_names() {
        let json = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        for s in [Show::Available, Show::Away, Show::Chat, Show::Dnd, Show::Xa, Show::Unavailable] {
            assert_eq!(json(serde_json::to_value(s).unwrap()), s.as_str());
        }
        for s in [Subscription::None, Subscription::To, Subscription::From, Subscription::Both] {
            assert_eq!(json(serde_json::to_value(s).unwrap()), s.as_str());
        }
        for c in [FatalCode::CertificateUntrusted, FatalCode::CaFile, FatalCode::ServerAuthInvalid, FatalCode::Conflict]
        {
            assert_eq!(json(serde_json::to_value(c).unwrap()), c.as_str());
        }
        assert_eq!(Show::from(Some(skiff_proto::stanza::Show::Dnd)), Show::Dnd);
        assert_eq!(Show::from(None), Show::Available);
        assert_eq!(Subscription::from(skiff_proto::roster::Subscription::Remove), Subscription::None);
    }
}
