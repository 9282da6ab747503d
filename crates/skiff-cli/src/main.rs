//! `skiff`: the command-line client. It only translates: arguments become engine
//! calls, engine events become lines of text (or JSON with `--json`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use skiff_engine::event::{Contact, ResourcePresence};
use skiff_engine::store::{Direction, HistoryQuery, Store, TransferState, Verification};
use skiff_engine::transfer::{
    AcceptPolicy, Method, SendMethod, StrangerPolicy, TransferConfig, TransferError, Transfers,
};
use skiff_engine::trust::{Fingerprint, Untrusted};
use skiff_engine::{AccountConfig, AccountForm, Client, Event, Secret, TlsMode};
use skiff_proto::disco::DiscoInfoResult;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::xml::Element;
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;

#[derive(Parser, Debug)]
#[command(name = "skiff", version, about = "Send and receive files over XMPP")]
struct Cli {
    /// Your account, e.g. alice@example.com (or set SKIFF_JID).
    #[arg(long, env = "SKIFF_JID", global = true)]
    jid: Option<String>,
    /// Name of the environment variable holding the password; without it, skiff asks.
    #[arg(long, default_value = "SKIFF_PASSWORD", global = true, value_name = "VAR")]
    password_env: String,
    /// Connect to HOST:PORT instead of looking the server up in DNS.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    server: Option<String>,
    /// How to secure the connection. `plaintext` works only with a server on this machine.
    #[arg(long, default_value = "starttls", value_parser = tls_modes(), global = true)]
    tls: TlsMode,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Trust the server certificate with this SHA-256 fingerprint for this account
    /// (self-signed or from an unknown authority), e.g. SHA256:AB:CD:…; kept for the
    /// next runs once sign-in succeeds. Skiff shows the fingerprint when it refuses a
    /// certificate; compare it with what the server's admin sees.
    #[arg(long, global = true, value_name = "SHA256")]
    trust_fingerprint: Option<Fingerprint>,
    /// Allow PLAIN sign-in (over TLS) for an account that signed in with SCRAM before
    /// (refused by default: a server offering only PLAIN then may be a downgrade).
    #[arg(long, global = true)]
    allow_plain: bool,
    /// Where Skiff keeps its history and settings (default: $SKIFF_DATA_DIR, else
    /// $XDG_DATA_HOME/skiff or ~/.local/share/skiff, shared with the desktop app).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Resource to bind (default: skiff-cli).
    #[arg(long, global = true, value_name = "R")]
    resource: Option<String>,
    /// Address our own SOCKS5 streamhost listens on and offers (repeatable; default:
    /// every usable local address). Tests set 127.0.0.1.
    #[arg(
        long = "streamhost-addr",
        global = true,
        value_name = "IP",
        env = "SKIFF_STREAMHOST_ADDRS",
        value_delimiter = ','
    )]
    streamhost_addrs: Vec<std::net::IpAddr>,
    /// Print one JSON object a line instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log the protocol to stderr (-v: stanzas, -vv: everything). Passwords are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// `--tls`: the engine's TLS modes by their wire names, listed in `--help`.
fn tls_modes() -> impl clap::builder::TypedValueParser<Value = TlsMode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(TlsMode::ALL.iter().map(|m| m.as_str())).try_map(|s| s.parse::<TlsMode>())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List your contacts and who of them is online.
    Roster {
        /// Seconds to collect contacts' presence after signing in.
        #[arg(long, default_value_t = 2.0)]
        wait: f64,
    },
    /// Show the bound address, the connection's security and the server's features.
    Whoami,
    /// Stay online and print what happens (presence, roster changes) until Ctrl-C.
    Online {
        /// Leave after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Send files to a contact (a bare JID picks their best client, a full JID that one).
    Send {
        to: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// How to send: auto = SI file transfer (SOCKS5, then in-band), or HTTP upload
        /// when the contact is offline or none of their clients takes SI offers.
        #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
        method: MethodArg,
        /// With auto: never fall back to HTTP upload.
        #[arg(long)]
        no_upload: bool,
        /// Use this SOCKS5 proxy (e.g. proxy.example.com) instead of discovering the server's.
        #[arg(long, value_name = "JID")]
        proxy: Option<String>,
        /// Do not offer our own streamhost (only the proxy).
        #[arg(long)]
        no_direct: bool,
        /// Do not offer a proxy.
        #[arg(long)]
        no_proxy: bool,
        /// Largest in-band block size to ask of another Skiff (bytes, 512 to 65535;
        /// other clients get 4096).
        #[arg(long, default_value_t = skiff_engine::transfer::DEFAULT_IBB_BLOCK, value_parser = clap::value_parser!(u16).range(512..))]
        ibb_block_size: u16,
        /// A description shown to the receiver.
        #[arg(long)]
        desc: Option<String>,
        /// Seconds to wait for the recipient to come online.
        #[arg(long, default_value_t = 10.0)]
        wait: f64,
    },
    /// Stay online and receive files.
    Receive {
        /// Where files go (default: ~/Downloads or the data folder's downloads/).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Which offers to accept.
        #[arg(long, value_enum, default_value_t = AcceptArg::Contacts)]
        accept: AcceptArg,
        /// Offers from people not in the roster: refused at once (default), or left to
        /// `--accept`.
        #[arg(long, value_enum, default_value_t = StrangersArg::Refuse)]
        from_strangers: StrangersArg,
        /// Leave after this many transfers have finished (completed, failed or declined).
        #[arg(long)]
        count: Option<u32>,
        /// Leave (with an error) after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// List past and current transfers.
    History {
        /// Only transfers with this contact (bare JID).
        #[arg(long)]
        peer: Option<String>,
        /// Only files whose name contains this.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Continue an interrupted transfer where it stopped: an outgoing one is offered
    /// again; an incoming link is fetched again from where its .part ends.
    Resume {
        id: i64,
        /// Send it by HTTP upload instead (e.g. after every SI route failed).
        #[arg(long)]
        by_upload: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MethodArg {
    Auto,
    S5b,
    Ibb,
    /// XEP-0363 HTTP File Upload: the server keeps the file, the contact gets a link
    /// (works when the contact is offline or has no SI file transfer).
    Upload,
    /// XEP-0066 jabber:iq:oob: serve the file from this computer on a one-time plain
    /// HTTP URL (on the --streamhost addresses) for a contact on the same network.
    Oob,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum AcceptArg {
    All,
    Contacts,
    None,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum StrangersArg {
    Refuse,
    Accept,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("skiff: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => "warn",
        1 => "warn,skiff::xml=debug,skiff_engine=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG").unwrap_or_else(|_| filter.into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

fn account(cli: &Cli) -> Result<AccountConfig> {
    let Some(jid) = &cli.jid else {
        bail!("no account given: pass --jid you@server (or set SKIFF_JID)");
    };
    let password = match std::env::var(&cli.password_env) {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!("Password for {jid}: ")).context("cannot read the password")?
        }
        Err(_) => bail!(
            "no password: set the environment variable {} (or run skiff in a terminal to be asked)",
            cli.password_env
        ),
    };
    let form = AccountForm {
        jid: jid.clone(),
        password: Secret::new(password),
        server: cli.server.clone(),
        tls: cli.tls,
        ca_file: cli.ca_file.as_ref().map(|p| p.display().to_string()),
        resource: cli.resource.clone(),
        // Made (and kept in the data folder) only when nothing names the resource.
        default_resource: if cli.resource.is_some() || jid.contains('/') { String::new() } else { cli_resource(cli) },
    };
    let mut cfg = form.config()?;
    // A one-shot command should not retry forever; staying online reconnects.
    cfg.reconnect = matches!(cli.command, Command::Online { .. } | Command::Receive { .. });
    Ok(cfg)
}

/// The resource of this run: `skiff receive` uses this data folder's own,
/// `skiff-cli-XXXXXX`, the same at every run (a sender's resume finds it again); other
/// commands add a random part, so that a `skiff send` beside a running `skiff receive`
/// does not take its session. Unlike the desktop app's and other machines', so two
/// Skiffs on one account never kick each other off.
fn cli_resource(cli: &Cli) -> String {
    let stable = stable_cli_resource(cli);
    if matches!(cli.command, Command::Receive { .. }) {
        return stable;
    }
    use rand::Rng;
    let run: String =
        rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(4).map(char::from).collect();
    format!("{stable}-{}", run.to_ascii_lowercase())
}

fn stable_cli_resource(cli: &Cli) -> String {
    skiff_engine::config::persistent_resource(&data_dir(cli).join("resource-cli"), "skiff-cli")
}

fn data_dir(cli: &Cli) -> PathBuf {
    cli.data_dir.clone().unwrap_or_else(skiff_engine::config::data_dir)
}

fn open_store(cli: &Cli) -> Result<Arc<Store>> {
    let dir = data_dir(cli);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    let (store, recovered) = Store::open_or_recover(&dir.join("history.sqlite3"))?;
    if let Some(r) = recovered {
        eprintln!("skiff: {r}");
    }
    Ok(Arc::new(store))
}

async fn run(cli: Cli) -> Result<()> {
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
    // The files to send are hashed while we sign in, so their offers carry the hashes.
    if let (Command::Send { files, .. }, Some(t)) = (&cli.command, &transfers) {
        t.prepare(files);
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
        (Command::Send { to, files, wait, desc, method, .. }, Some(t)) => {
            let how = match method {
                MethodArg::Auto => SendMethod::Auto,
                MethodArg::S5b | MethodArg::Ibb => SendMethod::Si,
                MethodArg::Upload => SendMethod::Upload,
                MethodArg::Oob => SendMethod::Oob,
            };
            send(&t, &mut events, &out, to, files, *wait, desc.clone(), how).await
        }
        (Command::Receive { count, timeout, .. }, Some(t)) => receive(&t, &mut events, &out, *count, *timeout).await,
        (Command::Resume { id, by_upload }, Some(t)) => resume(&t, &mut events, &out, *id, *by_upload).await,
        _ => unreachable!("every command is handled"),
    };
    client.disconnect().await;
    result
}

fn transfer_config(cli: &Cli) -> Result<TransferConfig> {
    let downloads = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join("Downloads"))
        .unwrap_or_else(|| data_dir(cli).join("downloads"));
    let mut cfg = TransferConfig::new(downloads);
    cfg.streamhost_addrs = cli.streamhost_addrs.clone();
    cfg.http_ca_file = cli.ca_file.clone();
    match &cli.command {
        Command::Send { method, proxy, no_direct, no_proxy, ibb_block_size, no_upload, .. } => {
            cfg.methods = match method {
                MethodArg::S5b => vec![Method::S5b],
                MethodArg::Ibb => vec![Method::Ibb],
                _ => vec![Method::S5b, Method::Ibb],
            };
            cfg.allow_upload = !no_upload;
            cfg.serve_http = *method == MethodArg::Oob;
            if let Some(p) = proxy {
                cfg.proxy = Some(p.parse().with_context(|| format!("--proxy: '{p}' is not a valid address"))?);
            }
            cfg.use_direct = !no_direct;
            cfg.use_proxy = !no_proxy;
            cfg.ibb_block_size = *ibb_block_size;
        }
        Command::Receive { dir, accept, from_strangers, .. } => {
            if let Some(d) = dir {
                cfg.download_dir = d.clone();
            }
            cfg.strangers = match from_strangers {
                StrangersArg::Refuse => StrangerPolicy::Refuse,
                StrangersArg::Accept => StrangerPolicy::Ask,
            };
            cfg.accept = match accept {
                AcceptArg::All => AcceptPolicy::All,
                AcceptArg::Contacts => AcceptPolicy::Contacts,
                AcceptArg::None => AcceptPolicy::None,
            };
        }
        _ => {}
    }
    Ok(cfg)
}

#[allow(clippy::too_many_arguments)]
async fn send(
    t: &Transfers,
    events: &mut Receiver<Event>,
    out: &Output,
    to: &str,
    files: &[PathBuf],
    wait: f64,
    desc: Option<String>,
    how: SendMethod,
) -> Result<()> {
    let to: Jid = to.parse().with_context(|| format!("'{to}' is not a valid XMPP address"))?;
    let mut ids = Vec::new();
    if how != SendMethod::Upload {
        // A full JID is offered at once; a contact's presence is awaited while it can come.
        t.wait_for_presence(&to, Duration::from_secs_f64(wait.max(0.0))).await;
    }
    for f in files {
        let id = t.send(&to, f, desc.clone(), how).await.with_context(|| format!("cannot send {}", f.display()))?;
        ids.push(id);
    }
    follow(events, out, ids).await
}

async fn resume(t: &Transfers, events: &mut Receiver<Event>, out: &Output, id: i64, by_upload: bool) -> Result<()> {
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
async fn follow(events: &mut Receiver<Event>, out: &Output, ids: Vec<i64>) -> Result<()> {
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

async fn receive(
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

fn transfer_id(e: &Event) -> Option<i64> {
    match e {
        Event::TransferOffered { id, .. }
        | Event::TransferStarted { id, .. }
        | Event::TransferProgress { id, .. }
        | Event::TransferCompleted { id, .. }
        | Event::TransferFailed { id, .. }
        | Event::TransferRejected { id, .. }
        | Event::TransferNotice { id, .. } => Some(*id),
        _ => None,
    }
}

/// Progress bars on a terminal, JSON lines with `--json`.
struct Bars {
    multi: Option<indicatif::MultiProgress>,
    bars: std::collections::HashMap<i64, indicatif::ProgressBar>,
}

impl Bars {
    fn new(json: bool) -> Bars {
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

    fn show(&mut self, out: &Output, ev: &Event) {
        let Some(multi) = &self.multi else {
            out.json_line(ev);
            return;
        };
        match ev {
            Event::TransferOffered { id, direction, peer, name, size, resume_from, .. } => {
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
                let size = match (direction, *size) {
                    (Direction::Incoming, 0) => "size unknown".to_owned(),
                    (_, n) => format!("{n} bytes"),
                };
                let _ = multi.println(format!("#{id} {direction} {name} ({size}) {arrow} {peer}"));
            }
            Event::TransferStarted { id, route, .. } => {
                if let Some(b) = self.bars.get(id) {
                    b.set_message(format!("[{route}]"));
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

fn history(store: &Store, out: &Output, peer: Option<String>, name: Option<String>, limit: u32) -> Result<()> {
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

struct Output {
    json: bool,
}

impl Output {
    fn json_line<T: Serialize>(&self, v: &T) {
        let mut stdout = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut stdout, v);
        let _ = writeln!(stdout);
    }
}

#[derive(Serialize)]
struct ContactLine<'a> {
    #[serde(flatten)]
    contact: &'a Contact,
    online: bool,
    resources: Vec<ResourcePresence>,
}

async fn roster(
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

#[derive(Serialize)]
struct Whoami {
    jid: String,
    server_identities: Vec<String>,
    server_features: Vec<String>,
    stream_features: Vec<String>,
    our_features: Vec<String>,
}

async fn whoami(client: &Client, jid: &Jid, out: &Output) -> Result<()> {
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

async fn online(
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

/// What to do about a refused server certificate.
fn trust_hint(u: &Untrusted) -> String {
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

fn describe(e: &Event) -> String {
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
