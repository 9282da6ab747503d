//! Each `skiff` command: engine calls, then the events they cause, printed.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use skiff_engine::store::{Direction, HistoryQuery, Store, TransferState, Verification};
use skiff_engine::transfer::{SendMethod, TransferError, Transfers};
use skiff_engine::{Client, Event};
use skiff_proto::disco::DiscoInfoResult;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::xml::Element;
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;

use crate::args::*;
use crate::output::*;

pub(crate) fn open_store(cli: &Cli) -> Result<Arc<Store>> {
    let dir = data_dir(cli);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    let (store, recovered) = Store::open_or_recover(&dir.join("history.sqlite3"))?;
    if let Some(r) = recovered {
        eprintln!("skiff: {r}");
    }
    Ok(Arc::new(store))
}

pub(crate) async fn run(cli: Cli) -> Result<()> {
    let out = Output { json: cli.json };
    if let Command::History { peer, name, limit } = &cli.command {
        return history(&*open_store(&cli)?, &out, peer.clone(), name.clone(), *limit);
    }
    let mut cfg = account(&cli)?;
    let history = open_store(&cli)?;
    // An account that signed in with SCRAM before never sends its password by PLAIN
    // unless told to.
    let bare = cfg.jid.bare().to_string();
    cfg.require_scram = history.scram_required(&bare) && !cli.allow_plain;
    // A certificate the user trusted: this run's --trust-fingerprint, else the pin kept.
    cfg.trusted_certificates = cli.trust_fingerprint.or_else(|| history.certificate_pin(&bare)).into_iter().collect();
    let store = match &cli.command {
        Command::Send { .. } | Command::Receive { .. } | Command::Resume { .. } => Some(history.clone()),
        _ => None,
    };
    let account_jid = cfg.jid.clone();
    let client = Client::start(cfg);
    let mut events = client.events();
    let mut sign_in = client.events();
    // Register the transfer handlers before the first presence goes out, so that a
    // peer who sees us online finds file transfer in our disco#info.
    let transfers = match store {
        Some(store) => Some(Transfers::start(client.clone(), store, transfer_config(&cli)?, &account_jid)?),
        None => None,
    };
    // The files to send (a folder: the files inside) are found now, and hashed while
    // we sign in, so that their offers carry the hashes.
    let chosen = match &cli.command {
        Command::Send { files, .. } => skiff_engine::files::expand(files)?,
        _ => Vec::new(),
    };
    if let Some(t) = &transfers {
        t.prepare(&chosen.iter().map(|c| c.path.clone()).collect::<Vec<_>>());
    }
    let jid = match client.wait_online().await {
        Ok(jid) => jid,
        Err(e) => {
            while let Ok(ev) = sign_in.try_recv() {
                if let Event::Fatal { untrusted: Some(u), message, .. } = ev {
                    bail!("sign-in failed: {message}\n{}", trust_hint(&u));
                }
            }
            return Err(anyhow::Error::new(e).context("sign-in failed"));
        }
    };
    if let Some(fp) = cli.trust_fingerprint {
        if history.certificate_pin(&bare).as_ref() != Some(&fp) {
            history.pin_certificate(&bare, fp)?;
            eprintln!("The server certificate {fp} is now trusted for {bare}.");
        }
    }
    while let Ok(e) = sign_in.try_recv() {
        if let Event::Online { mechanism, .. } = e {
            history.note_mechanism(&jid.bare().to_string(), &mechanism);
        }
    }
    drop(sign_in);
    let result = match (&cli.command, transfers) {
        (Command::Roster { wait }, _) => roster(&client, &mut events, &out, *wait).await,
        (Command::Whoami, _) => whoami(&client, &jid, &out).await,
        (Command::Online { seconds }, _) => online(&client, &mut events, &out, *seconds).await,
        (Command::Send { to, wait, desc, method, .. }, Some(t)) => {
            let how = match method {
                MethodArg::Auto => SendMethod::Auto,
                MethodArg::S5b | MethodArg::Ibb => SendMethod::Si,
                MethodArg::Upload => SendMethod::Upload,
                MethodArg::Oob => SendMethod::Oob,
            };
            send(&t, &mut events, &out, to, &chosen, *wait, desc.clone(), how).await
        }
        (Command::Receive { count, timeout, .. }, Some(t)) => receive(&t, &mut events, &out, *count, *timeout).await,
        (Command::Resume { id, by_upload }, Some(t)) => resume(&t, &mut events, &out, *id, *by_upload).await,
        _ => unreachable!("every command is handled"),
    };
    client.disconnect().await;
    result
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    t: &Transfers,
    events: &mut Receiver<Event>,
    out: &Output,
    to: &str,
    files: &[skiff_engine::files::Chosen],
    wait: f64,
    desc: Option<String>,
    how: SendMethod,
) -> Result<()> {
    let to: Jid = to.parse().with_context(|| format!("'{to}' is not a valid XMPP address"))?;
    if how != SendMethod::Upload {
        // A full JID is offered at once; a contact's presence is awaited while it can come.
        t.wait_for_presence(&to, Duration::from_secs_f64(wait.max(0.0))).await;
    }
    // Several files go as one batch to a Skiff; one by one to other clients, each
    // from a folder saying where it belongs (unless --desc says otherwise).
    let ids = t.send_chosen(&to, files, desc, how).await.context("cannot send")?;
    follow(events, out, ids).await
}

pub(crate) async fn resume(
    t: &Transfers,
    events: &mut Receiver<Event>,
    out: &Output,
    id: i64,
    by_upload: bool,
) -> Result<()> {
    if by_upload {
        t.upload_instead(id).await?;
        return follow(events, out, vec![id]).await;
    }
    let rec = t.store().get(id)?;
    // A link is fetched from its server again; anything else needs the peer online.
    if rec.url.is_none() {
        let peer: Jid = rec.peer_jid.parse().context("stored peer address")?;
        t.wait_for_presence(&peer.bare(), Duration::from_secs(10)).await;
    }
    match t.resume(id).await {
        // The engine offered it again by itself when the peer's presence arrived.
        Ok(_) | Err(TransferError::AlreadyActive(_)) => follow(events, out, vec![id]).await,
        Err(e) => Err(e.into()),
    }
}

/// Shows the transfers `ids` until each has ended; an error when any failed.
pub(crate) async fn follow(events: &mut Receiver<Event>, out: &Output, ids: Vec<i64>) -> Result<()> {
    let mut bars = Bars::new(out.json);
    let mut open: std::collections::HashSet<i64> = ids.iter().copied().collect();
    let mut failed = 0;
    while !open.is_empty() {
        let ev = match events.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => bail!("the engine stopped"),
        };
        let Some(id) = transfer_id(&ev) else {
            if let Event::Offline { reason, will_retry: false } = &ev {
                bail!("disconnected: {reason}");
            }
            continue;
        };
        if !open.contains(&id) {
            continue;
        }
        bars.show(out, &ev);
        match ev {
            Event::TransferCompleted { .. } => {
                open.remove(&id);
            }
            Event::TransferFailed { .. } | Event::TransferRejected { .. } => {
                open.remove(&id);
                failed += 1;
            }
            _ => {}
        }
    }
    if failed > 0 {
        bail!("{failed} of {} transfers did not complete", ids.len());
    }
    Ok(())
}

pub(crate) async fn receive(
    t: &Transfers,
    events: &mut Receiver<Event>,
    out: &Output,
    count: Option<u32>,
    timeout: Option<f64>,
) -> Result<()> {
    let me = t.client().jid().map(|j| j.to_string()).unwrap_or_default();
    if out.json {
        out.json_line(&serde_json::json!({"type": "ready", "jid": me}));
    } else {
        eprintln!("Receiving as {me}. Ctrl-C to leave.");
    }
    let mut bars = Bars::new(out.json);
    let (mut finished, mut failed) = (0u32, 0u32);
    let deadline = timeout.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    loop {
        if count.is_some_and(|c| finished >= c) {
            break;
        }
        let ev = tokio::select! {
            _ = &mut sleep => bail!("timed out after {} transfers", finished),
            _ = tokio::signal::ctrl_c() => break,
            ev = events.recv() => match ev {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => bail!("the engine stopped"),
            },
        };
        if let Event::Fatal { message, .. } = &ev {
            bail!("{message}");
        }
        if transfer_id(&ev).is_none() {
            continue;
        }
        bars.show(out, &ev);
        match ev {
            Event::TransferCompleted { .. } => finished += 1,
            Event::TransferFailed { .. } | Event::TransferRejected { .. } => {
                finished += 1;
                failed += 1;
            }
            _ => {}
        }
    }
    if failed > 0 {
        bail!("{failed} of {finished} transfers did not complete");
    }
    Ok(())
}

pub(crate) fn history(
    store: &Store,
    out: &Output,
    peer: Option<String>,
    name: Option<String>,
    limit: u32,
) -> Result<()> {
    let filter = HistoryQuery { peer, name_contains: name, limit: Some(limit), ..HistoryQuery::default() };
    let records = store.list(&filter)?;
    if records.is_empty() && !out.json {
        println!("No transfers yet.");
    }
    for r in &records {
        if out.json {
            out.json_line(r);
            continue;
        }
        let arrow = match r.direction {
            Direction::Incoming => "<-",
            Direction::Outgoing => "->",
        };
        let route = r.route.map(|x| x.as_str()).unwrap_or("-");
        let err = r.error.as_deref().map(|e| format!("  ({e})")).unwrap_or_default();
        // A completed transfer says how it was checked; "completed" alone never.
        let state = match (r.state, r.verified) {
            (TransferState::Completed, Verification::Sha256) => "verified",
            (TransferState::Completed, Verification::Md5) => "verified-md5",
            (TransferState::Completed, Verification::None) => "unverified",
            (s, _) => s.as_str(),
        };
        println!(
            "#{:<4} {arrow} {:<28} {:<32} {:>12} / {:<12} {:<11} {route}{err}",
            r.id, r.peer_jid, r.file_name, r.bytes_done, r.size, state
        );
    }
    Ok(())
}

pub(crate) async fn roster(
    client: &Client,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    out: &Output,
    wait: f64,
) -> Result<()> {
    // The roster arrives right after sign-in; presence trickles in after it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(wait.max(0.0));
    let mut have_roster = false;
    while let Ok(ev) = tokio::time::timeout_at(deadline, events.recv()).await {
        match ev {
            Ok(Event::Roster { .. }) => have_roster = true,
            Ok(Event::Offline { reason, .. }) => bail!("disconnected: {reason}"),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if !have_roster && client.roster().is_empty() {
        tracing::info!("no roster received within {wait} s");
    }
    let contacts = client.roster();
    if contacts.is_empty() && !out.json {
        println!("No contacts.");
    }
    for c in &contacts {
        let jid: Jid = c.jid.parse().context("roster JID")?;
        let resources = client.presence_of(&jid);
        if out.json {
            out.json_line(&ContactLine { contact: c, online: !resources.is_empty(), resources });
            continue;
        }
        let name = c.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let presence = if resources.is_empty() {
            "offline".to_owned()
        } else {
            resources
                .iter()
                .map(|r| {
                    let status = r.status.as_deref().map(|s| format!(" \"{s}\"")).unwrap_or_default();
                    format!("{}/{}{}", r.show, r.resource, status)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let pending = if c.pending_out { ", request pending" } else { "" };
        println!("{}{name}  [{}{pending}]  {presence}", c.jid, c.subscription);
    }
    Ok(())
}

pub(crate) async fn whoami(client: &Client, jid: &Jid, out: &Output) -> Result<()> {
    let server = jid.domain_jid();
    let info = client
        .get(Some(server.clone()), Element::new("query", ns::DISCO_INFO))
        .await
        .with_context(|| format!("service discovery on {server} failed"))?
        .context("the server answered disco#info with nothing")?;
    let info = DiscoInfoResult::try_from(&info).context("the server's disco#info does not parse")?;
    let w = Whoami {
        jid: jid.to_string(),
        server_identities: info.identities.iter().map(|i| format!("{}/{}", i.category, i.kind)).collect(),
        server_features: info.features.clone(),
        stream_features: client.stream_features(),
        our_features: client.features(),
    };
    if out.json {
        out.json_line(&w);
        return Ok(());
    }
    println!("Signed in as {}", w.jid);
    println!("Server {server}: {}", w.server_identities.join(", "));
    println!("Server features:");
    for f in &w.server_features {
        println!("  {f}");
    }
    println!("Stream features after sign-in: {}", w.stream_features.join(" "));
    println!("Features Skiff announces: {}", w.our_features.join(" "));
    Ok(())
}

pub(crate) async fn online(
    client: &Client,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    out: &Output,
    seconds: Option<f64>,
) -> Result<()> {
    let jid = client.jid().map(|j| j.to_string()).unwrap_or_default();
    if out.json {
        out.json_line(&serde_json::json!({"type": "online", "jid": jid}));
    } else {
        println!("Online as {jid}. Ctrl-C to leave.");
    }
    let stop = async {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            ev = events.recv() => match ev {
                Ok(Event::Fatal { message, .. }) => bail!("{message}"),
                Ok(e) if out.json => out.json_line(&e),
                Ok(e) => println!("{}", describe(&e)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!("{n} events skipped"),
                Err(_) => return Ok(()),
            },
        }
    }
}
