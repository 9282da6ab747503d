//! `skiff-devserver`: a local Prosody for trying Skiff by hand.
//!
//! Starts Prosody (STARTTLS, certificate signed by a CA of its own) in a
//! persistent directory, with the accounts alice, bob and carol on `localhost`
//! (passwords `alice-demo`, `bob-demo`, `carol-demo`), all mutual contacts.
//! Prints one JSON line on stdout:
//!
//! ```json
//! {"domain":"localhost","c2s_port":15222,"proxy_port":17777,"http_port":15280,
//!  "ca_file":"/root/.local/share/skiff-demo/certs/ca.pem",
//!  "accounts":[{"jid":"alice@localhost","password":"alice-demo"}, ...]}
//! ```
//!
//! then runs until Ctrl-C or SIGTERM, and stops Prosody. Everything listens
//! on 127.0.0.1 only. Ports are 15222 (c2s), 17777 (proxy65) and 15280 (HTTP)
//! when free, other free ports otherwise.
//!
//! Usage: `skiff-devserver [--dir DIR]`; DIR defaults to
//! `$XDG_DATA_HOME/skiff-demo` or `~/.local/share/skiff-demo`.
//! Set `SKIFF_PROSODY_LOG=debug` for a debug log in `DIR/prosody.log`.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use skiff_tests::{Prosody, ProsodyOptions, TlsMode};

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const PREFERRED_PORTS: (u16, u16, u16) = (15222, 17777, 15280);

const USAGE: &str = "\
usage: skiff-devserver [--dir DIR]

Runs a local Prosody (STARTTLS) with the accounts alice, bob and carol on
localhost (passwords alice-demo, bob-demo, carol-demo), all mutual contacts.
Prints one JSON line with the ports, the CA file and the accounts, then runs
until Ctrl-C or SIGTERM.

  --dir DIR   where config, certificates, data and logs live
              (default $XDG_DATA_HOME/skiff-demo or ~/.local/share/skiff-demo)
  -h, --help  show this help";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff-devserver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `--dir DIR` / `--dir=DIR`; `None` when help was asked for.
fn parse_args() -> Result<Option<PathBuf>> {
    let mut dir = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let arg_str = arg.to_string_lossy();
        if arg_str == "-h" || arg_str == "--help" {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return Ok(None);
        } else if arg_str == "--dir" {
            let value = args.next().context("--dir needs a value\n\n".to_owned() + USAGE)?;
            dir = Some(PathBuf::from(value));
        } else if let Some(value) = arg_str.strip_prefix("--dir=") {
            dir = Some(PathBuf::from(value));
        } else {
            bail!("unexpected argument {arg_str:?}\n\n{USAGE}");
        }
    }
    let dir = match dir {
        Some(d) => d,
        None => default_dir()?,
    };
    Ok(Some(dir))
}

/// `$XDG_DATA_HOME/skiff-demo`, else `$HOME/.local/share/skiff-demo`.
fn default_dir() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("skiff-demo"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set: pass --dir DIR")?;
    Ok(PathBuf::from(home).join(".local/share/skiff-demo"))
}

/// The preferred ports where they can be bound now, other free ports
/// otherwise. All three listeners are held while choosing, so the ports
/// are distinct.
fn choose_ports() -> Result<(u16, u16, u16)> {
    let (c2s, proxy, http) = PREFERRED_PORTS;
    let mut listeners = Vec::new();
    for port in [c2s, proxy, http] {
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(l) => l,
            Err(_) => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
                tracing::warn!("port {port} is taken, using {} instead", l.local_addr()?.port());
                l
            }
        };
        listeners.push(listener);
    }
    let port = |i: usize| listeners[i].local_addr().map(|a| a.port());
    Ok((port(0)?, port(1)?, port(2)?))
}

fn run() -> Result<()> {
    let Some(dir) = parse_args()? else {
        return Ok(());
    };

    let users: Vec<(String, String)> = USERS.iter().map(|u| (u.to_string(), format!("{u}-demo"))).collect();
    let mut contacts = Vec::new();
    for (i, a) in USERS.iter().enumerate() {
        for b in &USERS[i + 1..] {
            contacts.push((a.to_string(), b.to_string()));
        }
    }
    let opts = ProsodyOptions { tls: TlsMode::StartTls, users, contacts, ..ProsodyOptions::default() };
    let ports = choose_ports()?;

    let mut prosody =
        Prosody::start_in(&dir, opts, Some(ports)).with_context(|| format!("starting Prosody in {}", dir.display()))?;

    let accounts: Vec<serde_json::Value> =
        USERS.iter().map(|u| serde_json::json!({ "jid": prosody.jid(u), "password": prosody.password(u) })).collect();
    let info = serde_json::json!({
        "domain": prosody.domain,
        "c2s_port": prosody.c2s_port,
        "proxy_port": prosody.proxy_port,
        "http_port": prosody.http_port,
        "ca_file": prosody.ca_file,
        "accounts": accounts,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{info}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    drop(stdout);
    tracing::info!(
        "Prosody is running in {} (log: {}); Ctrl-C to stop",
        prosody.dir.display(),
        prosody.dir.join("prosody.log").display()
    );

    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("building the async runtime")?;
    let outcome = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => { tracing::info!("Ctrl-C: stopping"); break; }
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = hup.recv() => { tracing::info!("SIGHUP: stopping"); break; }
                _ = check.tick() => {
                    if !prosody.is_running() {
                        bail!("Prosody exited unexpectedly; end of its log:\n{}", prosody.log_tail(30));
                    }
                }
            }
        }
        Ok(())
    });
    prosody.stop();
    outcome
}
