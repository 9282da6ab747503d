//! What `skiff` prints: progress bars, event lines, `--json` lines.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use skiff_engine::event::{Contact, ResourcePresence};
use skiff_engine::store::{Direction, Verification};
use skiff_engine::trust::Untrusted;
use skiff_engine::Event;

pub(crate) fn transfer_id(e: &Event) -> Option<i64> {
    match e {
        Event::TransferOffered { id, .. }
        | Event::TransferStarted { id, .. }
        | Event::TransferProgress { id, .. }
        | Event::TransferCompleted { id, .. }
        | Event::TransferFailed { id, .. }
        | Event::TransferRejected { id, .. }
        | Event::TransferNotice { id, .. }
        | Event::BatchProgress { id, .. } => Some(*id),
        _ => None,
    }
}

/// Progress bars on a terminal, JSON lines with `--json`.
pub(crate) struct Bars {
    pub(crate) multi: Option<indicatif::MultiProgress>,
    pub(crate) bars: std::collections::HashMap<i64, indicatif::ProgressBar>,
}

impl Bars {
    pub(crate) fn new(json: bool) -> Bars {
        let multi = (!json).then(|| {
            let target = if std::io::stderr().is_terminal() {
                indicatif::ProgressDrawTarget::stderr()
            } else {
                indicatif::ProgressDrawTarget::hidden()
            };
            indicatif::MultiProgress::with_draw_target(target)
        });
        Bars { multi, bars: Default::default() }
    }

    pub(crate) fn show(&mut self, out: &Output, ev: &Event) {
        let Some(multi) = &self.multi else {
            out.json_line(ev);
            return;
        };
        match ev {
            Event::TransferOffered { id, direction, peer, name, size, resume_from, files, .. } => {
                let bar = multi.add(indicatif::ProgressBar::new(*size));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:.bold} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                let arrow = if *direction == Direction::Incoming { "from" } else { "to" };
                bar.set_prefix(format!("{name} {arrow} {peer}"));
                bar.set_position(*resume_from);
                self.bars.insert(*id, bar);
                // An incoming link's size is unknown until its download tells it.
                let size = match (direction, *size, files) {
                    (_, n, Some(files)) => format!("folder of {files} files, {n} bytes"),
                    (Direction::Incoming, 0, None) => "size unknown".to_owned(),
                    (_, n, None) => format!("{n} bytes"),
                };
                let _ = multi.println(format!("#{id} {direction} {name} ({size}) {arrow} {peer}"));
            }
            Event::TransferStarted { id, route, protocol, .. } => {
                if let Some(b) = self.bars.get(id) {
                    match protocol {
                        Some(p) => b.set_message(format!("[{p} {route}]")),
                        None => b.set_message(format!("[{route}]")),
                    }
                }
            }
            Event::TransferProgress { id, bytes, total, .. } => {
                if let Some(b) = self.bars.get(id) {
                    if b.length() == Some(0) && *total > 0 {
                        b.set_length(*total);
                    }
                    b.set_position(*bytes);
                }
            }
            Event::TransferCompleted { id, path, route, seconds, sha256, verified, .. } => {
                if let Some(b) = self.bars.remove(id) {
                    b.finish_and_clear();
                }
                let how = match verified {
                    Verification::Sha256 => "done, verified (SHA-256)",
                    Verification::Md5 => "done, verified (MD5 only)",
                    Verification::None => "done, NOT verified end to end (only the size was checked)",
                };
                println!("#{id} {how}: {path} via {route} in {seconds:.1} s (sha256 {sha256})");
            }
            Event::TransferFailed { id, name, reason, error, resumable, upload_fallback } => {
                if let Some(b) = self.bars.remove(id) {
                    b.abandon();
                }
                let hint = match (*resumable, *upload_fallback) {
                    (true, true) => {
                        format!(" (resumable: skiff resume {id}; or by HTTP upload: skiff resume --by-upload {id})")
                    }
                    (true, false) => format!(" (resumable: skiff resume {id})"),
                    (false, true) => format!(" (send it by HTTP upload: skiff resume --by-upload {id})"),
                    (false, false) => String::new(),
                };
                if *reason == skiff_engine::transfer::FailReason::Cancelled {
                    eprintln!("#{id} {name}: cancelled{hint}");
                } else {
                    eprintln!("#{id} {name} failed ({reason}): {error}{hint}");
                }
            }
            Event::BatchProgress { id, files_done, files } => {
                if let Some(b) = self.bars.get(id) {
                    b.set_message(format!("{files_done}/{files} files"));
                }
            }
            Event::TransferNotice { id, message } => {
                let _ = multi.println(format!("#{id}: {message}"));
            }
            Event::TransferRejected { id, name, reason } => {
                if let Some(b) = self.bars.remove(id) {
                    b.abandon();
                }
                eprintln!("#{id} {name}: {reason}");
            }
            Event::OffersRefused { peer, count, reason } => {
                let _ = multi.println(format!("refused {count} offers from {peer}: {reason}"));
            }
            _ => {}
        }
    }
}

pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    pub(crate) fn json_line<T: Serialize>(&self, v: &T) {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut stdout, v);
        let _ = writeln!(stdout);
    }
}

#[derive(Serialize)]
pub(crate) struct ContactLine<'a> {
    #[serde(flatten)]
    pub(crate) contact: &'a Contact,
    pub(crate) online: bool,
    pub(crate) resources: Vec<ResourcePresence>,
}

#[derive(Serialize)]
pub(crate) struct Whoami {
    pub(crate) jid: String,
    pub(crate) server_identities: Vec<String>,
    pub(crate) server_features: Vec<String>,
    pub(crate) stream_features: Vec<String>,
    pub(crate) our_features: Vec<String>,
}

/// What to do about a refused server certificate.
pub(crate) fn trust_hint(u: &Untrusted) -> String {
    let fp = &u.certificate.fingerprint;
    let c = &u.certificate;
    let what = if c.subject.is_empty() {
        String::new()
    } else {
        let day = |t: i64| {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
            skiff_proto::dates::format_xep82(t)[..10].to_owned()
        };
        let issuer = if c.self_signed { "itself" } else { c.issuer.as_str() };
        let names = if c.names.is_empty() { String::new() } else { format!(", for {}", c.names.join(", ")) };
        format!(
            "The certificate: {}, issued by {issuer}, valid from {} to {}{names}.\n",
            c.subject,
            day(c.not_before),
            day(c.not_after)
        )
    };
    if u.changed {
        format!(
            "{what}Trust the new certificate only if the server's admin confirms it was changed and shows this \
             fingerprint: --trust-fingerprint {fp}"
        )
    } else {
        format!(
            "{what}If the server's admin shows you the same fingerprint (openssl x509 -noout -fingerprint -sha256 -in \
             CERT), trust it for this account with --trust-fingerprint {fp}, or pass its certificate with --ca-file"
        )
    }
}

pub(crate) fn describe(e: &Event) -> String {
    match e {
        Event::Connecting { attempt } => format!("connecting (attempt {attempt})"),
        Event::Online { jid, .. } => format!("online as {jid}"),
        Event::Offline { reason, will_retry } => {
            format!("offline: {reason}{}", if *will_retry { "; will reconnect" } else { "" })
        }
        Event::Reconnecting { delay_ms, .. } => format!("reconnecting in {:.1} s", *delay_ms as f64 / 1000.0),
        Event::Interrupted { reason } => format!("connection lost ({reason}); resuming the session"),
        Event::Resumed { jid, .. } => format!("resumed the session as {jid}; nothing was lost"),
        Event::Roster { contacts } => format!("{} contacts", contacts.len()),
        Event::ContactChanged { contact } => format!("contact {} is now {}", contact.jid, contact.subscription),
        Event::ContactRemoved { jid } => format!("contact {jid} removed"),
        Event::Presence { jid, resource, available: true, show, .. } => format!("{jid}/{resource} is {show}"),
        Event::Presence { jid, resource, .. } => format!("{jid}/{resource} went offline"),
        Event::SubscriptionRequest { from } => format!("{from} asks to see your presence"),
        Event::Fatal { message, .. } => format!("error: {message}"),
        other => format!("{other:?}"),
    }
}
