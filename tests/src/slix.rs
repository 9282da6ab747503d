//! The slixmpp test peer (`tests/peers/slixmpp_peer.py`, Debian's python3-slixmpp)
//! as a child process whose JSON lines the tests read.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::Prosody;

/// A running slixmpp peer.
#[derive(Debug)]
pub struct SlixPeer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl SlixPeer {
    /// Starts the peer as `user` (resource `slix`) with `args` after the global options.
    pub fn start(server: &Prosody, user: &str, args: &[&str]) -> SlixPeer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/slixmpp_peer.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(["--jid", &server.jid(user), "--password", &server.password(user)])
            .args(["--server", &format!("127.0.0.1:{}", server.c2s_port)])
            .args(["--ca-file", &server.ca_file.display().to_string(), "--resource", "slix"])
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start /usr/bin/python3 with slixmpp");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        SlixPeer { child, lines }
    }

    /// The next JSON line whose `event` is `name` (panics after `secs` or on exit).
    pub async fn expect(&mut self, name: &str, secs: u64) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("slixmpp peer: no '{name}' within {secs} s"))
                .expect("read the peer's output");
            let Some(line) = line else { panic!("slixmpp peer exited before '{name}'") };
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer printed non-JSON {line:?}: {e}"));
            if v["event"] == "failed" && name != "failed" {
                panic!("slixmpp peer failed while waiting for '{name}': {v}");
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
