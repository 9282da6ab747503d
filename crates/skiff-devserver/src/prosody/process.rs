//! The Prosody process and its ports: tied to its owner's life, stale ones reaped,
//! free ports, the binaries, its log.

use super::*;

impl Prosody {
    /// Ends Prosody when the process `owner` ends, however it ends (SIGKILL and
    /// crashes included): a small watchdog process, in its own process group (a
    /// Ctrl-C to the terminal's group does not take it first), polls `owner` twice a
    /// second and then stops the server's process group (SIGTERM, SIGKILL 5 s later).
    pub fn exit_with(&self, owner: u32) -> Result<()> {
        let Some(pid) = self.pid() else { bail!("Prosody is not running") };
        let script = r#"while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 0.5; done
kill -0 "$2" 2>/dev/null || exit 0
kill -TERM "-$2" 2>/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$2" 2>/dev/null || exit 0; sleep 0.5; done
kill -KILL "-$2" 2>/dev/null"#;
        Command::new("sh")
            .args(["-c", script, "skiff-prosody-watchdog", &owner.to_string(), &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the watchdog of the demo server")?;
        Ok(())
    }

    /// Stops every Prosody still running with the configuration in `dir` (left over
    /// by a process that could not stop it): SIGTERM to its process group, SIGKILL
    /// after 5 s. Returns how many there were.
    pub fn reap_stale(dir: &Path) -> usize {
        let config = dir.join("prosody.cfg.lua");
        let Ok(procs) = fs::read_dir("/proc") else { return 0 };
        let mut stale = Vec::new();
        for entry in procs.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_prosody = args.iter().any(|a| a.ends_with(b"/prosody") || *a == b"prosody");
            let ours = args.windows(2).any(|w| w[0] == b"--config" && w[1] == config.as_os_str().as_encoded_bytes());
            if is_prosody && ours {
                stale.push(Pid::from_raw(pid));
            }
        }
        for pid in &stale {
            tracing::warn!(pid = pid.as_raw(), "stopping a stale Prosody of {}", dir.display());
            // Our servers lead their own process group; anything else gets the signal alone.
            if killpg(*pid, Signal::SIGTERM).is_err() {
                let _ = nix::sys::signal::kill(*pid, Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        let alive = |p: &Pid| nix::sys::signal::kill(*p, None).is_ok() && !is_zombie(p.as_raw());
        while stale.iter().any(alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in stale.iter().filter(|p| alive(p)) {
            let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
        }
        stale.len()
    }
}

/// Whether `pid` has exited and waits for its parent to reap it.
pub(super) fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// The SHA-256 fingerprint of a PEM certificate as OpenSSL shows it (`AB:CD:…`).
pub fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    let s = String::from_utf8_lossy(&out.stdout);
    s.trim().rsplit_once('=').expect("openssl fingerprint line").1.to_owned()
}

/// A free TCP port on 127.0.0.1 (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// A free port other than `taken` (ports just chosen and not yet bound).
pub(super) fn free_port_besides(taken: &[u16]) -> u16 {
    loop {
        let port = free_port();
        if !taken.contains(&port) {
            return port;
        }
    }
}

/// Three distinct free ports (all held at once while choosing).
pub(super) fn free_ports3() -> (u16, u16, u16) {
    let bind = || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
    let (a, b, c) = (bind(), bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    (port(&a), port(&b), port(&c))
}

/// Whether 127.0.0.1:`port` accepts a TCP connection.
pub(super) fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

pub(super) fn prosody_bin() -> String {
    std::env::var("SKIFF_PROSODY_BIN").unwrap_or_else(|_| "prosody".to_owned())
}

pub(super) fn prosodyctl_bin() -> String {
    std::env::var("SKIFF_PROSODYCTL_BIN").unwrap_or_else(|_| "prosodyctl".to_owned())
}

/// The content of `path` from byte `offset` on (lossy UTF-8; empty if absent).
pub(super) fn read_from(path: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut bytes);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `lines` lines of a text file (empty if absent).
pub(super) fn tail_of_file(path: &Path, lines: usize) -> String {
    let text = read_from(path, 0);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
