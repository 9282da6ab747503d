//! `skiff`: the command-line client. It only translates: arguments become engine
//! calls, engine events become lines of text (or JSON with `--json`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use skiff_engine::event::{Contact, ResourcePresence};
use skiff_engine::{AccountConfig, Client, Event, Secret, TlsMode};
use skiff_proto::disco::DiscoInfoResult;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::xml::Element;

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
    #[arg(long, value_enum, default_value_t = Tls::Starttls, global = true)]
    tls: Tls,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Where Skiff keeps its history and settings.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Resource to bind (default: skiff-cli).
    #[arg(long, global = true, value_name = "R")]
    resource: Option<String>,
    /// Print one JSON object a line instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log the protocol to stderr (-v: stanzas, -vv: everything). Passwords are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Tls {
    Starttls,
    Direct,
    Plaintext,
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
    let mut jid: Jid = jid.parse().with_context(|| format!("'{jid}' is not a valid XMPP address"))?;
    if jid.local().is_none() {
        bail!("'{jid}' has no user part: an account looks like you@server");
    }
    let resource = cli.resource.clone().or_else(|| jid.resource().map(str::to_owned)).unwrap_or_else(|| "skiff-cli".into());
    jid = jid.with_resource(&resource).context("bad resource")?;
    let password = match std::env::var(&cli.password_env) {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password(format!("Password for {}: ", jid.bare())).context("cannot read the password")?
        }
        Err(_) => bail!("no password: set the environment variable {} (or run skiff in a terminal to be asked)", cli.password_env),
    };
    let mut cfg = AccountConfig::new(jid, Secret::new(password));
    cfg.tls = match cli.tls {
        Tls::Starttls => TlsMode::StartTls,
        Tls::Direct => TlsMode::Direct,
        Tls::Plaintext => TlsMode::Plaintext,
    };
    cfg.ca_file = cli.ca_file.clone();
    if let Some(server) = &cli.server {
        let (host, port) = server
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("--server wants HOST:PORT, got '{server}'"))?;
        cfg.server = Some((host, port));
    }
    // A one-shot command should not retry forever; `online` reconnects.
    cfg.reconnect = matches!(cli.command, Command::Online { .. });
    Ok(cfg)
}

async fn run(cli: Cli) -> Result<()> {
    let cfg = account(&cli)?;
    if let Some(dir) = &cli.data_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    }
    let client = Client::start(cfg);
    let mut events = client.events();
    let jid = client.wait_online().await.context("sign-in failed")?;
    let out = Output { json: cli.json };
    let result = match cli.command {
        Command::Roster { wait } => roster(&client, &mut events, &out, wait).await,
        Command::Whoami => whoami(&client, &jid, &out).await,
        Command::Online { seconds } => online(&client, &mut events, &out, seconds).await,
    };
    client.disconnect().await;
    result
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

async fn roster(client: &Client, events: &mut tokio::sync::broadcast::Receiver<Event>, out: &Output, wait: f64) -> Result<()> {
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

async fn online(client: &Client, events: &mut tokio::sync::broadcast::Receiver<Event>, out: &Output, seconds: Option<f64>) -> Result<()> {
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

fn describe(e: &Event) -> String {
    match e {
        Event::Connecting { attempt } => format!("connecting (attempt {attempt})"),
        Event::Online { jid, .. } => format!("online as {jid}"),
        Event::Offline { reason, will_retry } => format!("offline: {reason}{}", if *will_retry { "; will reconnect" } else { "" }),
        Event::Reconnecting { delay_ms, .. } => format!("reconnecting in {:.1} s", *delay_ms as f64 / 1000.0),
        Event::Roster { contacts } => format!("{} contacts", contacts.len()),
        Event::ContactChanged { contact } => format!("contact {} is now {}", contact.jid, contact.subscription),
        Event::ContactRemoved { jid } => format!("contact {jid} removed"),
        Event::Presence { jid, resource, available: true, show, .. } => format!("{jid}/{resource} is {show}"),
        Event::Presence { jid, resource, .. } => format!("{jid}/{resource} went offline"),
        Event::SubscriptionRequest { from } => format!("{from} asks to see your presence"),
        Event::Fatal { message, .. } => format!("error: {message}"),
    }
}
