//! The command line: what `skiff` takes, and its translation into the engine's
//! account and transfer configurations.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use skiff_engine::transfer::{AcceptPolicy, Method, StrangerPolicy, TransferConfig};
use skiff_engine::trust::Fingerprint;
use skiff_engine::{AccountConfig, AccountForm, Secret, TlsMode};

#[derive(Parser, Debug)]
#[command(name = "skiff", version, about = "Send and receive files over XMPP")]
pub(crate) struct Cli {
    /// Your account, e.g. alice@example.com (or set SKIFF_JID).
    #[arg(long, env = "SKIFF_JID", global = true)]
    pub(crate) jid: Option<String>,
    /// Name of the environment variable holding the password; without it, skiff asks.
    #[arg(long, default_value = "SKIFF_PASSWORD", global = true, value_name = "VAR")]
    pub(crate) password_env: String,
    /// Connect to HOST:PORT instead of looking the server up in DNS.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub(crate) server: Option<String>,
    /// How to secure the connection. `plaintext` works only with a server on this machine.
    #[arg(long, default_value = "starttls", value_parser = tls_modes(), global = true)]
    pub(crate) tls: TlsMode,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, global = true, value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Trust the server certificate with this SHA-256 fingerprint for this account
    /// (self-signed or from an unknown authority), e.g. SHA256:AB:CD:…; kept for the
    /// next runs once sign-in succeeds. Skiff shows the fingerprint when it refuses a
    /// certificate; compare it with what the server's admin sees.
    #[arg(long, global = true, value_name = "SHA256")]
    pub(crate) trust_fingerprint: Option<Fingerprint>,
    /// Allow PLAIN sign-in (over TLS) for an account that signed in with SCRAM before
    /// (refused by default: a server offering only PLAIN then may be a downgrade).
    #[arg(long, global = true)]
    pub(crate) allow_plain: bool,
    /// Where Skiff keeps its history and settings (default: $SKIFF_DATA_DIR, else
    /// $XDG_DATA_HOME/skiff or ~/.local/share/skiff, shared with the desktop app).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Resource to bind (default: skiff-cli).
    #[arg(long, global = true, value_name = "R")]
    pub(crate) resource: Option<String>,
    /// Address our own SOCKS5 streamhost listens on and offers (repeatable; default:
    /// every usable local address). Tests set 127.0.0.1.
    #[arg(
        long = "streamhost-addr",
        global = true,
        value_name = "IP",
        env = "SKIFF_STREAMHOST_ADDRS",
        value_delimiter = ','
    )]
    pub(crate) streamhost_addrs: Vec<std::net::IpAddr>,
    /// Print one JSON object a line instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Log the protocol to stderr (-v: stanzas, -vv: everything). Passwords are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--tls`: the engine's TLS modes by their wire names, listed in `--help`.
pub(crate) fn tls_modes() -> impl clap::builder::TypedValueParser<Value = TlsMode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(TlsMode::ALL.iter().map(|m| m.as_str())).try_map(|s| s.parse::<TlsMode>())
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
        /// Files and folders; a folder sends every file inside it. Several files go to a
        /// Skiff as one batch (one offer, the tree kept); to other clients one by one,
        /// each described by its path inside the folder (`photos/2024/a.jpg`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// How to send: auto = SI file transfer (SOCKS5, then in-band), or HTTP upload
        /// when the contact is offline or none of their clients takes SI offers.
        #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
        method: MethodArg,
        /// Which signalling sets the transfer up: auto = Jingle file transfer for a
        /// client that takes it, else SI (several files to a Skiff go as one SI batch);
        /// si or jingle force one (with --method s5b or ibb as the transport).
        #[arg(long, value_enum, default_value_t = ProtocolArg::Auto)]
        protocol: ProtocolArg,
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
        /// Offer several files one by one, also to a Skiff (which otherwise gets them
        /// as one batch: one offer, the tree kept).
        #[arg(long)]
        one_by_one: bool,
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
        /// Jingle offers: do not offer our own streamhost as a candidate (the sender's
        /// candidates, a proxy or in-band then carry the file).
        #[arg(long)]
        no_direct: bool,
        /// Jingle offers: do not offer a proxy as a candidate.
        #[arg(long)]
        no_proxy: bool,
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
pub(crate) enum ProtocolArg {
    Auto,
    /// XEP-0096 SI file transfer.
    Si,
    /// XEP-0234 Jingle file transfer.
    Jingle,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MethodArg {
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
pub(crate) enum AcceptArg {
    All,
    Contacts,
    None,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum StrangersArg {
    Refuse,
    Accept,
}

pub(crate) fn account(cli: &Cli) -> Result<AccountConfig> {
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
pub(crate) fn cli_resource(cli: &Cli) -> String {
    let stable = stable_cli_resource(cli);
    if matches!(cli.command, Command::Receive { .. }) {
        return stable;
    }
    use rand::Rng;
    let run: String =
        rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(4).map(char::from).collect();
    format!("{stable}-{}", run.to_ascii_lowercase())
}

pub(crate) fn stable_cli_resource(cli: &Cli) -> String {
    skiff_engine::config::persistent_resource(&data_dir(cli).join("resource-cli"), "skiff-cli")
}

pub(crate) fn data_dir(cli: &Cli) -> PathBuf {
    cli.data_dir.clone().unwrap_or_else(skiff_engine::config::data_dir)
}

pub(crate) fn transfer_config(cli: &Cli) -> Result<TransferConfig> {
    let downloads = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join("Downloads"))
        .unwrap_or_else(|| data_dir(cli).join("downloads"));
    let mut cfg = TransferConfig::new(downloads);
    cfg.streamhost_addrs = cli.streamhost_addrs.clone();
    cfg.http_ca_file = cli.ca_file.clone();
    match &cli.command {
        Command::Send {
            method, protocol, proxy, no_direct, no_proxy, ibb_block_size, no_upload, one_by_one, ..
        } => {
            cfg.batches = !one_by_one;
            cfg.protocol = match protocol {
                ProtocolArg::Auto => None,
                ProtocolArg::Si => Some(skiff_proto::transfer::Protocol::Si),
                ProtocolArg::Jingle => Some(skiff_proto::transfer::Protocol::Jingle),
            };
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
        Command::Receive { dir, accept, from_strangers, no_direct, no_proxy, .. } => {
            if let Some(d) = dir {
                cfg.download_dir = d.clone();
            }
            cfg.use_direct = !no_direct;
            cfg.use_proxy = !no_proxy;
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
