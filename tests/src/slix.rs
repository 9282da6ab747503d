//! The third-party test peers as child processes whose JSON lines the tests read:
//! slixmpp (`tests/peers/slixmpp_peer.py`, Debian's python3-slixmpp) and Gajim
//! (`tests/peers/gajim_peer.py`, Debian's gajim, headless; only inside a network
//! namespace that has only `lo`: see [`in_netns`]).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::Prosody;

/// A running third-party peer.
#[derive(Debug)]
pub struct ScriptPeer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

/// The slixmpp peer's name in the tests written before Gajim joined.
pub type SlixPeer = ScriptPeer;

impl ScriptPeer {
    /// Starts the slixmpp peer as `user` (resource `slix`) with `args` after the
    /// global options.
    pub fn start(server: &Prosody, user: &str, args: &[&str]) -> ScriptPeer {
        ScriptPeer::script("slixmpp_peer.py", server, user, "slix", args)
    }

    /// Starts the Gajim peer as `user` (resource `gajim`). Only inside a namespace
    /// with only `lo`, as root (the script checks both).
    pub fn gajim(server: &Prosody, user: &str, args: &[&str]) -> ScriptPeer {
        ScriptPeer::script("gajim_peer.py", server, user, "gajim", args)
    }

    fn script(name: &str, server: &Prosody, user: &str, resource: &str, args: &[&str]) -> ScriptPeer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join(name);
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--jid", &server.jid(user), "--password", &server.password(user)])
            .args(["--server", &format!("127.0.0.1:{}", server.c2s_port)])
            .args(["--ca-file", &server.ca_file.display().to_string(), "--resource", resource])
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start /usr/bin/python3 {name}: {e}"));
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        ScriptPeer { child, lines }
    }

    /// The next JSON line whose `event` is `name` (panics after `secs` or on exit).
    pub async fn expect(&mut self, name: &str, secs: u64) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("peer: no '{name}' within {secs} s"))
                .expect("read the peer's output");
            let Some(line) = line else { panic!("peer exited before '{name}'") };
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer printed non-JSON {line:?}: {e}"));
            if v["event"] == "failed" && name != "failed" {
                panic!("peer failed while waiting for '{name}': {v}");
            }
            if v["event"] == name {
                return v;
            }
        }
    }

    /// Waits for the process to exit and returns its status code.
    pub async fn exit_code(&mut self, secs: u64) -> i32 {
        let status =
            tokio::time::timeout(Duration::from_secs(secs), self.child.wait()).await.expect("peer exit").expect("wait");
        status.code().unwrap_or(-1)
    }
}

/// Runs the calling test again inside a new network namespace that has only `lo`
/// (`unshare -n`, root), where third-party clients that offer every local address
/// can run: `true` when this is that run (go on with the test), `false` when it was
/// started and passed (the test is done). Panics when the inner run fails.
pub fn in_netns(test: &str) -> bool {
    const MARK: &str = "SKIFF_TEST_NETNS";
    if std::env::var_os(MARK).is_some() {
        return true;
    }
    // One namespace run at a time: each starts Prosody and Gajim (seconds of CPU at
    // start), and the candidates' timeouts should not measure the other runs.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let exe = std::env::current_exe().expect("the test binary");
    let status = std::process::Command::new("unshare")
        .args(["-n", "--", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(MARK, "1")
        .status()
        .expect("run unshare -n (root)");
    assert!(status.success(), "{test} inside its network namespace: {status}");
    false
}
