//! The `skiff` binary as a child process, for tests that kill a side with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::Prosody;

/// `target/<profile>/skiff`, next to the test binary's `deps/` folder.
pub fn skiff_binary() -> PathBuf {
    workspace_binary("skiff", "skiff-cli")
}

/// A binary of the workspace beside the test binary (`target/<profile>/NAME`),
/// built by `cargo build --workspace --bins`.
pub fn workspace_binary(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p {package}; scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A running `skiff --json ...` whose event lines the test reads.
#[derive(Debug)]
pub struct SkiffProcess {
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl SkiffProcess {
    /// Runs `skiff` as `user` with `data_dir`, loopback streamhosts and `args`.
    pub fn start(server: &Prosody, user: &str, data_dir: &Path, args: &[&str]) -> SkiffProcess {
        SkiffProcess::start_as(server, user, Some("cli"), data_dir, args)
    }

    /// [`SkiffProcess::start`] with the resource `resource`, or skiff's own choice.
    pub fn start_as(
        server: &Prosody,
        user: &str,
        resource: Option<&str>,
        data_dir: &Path,
        args: &[&str],
    ) -> SkiffProcess {
        let mut cmd = Command::new(skiff_binary());
        if let Some(r) = resource {
            cmd.args(["--resource", r]);
        }
        let mut child = cmd
            .args(["--jid", &server.jid(user), "--server", &format!("127.0.0.1:{}", server.c2s_port)])
            .args(["--ca-file", &server.ca_file.display().to_string()])
            .args(["--data-dir", &data_dir.display().to_string(), "--streamhost-addr", "127.0.0.1", "--json"])
            .args(args)
            .env("SKIFF_PASSWORD", server.password(user))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start skiff");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        SkiffProcess { child, lines }
    }

    /// The next event line matching `pred` (panics after `secs`).
    pub async fn expect(
        &mut self,
        secs: u64,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("skiff: no {what} within {secs} s"))
                .expect("read skiff's output");
            let Some(line) = line else { panic!("skiff exited before {what}") };
            if std::env::var_os("SKIFF_TEST_ECHO").is_some() {
                eprintln!("skiff> {line}");
            }
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("skiff printed non-JSON {line:?}: {e}"));
            if pred(&v) {
                return v;
            }
        }
    }

    /// SIGKILL, as a crash or a power cut would.
    pub async fn kill_9(&mut self) {
        self.child.kill().await.expect("kill -9");
    }
}
