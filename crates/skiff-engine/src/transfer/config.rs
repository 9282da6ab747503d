//! What the engine is told: transfer configuration, policies, the ways to send, and
//! what can go wrong.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use skiff_proto::jid::Jid;

use super::Method;
use crate::store::StoreError;

/// What to do with an incoming offer when nobody answers it by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptPolicy {
    /// Wait for [`Transfers::accept`] or [`Transfers::reject`].
    Ask,
    /// Accept every offer.
    All,
    /// Accept offers from roster contacts; reject the rest.
    Contacts,
    /// Reject every offer.
    None,
}

/// What to do with offers (SI, links, iq:oob) from people not in the roster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum StrangerPolicy {
    /// Ask the user, like any other offer (within the caps on pending offers).
    #[default]
    Ask,
    /// Refuse at once, without asking.
    Refuse,
}

/// The in-band block size asked of another Skiff: 6 KiB, whose base64 stanza fits
/// in one 8 KiB socket read of Prosody. Prosody (0.12, epoll backend) reads 8 KiB at a
/// time and waits at least 1 ms (`min_wait`) before reading more of what TLS already
/// buffered, so a 64 KiB block costs ~11 such waits: measured through Prosody,
/// 6 KiB blocks move 8.5 MiB/s, 64 KiB blocks 2.5 MiB/s (docs/benchmarks.md).
pub const DEFAULT_IBB_BLOCK: u16 = 6144;

/// Transfer settings.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Where accepted files go unless the accept names another folder.
    pub download_dir: PathBuf,
    /// Addresses our own streamhost listens on and offers; empty = every usable local
    /// address (loopback when there is no other).
    pub streamhost_addrs: Vec<IpAddr>,
    /// The proxy to use; `None` = discover the server's.
    pub proxy: Option<Jid>,
    /// Offer our own streamhost.
    pub use_direct: bool,
    /// Offer the proxy.
    pub use_proxy: bool,
    /// Allowed methods in preference order.
    pub methods: Vec<Method>,
    /// The signalling for files sent to a client: `None` picks per client (Jingle for
    /// a client that takes Jingle file transfer, else SI).
    pub protocol: Option<skiff_proto::transfer::Protocol>,
    /// Largest in-band block we ask for from another Skiff (the peer may make us step
    /// down; other clients get 4096). Default [`DEFAULT_IBB_BLOCK`].
    pub ibb_block_size: u16,
    /// In-band blocks in flight before waiting for acknowledgements.
    pub ibb_window: usize,
    /// How long an offer waits for the other side's answer.
    pub offer_timeout: Duration,
    /// Extra CA (PEM) trusted for HTTP uploads and downloads, besides the system's.
    pub http_ca_file: Option<PathBuf>,
    /// Send by HTTP File Upload (XEP-0363) when SI cannot reach the contact (offline,
    /// or no client that takes SI offers), and offer it after SI failed. The file then
    /// sits on the server until it expires.
    pub allow_upload: bool,
    /// Serve files from our own one-time HTTP URLs (XEP-0066 `jabber:iq:oob`), on the
    /// streamhost addresses. Off by default: it opens a port for as long as the
    /// transfer runs.
    pub serve_http: bool,
    /// Several files to a client that takes batches go as one batch (one offer, the
    /// tree kept); off: one offer per file.
    pub batches: bool,
    pub accept: AcceptPolicy,
    /// Offers from people not in the roster.
    pub strangers: StrangerPolicy,
    /// Incoming offers waiting for an answer from one peer (bare JID), and from all
    /// together; offers beyond are refused with `resource-constraint` and reported
    /// once per burst ([`Event::OffersRefused`]). The total refuses strangers' offers
    /// only: strangers flooding from many addresses cannot crowd out contacts (whose
    /// number the user chose), who are held to the cap per peer.
    pub max_pending_per_peer: usize,
    pub max_pending: usize,
}

/// Default of [`TransferConfig::max_pending_per_peer`]: a handful of files at once.
pub const MAX_PENDING_PER_PEER: usize = 5;
/// Default of [`TransferConfig::max_pending`].
pub const MAX_PENDING: usize = 50;

impl TransferConfig {
    pub fn new(download_dir: PathBuf) -> TransferConfig {
        TransferConfig {
            download_dir,
            streamhost_addrs: Vec::new(),
            proxy: None,
            use_direct: true,
            use_proxy: true,
            methods: vec![Method::S5b, Method::Ibb],
            protocol: None,
            ibb_block_size: DEFAULT_IBB_BLOCK,
            ibb_window: 16,
            offer_timeout: Duration::from_secs(300),
            http_ca_file: None,
            allow_upload: true,
            serve_http: false,
            batches: true,
            accept: AcceptPolicy::Ask,
            strangers: StrangerPolicy::Ask,
            max_pending_per_peer: MAX_PENDING_PER_PEER,
            max_pending: MAX_PENDING,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0} is offline")]
    Offline(String),
    #[error("none of {0}'s online clients can receive files (no SI file transfer support)")]
    NoFileTransfer(String),
    /// The contact's client takes files, but not batches: send them one by one.
    #[error("{0} does not take several files as one batch")]
    NoBatches(String),
    #[error("cannot read {path}: {reason}")]
    Source { path: String, reason: String },
    #[error("no transfer with id {0}")]
    Unknown(i64),
    #[error("transfer {0} is not waiting for an answer")]
    NotPending(i64),
    #[error("transfer {0} is already running")]
    AlreadyActive(i64),
    #[error("transfer {id} cannot be resumed here: {reason}")]
    NotResumable { id: i64, reason: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Only HTTP upload would reach the contact (`reason`: offline, or no file
    /// transfer), and it is turned off in the settings.
    #[error("{reason}; sending by HTTP upload would reach them, but it is turned off in the settings")]
    UploadTurnedOff { reason: Box<TransferError> },
    #[error("{0}")]
    Other(String),
}

/// How [`Transfers::send`] sends a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum SendMethod {
    /// SI (SOCKS5, then in-band) to a client that takes SI offers; HTTP File Upload when
    /// the contact is offline or none of their clients takes SI offers (if allowed).
    #[default]
    Auto,
    /// SI file transfer only.
    Si,
    /// HTTP File Upload, then the link in a message.
    Upload,
    /// A one-time URL served by us, offered by `jabber:iq:oob`.
    Oob,
}
