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
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use skiff_devserver::demo::{self, USERS};

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
        None => demo::default_dir().context("neither XDG_DATA_HOME nor HOME is set: pass --dir DIR")?,
    };
    Ok(Some(dir))
}

fn run() -> Result<()> {
    let Some(dir) = parse_args()? else {
        return Ok(());
    };

    let mut prosody = demo::start(&dir)?;

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
