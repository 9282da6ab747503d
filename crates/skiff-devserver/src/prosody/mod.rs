//! A real Prosody XMPP server run as a child process, for end-to-end tests.
//!
//! Each [`Prosody`] is a separate `prosody -F` process in its own process group,
//! with its own directory (config, certificates, data, log) and its own ports,
//! all bound to `127.0.0.1` only. Nothing is shared with the system's Prosody
//! (`/etc/prosody` is never read), so tests can run in parallel.
//!
//! What an instance serves:
//! - client-to-server on [`Prosody::c2s_port`], with STARTTLS required
//!   ([`TlsMode::StartTls`], certificate signed by a fresh CA in
//!   [`Prosody::ca_file`]) or without TLS at all ([`TlsMode::Plaintext`]);
//! - a SOCKS5 bytestream proxy (XEP-0065) at [`Prosody::proxy_jid`], listening on
//!   [`Prosody::proxy_port`] and advertising `127.0.0.1`;
//! - HTTP file upload (XEP-0363) at [`Prosody::upload_jid`], served over plain
//!   HTTP on [`Prosody::http_port`].
//!
//! Accounts are created with `prosodyctl register` and contacts are made by
//! writing Prosody's roster storage files before the server starts.
//!
//! Environment variables:
//! - `SKIFF_PROSODY_LOG=debug` logs at debug level (default `info`) into
//!   `DIR/prosody.log`;
//! - `SKIFF_KEEP_PROSODY_DIR=1` keeps the temporary directory of
//!   [`Prosody::start`] after the instance is dropped (its path is logged);
//! - `SKIFF_PROSODY_BIN` / `SKIFF_PROSODYCTL_BIN` override the executables
//!   (default `prosody` / `prosodyctl` from `PATH`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

mod config;
mod process;

use config::*;
pub use config::{prosody_path_encode, roster_file_text};
use process::*;
pub use process::{free_port, openssl_fingerprint};

/// How clients secure their c2s connection. With TLS ([`TlsMode::StartTls`] or
/// [`TlsMode::Direct`]) the server offers both: STARTTLS on [`Prosody::c2s_port`],
/// required (PLAIN is refused before TLS), and direct TLS on the direct-TLS port,
/// with a certificate signed by the CA in [`Prosody::ca_file`]. Without
/// ([`TlsMode::Plaintext`], tests only) the `tls` module is not loaded and SASL
/// PLAIN is allowed over the unencrypted stream.
pub use skiff_proto::negotiation::TlsMode;

/// The XMPP domain every instance serves.
pub const DOMAIN: &str = "localhost";

/// How long [`Prosody::start`] / [`Prosody::restart`] wait for the ports.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long [`Prosody::stop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many times [`Prosody::start`] picks new ports when one turned out taken.
const PORT_ATTEMPTS: usize = 5;

/// What to set up in a [`Prosody`] instance.
#[derive(Debug, Clone)]
pub struct ProsodyOptions {
    /// How the c2s port is secured.
    pub tls: TlsMode,
    /// Accounts to create on the domain: `(username, password)`.
    pub users: Vec<(String, String)>,
    /// Pairs of usernames made mutual contacts (roster items with
    /// `subscription = "both"` in both directions).
    pub contacts: Vec<(String, String)>,
    /// Largest file the HTTP upload service accepts, in bytes.
    pub upload_size_limit: u64,
    /// Throttle what clients send (Prosody's mod_limits), e.g. `"8kb/s"`, as
    /// ejabberd's default shaper does.
    pub c2s_rate_limit: Option<String>,
    /// XEP-0198 stream management with resumption (mod_smacks, on in Prosody 0.12's
    /// default configuration), for `resume_window` seconds after a drop.
    pub stream_management: bool,
    pub resume_window: u32,
}

impl Default for ProsodyOptions {
    /// STARTTLS; users `alice` / `alice-pw` and `bob` / `bob-pw`, mutual
    /// contacts; uploads up to 1 GiB.
    fn default() -> Self {
        ProsodyOptions {
            tls: TlsMode::StartTls,
            users: vec![("alice".to_owned(), "alice-pw".to_owned()), ("bob".to_owned(), "bob-pw".to_owned())],
            contacts: vec![("alice".to_owned(), "bob".to_owned())],
            upload_size_limit: 1 << 30,
            c2s_rate_limit: None,
            stream_management: true,
            resume_window: 600,
        }
    }
}

/// A running Prosody server. Dropping it stops the server (and, for
/// [`Prosody::start`], deletes its temporary directory).
#[derive(Debug)]
pub struct Prosody {
    /// The XMPP domain: `"localhost"`.
    pub domain: String,
    /// Client-to-server port on 127.0.0.1.
    pub c2s_port: u16,
    /// SOCKS5 bytestream proxy (proxy65) port on 127.0.0.1.
    pub proxy_port: u16,
    /// HTTP port on 127.0.0.1 (file upload and download).
    pub http_port: u16,
    /// Direct TLS (XEP-0368) client port on 127.0.0.1; open in STARTTLS mode only.
    pub direct_tls_port: u16,
    /// PEM file of the CA that signed the server certificate.
    pub ca_file: PathBuf,
    /// The instance's directory (config, certs, data, logs).
    pub dir: PathBuf,
    opts: ProsodyOptions,
    config_file: PathBuf,
    log_file: PathBuf,
    stdout_file: PathBuf,
    /// Passwords of the accounts we created, by username.
    passwords: Mutex<HashMap<String, String>>,
    child: Option<Child>,
    /// Declared last so that it is removed after the server has stopped.
    tempdir: Option<TempDir>,
}

/// Why a launch failed: port conflicts are retried with other ports.
#[derive(Debug)]
enum LaunchError {
    PortInUse(anyhow::Error),
    Other(anyhow::Error),
}

impl From<LaunchError> for anyhow::Error {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::PortInUse(e) | LaunchError::Other(e) => e,
        }
    }
}

impl Prosody {
    /// Starts a fresh instance in a new temporary directory, on free ports.
    ///
    /// Blocks until the c2s, proxy65 and HTTP ports accept connections (at most
    /// 20 s; the error then includes the end of Prosody's log).
    pub fn start(opts: ProsodyOptions) -> Result<Prosody> {
        let tempdir = tempfile::Builder::new()
            .prefix("skiff-prosody-")
            .tempdir()
            .context("creating a temporary directory for Prosody")?;
        let mut prosody = Self::start_in(tempdir.path(), opts, None)?;
        if std::env::var_os("SKIFF_KEEP_PROSODY_DIR").is_some_and(|v| !v.is_empty() && v != "0") {
            let kept = tempdir.keep();
            tracing::info!(dir = %kept.display(), "keeping Prosody's directory (SKIFF_KEEP_PROSODY_DIR)");
        } else {
            prosody.tempdir = Some(tempdir);
        }
        Ok(prosody)
    }

    /// Starts an instance in `dir`, which is created if needed and kept
    /// afterwards (the dev server's persistent directory).
    ///
    /// `ports` is `(c2s, proxy65, http)`; `None` picks free ports (and picks
    /// again if one turns out to be taken). Certificates already in `DIR/certs`
    /// are reused, so clients keep trusting the same CA across runs. Accounts
    /// are (re-)registered with the given passwords. A user's roster file is
    /// written only when it is missing or lacks one of the given contacts
    /// (rewriting it then drops other items).
    pub fn start_in(dir: &Path, opts: ProsodyOptions, ports: Option<(u16, u16, u16)>) -> Result<Prosody> {
        Self::start_in_with(dir, opts, ports, ports.is_none())
    }

    /// As [`Prosody::start_in`] with `ports` only preferred: when one of them turns out
    /// to be taken while Prosody starts (another program, or another demo starting at
    /// the same moment), it starts again on free ports.
    pub fn start_in_preferring(dir: &Path, opts: ProsodyOptions, ports: (u16, u16, u16)) -> Result<Prosody> {
        Self::start_in_with(dir, opts, Some(ports), true)
    }

    fn start_in_with(
        dir: &Path,
        opts: ProsodyOptions,
        ports: Option<(u16, u16, u16)>,
        fall_back: bool,
    ) -> Result<Prosody> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
        let certs = dir.join("certs");
        let ca_file = write_certificates(&certs)?;
        let data = dir.join("data");
        fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;

        let (c2s_port, proxy_port, http_port) = ports.unwrap_or_else(free_ports3);
        let mut prosody = Prosody {
            domain: DOMAIN.to_owned(),
            c2s_port,
            proxy_port,
            http_port,
            direct_tls_port: free_port_besides(&[c2s_port, proxy_port, http_port]),
            ca_file,
            config_file: dir.join("prosody.cfg.lua"),
            log_file: dir.join("prosody.log"),
            stdout_file: dir.join("prosody.stdout"),
            dir,
            opts,
            passwords: Mutex::new(HashMap::new()),
            child: None,
            tempdir: None,
        };
        prosody.write_config()?;
        for (user, password) in &prosody.opts.users {
            prosody.register(user, password)?;
        }
        prosody.write_rosters()?;

        let attempts = if fall_back { PORT_ATTEMPTS } else { 1 };
        let mut attempt = 1;
        loop {
            match prosody.launch() {
                Ok(()) => return Ok(prosody),
                Err(LaunchError::PortInUse(e)) if attempt < attempts => {
                    tracing::warn!("Prosody could not bind its ports, retrying with others: {e:#}");
                    (prosody.c2s_port, prosody.proxy_port, prosody.http_port) = free_ports3();
                    prosody.direct_tls_port =
                        free_port_besides(&[prosody.c2s_port, prosody.proxy_port, prosody.http_port]);
                    prosody.write_config()?;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The bare JID of `user` on this server, e.g. `"alice@localhost"`.
    pub fn jid(&self, user: &str) -> String {
        format!("{user}@{}", self.domain)
    }

    /// The password of an account created through [`ProsodyOptions::users`]
    /// or [`Prosody::register`].
    ///
    /// # Panics
    /// If no such account was created by this harness.
    pub fn password(&self, user: &str) -> String {
        self.passwords
            .lock()
            .unwrap()
            .get(user)
            .cloned()
            .unwrap_or_else(|| panic!("no account {user:?} was created on this Prosody"))
    }

    /// Creates (or resets the password of) an account with
    /// `prosodyctl register`. Works whether or not the server is running.
    pub fn register(&self, user: &str, password: &str) -> Result<()> {
        let output = Command::new(prosodyctl_bin())
            .arg("--config")
            .arg(&self.config_file)
            .args(["register", user, &self.domain, password])
            .stdin(Stdio::null())
            .output()
            .with_context(|| {
                format!("running {} (is Prosody installed? see scripts/install-deps.sh)", prosodyctl_bin())
            })?;
        if !output.status.success() {
            bail!(
                "`prosodyctl register {user} {}` failed ({}):\n{}{}",
                self.domain,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        self.passwords.lock().unwrap().insert(user.to_owned(), password.to_owned());
        Ok(())
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL if it is
    /// still running 5 s later. Does nothing if it is not running.
    ///
    /// Prosody closes client streams gracefully, so with clients still
    /// connected this takes up to about a second (20 ms without).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = Pid::from_raw(child.id() as i32);
        if matches!(child.try_wait(), Ok(None)) {
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    _ => break,
                }
            }
            if matches!(child.try_wait(), Ok(None)) {
                tracing::warn!(pid = child.id(), "Prosody ignored SIGTERM for 5 s, killing it");
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        let _ = child.wait();
        // Anything Prosody may have left in its group (it normally has no
        // children) goes too; the group id cannot have been reused while
        // members remain, and ESRCH (group empty) is the usual outcome.
        let _ = killpg(group, Signal::SIGKILL);
    }

    /// Stops the server and starts it again with the same directory, ports,
    /// configuration and data; returns when it is ready again.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch().map_err(anyhow::Error::from)
    }

    /// Makes a self-signed certificate for the domain as an admin makes it (`openssl
    /// req -x509`: `basicConstraints CA:TRUE`), without serving it: `certs/NAME.crt`
    /// and `certs/NAME.key`.
    pub fn self_signed(&self, name: &str) -> Result<(PathBuf, PathBuf)> {
        let certs = self.dir.join("certs");
        let (crt, key) = (certs.join(format!("{name}.crt")), certs.join(format!("{name}.key")));
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"])
            .args(["-subj", &format!("/CN={}", self.domain)])
            .args(["-addext", &format!("subjectAltName=DNS:{}", self.domain)])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running openssl")?;
        if !status.success() {
            bail!("openssl req -x509 failed: {status}");
        }
        Ok((crt, key))
    }

    /// Serves `crt`/`key` as the server's certificate (restarts the server).
    pub fn serve_certificate(&mut self, crt: &Path, key: &Path) -> Result<()> {
        let certs = self.dir.join("certs");
        fs::copy(crt, certs.join("server.crt"))?;
        fs::copy(key, certs.join("server.key"))?;
        self.restart()
    }

    /// [`Prosody::self_signed`], then served. Returns the certificate's PEM file.
    pub fn serve_self_signed(&mut self, name: &str) -> Result<PathBuf> {
        let (crt, key) = self.self_signed(name)?;
        self.serve_certificate(&crt, &key)?;
        Ok(crt)
    }

    /// Moves proxy65 to another free port (as an admin changing the server's
    /// configuration does): rewrites the configuration and restarts the server.
    /// Returns the new port.
    pub fn move_proxy(&mut self) -> Result<u16> {
        let old = self.proxy_port;
        while self.proxy_port == old || [self.c2s_port, self.http_port, self.direct_tls_port].contains(&self.proxy_port)
        {
            self.proxy_port = free_port();
        }
        self.write_config()?;
        self.restart()?;
        Ok(self.proxy_port)
    }

    /// The process id of the running server, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is still running (false after it died or
    /// was stopped).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The last `lines` lines of Prosody's log file (`DIR/prosody.log`).
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.log_file, lines)
    }

    /// The JID of the SOCKS5 bytestream proxy: `"proxy.localhost"`.
    pub fn proxy_jid(&self) -> String {
        format!("proxy.{}", self.domain)
    }

    /// The JID of the HTTP upload service: `"upload.localhost"`.
    pub fn upload_jid(&self) -> String {
        format!("upload.{}", self.domain)
    }

    /// The path of Prosody's configuration file.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// The options this instance was started with.
    pub fn options(&self) -> &ProsodyOptions {
        &self.opts
    }

    /// Spawns `prosody -F` and waits until it serves all three ports.
    fn launch(&mut self) -> Result<(), LaunchError> {
        let log_offset = fs::metadata(&self.log_file).map(|m| m.len()).unwrap_or(0);
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stdout_file)
            .with_context(|| format!("opening {}", self.stdout_file.display()))
            .map_err(LaunchError::Other)?;
        let stderr = stdout.try_clone().context("duplicating the stdout file").map_err(LaunchError::Other)?;
        let child = Command::new(prosody_bin())
            .arg("--config")
            .arg(&self.config_file)
            .arg("-F")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {} (is Prosody installed? see scripts/install-deps.sh)", prosody_bin()))
            .map_err(LaunchError::Other)?;
        tracing::debug!(pid = child.id(), dir = %self.dir.display(), "spawned Prosody");
        self.child = Some(child);
        let result = self.wait_ready(log_offset);
        match &result {
            Ok(()) => tracing::info!(
                dir = %self.dir.display(),
                c2s = self.c2s_port,
                proxy65 = self.proxy_port,
                http = self.http_port,
                "Prosody is ready"
            ),
            Err(_) => self.stop(),
        }
        result
    }

    /// Polls until Prosody logged that it listens on each of our ports and
    /// each port accepts a TCP connection (so a port held by someone else
    /// is not mistaken for ours).
    fn wait_ready(&mut self, log_offset: u64) -> Result<(), LaunchError> {
        let mut services = vec![("c2s", self.c2s_port), ("proxy65", self.proxy_port), ("http", self.http_port)];
        if self.opts.tls.is_tls() {
            services.push(("c2s_direct_tls", self.direct_tls_port));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut waiting_for: Vec<String>;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(LaunchError::Other(anyhow!(
                        "Prosody exited during startup ({status})\n{}",
                        self.diagnostics()
                    )));
                }
            }
            let log = read_from(&self.log_file, log_offset);
            if let Some(line) = log.lines().find(|l| l.contains("Failed to open server port")) {
                return Err(LaunchError::PortInUse(anyhow!(
                    "Prosody could not listen on one of its ports: {line}\n{}",
                    self.diagnostics()
                )));
            }
            waiting_for = services
                .iter()
                .filter(|(name, port)| !(activated(&log, name, *port) && accepts(*port)))
                .map(|(name, port)| format!("{name} on 127.0.0.1:{port}"))
                .collect();
            if waiting_for.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let error = anyhow!(
            "Prosody was not ready after {} s; still waiting for {}\n{}",
            READY_TIMEOUT.as_secs(),
            waiting_for.join(", "),
            self.diagnostics()
        );
        // A service Prosody never activated: most likely its port was taken meanwhile
        // (it may say so in a way not matched above): tried again on other ports.
        let log = read_from(&self.log_file, log_offset);
        let never_activated = services.iter().any(|(name, port)| !activated(&log, name, *port));
        Err(if never_activated { LaunchError::PortInUse(error) } else { LaunchError::Other(error) })
    }

    /// The end of Prosody's log and of its stdout/stderr, for error messages.
    fn diagnostics(&self) -> String {
        let log = self.log_tail(40);
        let log = if log.trim().is_empty() { "(empty)".to_owned() } else { log };
        let mut s = format!("--- last lines of {} ---\n{log}", self.log_file.display());
        let out = tail_of_file(&self.stdout_file, 20);
        if !out.trim().is_empty() {
            let _ = write!(s, "\n--- last lines of {} ---\n{out}", self.stdout_file.display());
        }
        s
    }
}

/// Whether Prosody's `log` says it listens for `service` on 127.0.0.1:`port`.
fn activated(log: &str, service: &str, port: u16) -> bool {
    log.contains(&format!("Activated service '{service}' on [127.0.0.1]:{port}"))
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_encoding_matches_prosody() {
        assert_eq!(prosody_path_encode("localhost"), "localhost");
        assert_eq!(prosody_path_encode("upload.localhost"), "upload%2elocalhost");
        assert_eq!(prosody_path_encode("a-b_c"), "a%2db%5fc");
    }

    #[test]
    fn lua_strings_are_escaped() {
        assert_eq!(lua_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lua_str("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn roster_file_lists_contacts() {
        let text = roster_file_text(&[("bob@localhost".to_owned(), "bob")]);
        assert!(text.starts_with("return {\n\t[false] = {"));
        assert!(text.contains("\t[\"bob@localhost\"] = {\n\t\t[\"subscription\"] = \"both\";"));
        assert!(text.ends_with("};\n"));
    }
}
