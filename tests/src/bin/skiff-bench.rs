//! `skiff-bench`: throughput, latency, CPU and memory of every route, side by side
//! with the ceilings (a raw TCP copy; a raw relay through the same proxy65) and with
//! slixmpp, in one run against a throw-away Prosody on loopback.
//!
//! Run it with `bench/run.sh` (release build). Every contender moves the same file
//! between two separate processes; times are taken by this program when the
//! receiving process reports the offer (or the start) and the last byte, so every
//! contender is timed the same way. Contenders alternate within a round.
//!
//! Options: `--sizes 10M,200M,1G` (or `none`) `--ibb-max 200M` `--slix-max 10M` `--rounds N`
//! `--batches 1000x16K,10x100M` (folders as one batch against one file of the same total)
//! `--download-dir DIR` (where the receivers write, e.g. a tmpfs such as `/dev/shm`, to
//! take the disk out of the figures) `--write FILE` (markdown report). Child modes (`raw-recv`, `raw-send`) are the
//! raw copies' two processes.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use skiff_proto::bytestreams::dst_addr;
use skiff_proto::xml::Element;
use skiff_tests::peer::{random_file, sha256_file};
use skiff_tests::{Prosody, ProsodyOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const COPY_BUF: usize = 128 * 1024;
const MIB: u64 = 1 << 20;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("raw-recv") => raw_recv(&args[1..]),
        Some("raw-send") => raw_send(&args[1..]),
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(&args)),
    }
}

// ---------------------------------------------------------------- raw children

/// `raw-recv tcp OUT` (prints `port N`) or `raw-recv socks HOST:PORT DST OUT` (prints
/// `ready`); then copies the stream into OUT and prints `done BYTES`.
fn raw_recv(args: &[String]) -> Result<()> {
    let (mut sock, out) = match args {
        [mode, out] if mode == "tcp" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("port {}", l.local_addr()?.port());
            std::io::stdout().flush()?;
            (l.accept()?.0, out)
        }
        [mode, proxy, dst, out] if mode == "socks" => {
            let s = socks_connect(proxy, dst)?;
            println!("ready");
            std::io::stdout().flush()?;
            (s, out)
        }
        _ => bail!("raw-recv tcp OUT | raw-recv socks HOST:PORT DST OUT"),
    };
    sock.set_nodelay(true)?;
    let mut file = std::fs::File::create(out)?;
    let mut buf = vec![0u8; COPY_BUF];
    let mut total = 0u64;
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        total += n as u64;
    }
    file.flush()?;
    println!("done {total}");
    Ok(())
}

/// `raw-send tcp HOST:PORT FILE` or `raw-send socks HOST:PORT DST FILE` (prints
/// `ready` once the proxy accepted it); starts copying when stdin says `go`.
fn raw_send(args: &[String]) -> Result<()> {
    let (target, file) = match args {
        [mode, addr, file] if mode == "tcp" => (Err(addr.clone()), file),
        [mode, proxy, dst, file] if mode == "socks" => (Ok(socks_connect(proxy, dst)?), file),
        _ => bail!("raw-send tcp HOST:PORT FILE | raw-send socks HOST:PORT DST FILE"),
    };
    if target.is_ok() {
        println!("ready");
        std::io::stdout().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let mut sock = match target {
        Ok(s) => s,
        Err(addr) => std::net::TcpStream::connect(addr)?,
    };
    sock.set_nodelay(true)?;
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sock.write_all(&buf[..n])?;
    }
    sock.shutdown(std::net::Shutdown::Write)?;
    Ok(())
}

/// A SOCKS5 CONNECT to DST (a domain name, port 0) through the proxy, as XEP-0065 does.
fn socks_connect(proxy: &str, dst: &str) -> Result<std::net::TcpStream> {
    let mut s = std::net::TcpStream::connect(proxy)?;
    s.write_all(&[5, 1, 0])?;
    let mut r = [0u8; 2];
    s.read_exact(&mut r)?;
    if r != [5, 0] {
        bail!("proxy refused the method: {r:?}");
    }
    let mut req = vec![5, 1, 0, 3, dst.len() as u8];
    req.extend_from_slice(dst.as_bytes());
    req.extend_from_slice(&[0, 0]);
    s.write_all(&req)?;
    let mut head = [0u8; 5];
    s.read_exact(&mut head)?;
    if head[1] != 0 {
        bail!("proxy refused the connect: {}", head[1]);
    }
    let rest = match head[3] {
        1 => 4 - 1 + 2,
        3 => head[4] as usize + 2,
        4 => 16 - 1 + 2,
        t => bail!("bad address type {t}"),
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip)?;
    Ok(s)
}

// ---------------------------------------------------------------- measuring

/// CPU time and peak RSS of a process, sampled from /proc until it exits.
#[derive(Debug, Clone, Copy, Default)]
struct ProcStats {
    cpu_s: f64,
    peak_rss_kib: u64,
}

/// User + system CPU seconds of a live process; `None` once it is gone or a zombie.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is 3rd, utime 14th, stime 15th.
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    if f.first() == Some(&"Z") {
        return None;
    }
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Some((ticks(11) + ticks(12)) / 100.0) // USER_HZ
}

fn watch(pid: u32) -> Arc<Mutex<ProcStats>> {
    let stats = Arc::new(Mutex::new(ProcStats::default()));
    let out = stats.clone();
    std::thread::spawn(move || loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
        let (Some(cpu_s), Ok(status)) = (cpu_seconds(pid), status) else { return };
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        {
            let mut s = out.lock().unwrap();
            s.cpu_s = cpu_s;
            s.peak_rss_kib = s.peak_rss_kib.max(hwm);
        }
        std::thread::sleep(Duration::from_millis(10));
    });
    stats
}

#[derive(Debug, Clone)]
struct Sample {
    contender: &'static str,
    size: u64,
    secs: f64,
    latency_ms: Option<f64>,
    sender: ProcStats,
    receiver: ProcStats,
    /// Prosody's CPU seconds during the run.
    server_cpu_s: f64,
}

/// A child whose stdout lines arrive with the time they were read.
struct Proc {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<(Instant, String)>,
    stats: Arc<Mutex<ProcStats>>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Result<Proc> {
        let mut child = cmd.stdout(Stdio::piped()).stdin(Stdio::piped()).kill_on_drop(true).spawn()?;
        let stats = watch(child.id().unwrap_or(0));
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if tx.send((Instant::now(), l)).is_err() {
                    break;
                }
            }
        });
        Ok(Proc { child, lines: rx, stats })
    }

    /// The next line for which `pick` says yes, with its arrival time.
    async fn until(&mut self, secs: u64, what: &str, mut pick: impl FnMut(&str) -> bool) -> Result<(Instant, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some((t, l))) if pick(&l) => return Ok((t, l)),
                Ok(Some(_)) => {}
                Ok(None) => bail!("the process ended before {what}"),
                Err(_) => bail!("no {what} within {secs} s"),
            }
        }
    }

    async fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.child.stdin.as_mut().context("stdin")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Waits for the exit; the stats are final then.
    async fn finish(mut self, secs: u64) -> Result<ProcStats> {
        let st = tokio::time::timeout(Duration::from_secs(secs), self.child.wait()).await.context("exit")??;
        if !st.success() {
            bail!("exited with {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
        let s = *self.stats.lock().unwrap();
        Ok(s)
    }
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or(serde_json::Value::Null)
}

// ---------------------------------------------------------------- contenders

struct Env {
    server: Prosody,
    ibb_block: Option<String>,
    skiff: PathBuf,
    me: PathBuf,
    work: tempfile::TempDir,
    /// Where the receivers write, when not beside the rest (`--download-dir`).
    downloads: Option<tempfile::TempDir>,
}

impl Env {
    /// `skiff` as `user`. With `SKIFF_BENCH_PROFILE=DIR`, bob (the receiver) runs under
    /// `perf record -g`, writing `DIR/receiver-N.perf.data`.
    fn skiff(&self, user: &str, data: &Path) -> Command {
        let mut c = match std::env::var_os("SKIFF_BENCH_PROFILE").filter(|_| user == "bob") {
            Some(dir) => {
                let n = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let mut c = Command::new("perf");
                c.args(["record", "-g", "-F", "499", "-o"])
                    .arg(PathBuf::from(dir).join(format!("receiver-{n}.perf.data")))
                    .arg("--")
                    .arg(&self.skiff);
                c
            }
            None => Command::new(&self.skiff),
        };
        c.args(["--jid", &self.server.jid(user), "--server", &format!("127.0.0.1:{}", self.server.c2s_port)])
            .args(["--ca-file", &self.server.ca_file.display().to_string(), "--resource", "bench"])
            .args(["--data-dir", &data.display().to_string(), "--streamhost-addr", "127.0.0.1", "--json"])
            .env("SKIFF_PASSWORD", self.server.password(user))
            .stderr(Stdio::null());
        c
    }

    fn slix(&self, user: &str) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/slixmpp_peer.py");
        let mut c = Command::new("/usr/bin/python3");
        c.arg(script)
            .args(["--jid", &self.server.jid(user), "--password", &self.server.password(user)])
            .args(["--server", &format!("127.0.0.1:{}", self.server.c2s_port)])
            .args(["--ca-file", &self.server.ca_file.display().to_string(), "--resource", "slix"])
            .stderr(Stdio::null());
        c
    }

    fn fresh_dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.work.path().join(name);
        let d = match &self.downloads {
            Some(dl) if name == "dl" || name == "copy" => dl.path().join(name),
            _ => d,
        };
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }
}

/// Skiff to Skiff over one route: `skiff receive` and `skiff send`. `file` may be a
/// folder (`skiff batch ...`): then `sha` is empty and the batch must arrive verified.
async fn skiff_run(env: &Env, contender: &'static str, file: &Path, sha: &str) -> Result<Sample> {
    let size = if file.is_dir() { folder_size(file)? } else { std::fs::metadata(file)?.len() };
    let (bob_data, alice_data, dl) = (env.fresh_dir("bob")?, env.fresh_dir("alice")?, env.fresh_dir("dl")?);
    let mut bob_cmd = env.skiff("bob", &bob_data);
    bob_cmd.args(["receive", "--dir", &dl.display().to_string(), "--accept", "all", "--count", "1"]);
    // Jingle: the receiver offers candidates too; through the proxy only its proxy.
    if contender == "jingle s5b proxy" {
        bob_cmd.arg("--no-direct");
    }
    let mut bob = Proc::spawn(&mut bob_cmd)?;
    bob.until(30, "bob ready", |l| json(l)["type"] == "ready").await?;
    let route: &[&str] = match contender {
        "skiff s5b direct" | "skiff batch s5b direct" => &["--method", "s5b", "--no-proxy", "--protocol", "si"],
        "skiff s5b proxy" => &["--method", "s5b", "--no-direct", "--protocol", "si"],
        "skiff ibb" => &["--method", "ibb", "--protocol", "si"],
        "jingle s5b direct" => &["--method", "s5b", "--no-proxy", "--protocol", "jingle"],
        "jingle s5b proxy" => &["--method", "s5b", "--no-direct", "--protocol", "jingle"],
        "jingle ibb" => &["--method", "ibb", "--protocol", "jingle"],
        _ => unreachable!(),
    };
    let mut cmd = env.skiff("alice", &alice_data);
    cmd.args(["send", "bob@localhost/bench", &file.display().to_string()]).args(route);
    if let (Some(b), "skiff ibb" | "jingle ibb") = (&env.ibb_block, contender) {
        cmd.args(["--ibb-block-size", b]);
    }
    let alice = Proc::spawn(&mut cmd)?;
    let budget = 60 + size / MIB; // generous: 1 s per MiB
    let (t_offer, _) = bob.until(budget, "the offer", |l| json(l)["type"] == "transfer_offered").await?;
    let (t_first, _) = bob
        .until(budget, "the first bytes", |l| {
            let v = json(l);
            (v["type"] == "transfer_progress" && v["bytes"].as_u64().unwrap_or(0) > 0)
                || v["type"] == "transfer_completed"
        })
        .await?;
    let (t_done, done) = bob
        .until(budget, "the completion", |l| {
            let v = json(l);
            v["type"] == "transfer_completed" || v["type"] == "transfer_failed"
        })
        .await?;
    let v = json(&done);
    if v["type"] != "transfer_completed" {
        bail!("{contender}: {done}");
    }
    let want_route = match contender {
        "skiff s5b direct" | "skiff batch s5b direct" | "jingle s5b direct" => "s5b-direct",
        "skiff s5b proxy" | "jingle s5b proxy" => "s5b-proxy",
        _ => "ibb",
    };
    let content_ok = if file.is_dir() { v["verified"] == "sha256" } else { v["sha256"] == sha };
    if v["route"] != want_route || !content_ok {
        bail!("{contender}: wrong route or content: {done}");
    }
    let receiver = bob.finish(30).await?;
    let sender = alice.finish(30).await?;
    Ok(Sample {
        contender,
        size,
        secs: t_done.duration_since(t_offer).as_secs_f64(),
        latency_ms: (size > 0).then(|| t_first.duration_since(t_offer).as_secs_f64() * 1000.0),
        sender,
        receiver,
        server_cpu_s: 0.0,
    })
}

/// Bytes in the files of `dir`, recursively.
fn folder_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        total += if e.file_type()?.is_dir() { folder_size(&e.path())? } else { e.metadata()?.len() };
    }
    Ok(total)
}

/// Batches against one file of the same total, Skiff to Skiff over SOCKS5 direct:
/// `specs` like `1000x16K,10x100M`. Returns the report's section.
async fn batch_bench(env: &Env, specs: &str, rounds: u32) -> Result<String> {
    let mut rows = Vec::new();
    for (i, spec) in specs.split(',').enumerate() {
        let (n, each) = spec.split_once('x').ok_or_else(|| anyhow!("--batches wants NxSIZE, not {spec}"))?;
        let (n, each): (u64, u64) = (n.parse()?, parse_size(each)?);
        let dir = env.fresh_dir(&format!("batch-{i}"))?.join("folder");
        std::fs::create_dir_all(&dir)?;
        for f in 0..n {
            random_file(&dir, &format!("{f:05}.bin"), each, 1000 + f);
        }
        let whole = random_file(&env.fresh_dir(&format!("whole-{i}"))?, "whole.bin", n * each, 999);
        let sha = sha256_file(&whole);
        let (mut batch, mut single, mut copies) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // The floor: the same folder copied on the same disk (no network, no sync).
            let _ = Command::new("sync").status().await;
            let copy = env.fresh_dir("copy")?.join("folder");
            let started = Instant::now();
            let status = Command::new("cp").arg("-r").arg(&dir).arg(&copy).status().await?;
            if status.success() {
                copies.push(started.elapsed().as_secs_f64());
            }
            for c in if round % 2 == 0 {
                ["skiff s5b direct", "skiff batch s5b direct"]
            } else {
                ["skiff batch s5b direct", "skiff s5b direct"]
            } {
                // What earlier runs wrote is on disk first: file systems make new
                // entries slowly while they write back.
                let _ = Command::new("sync").status().await;
                eprint!("{spec:>10} {c:<24} round {} ... ", round + 1);
                let r = if c == "skiff s5b direct" {
                    skiff_run(env, c, &whole, &sha).await
                } else {
                    skiff_run(env, c, &dir, "").await
                };
                match r {
                    Ok(s) => {
                        eprintln!("{:.1} MiB/s", s.size as f64 / MIB as f64 / s.secs);
                        if c == "skiff s5b direct" {
                            single.push(s)
                        } else {
                            batch.push(s)
                        }
                    }
                    Err(e) => eprintln!("FAILED: {e:#}"),
                }
            }
        }
        let (Some(b), Some(w)) =
            (median(&batch.iter().collect::<Vec<_>>()), median(&single.iter().collect::<Vec<_>>()))
        else {
            continue;
        };
        let rate = |s: &Sample| s.size as f64 / MIB as f64 / s.secs;
        copies.sort_by(f64::total_cmp);
        let copy = copies.get(copies.len() / 2).copied().unwrap_or(f64::NAN);
        rows.push(format!(
            "| {n} × {} | {:.1} MiB/s | {:.1} MiB/s | {:.2}× | {:.1} MiB/s | {:.2}× | {:.1} MiB | {:.1} MiB |",
            human_small(each),
            rate(&b),
            rate(&w),
            w.secs / b.secs,
            b.size as f64 / MIB as f64 / copy,
            copy / b.secs,
            b.sender.peak_rss_kib as f64 / 1024.0,
            b.receiver.peak_rss_kib as f64 / 1024.0,
        ));
        let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(&dir));
    }
    let mut s = String::from(
        "\n| batch | batch | one file of the same total | batch / one file | `cp -r` of the folder | batch / `cp -r` | batch sender peak RSS | batch receiver peak RSS |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&r);
        s.push('\n');
    }
    Ok(s)
}

fn human_small(size: u64) -> String {
    if size >= MIB {
        human(size)
    } else {
        format!("{} KiB", size >> 10)
    }
}

/// The ceiling: a plain read/write copy between two processes over loopback TCP.
async fn raw_tcp_run(env: &Env, file: &Path, sha: &str) -> Result<Sample> {
    let size = std::fs::metadata(file)?.len();
    let out = env.fresh_dir("raw")?.join("out.bin");
    let mut recv = Proc::spawn(Command::new(&env.me).args(["raw-recv", "tcp", &out.display().to_string()]))?;
    let (_, port) = recv.until(10, "the port", |l| l.starts_with("port ")).await?;
    let addr = format!("127.0.0.1:{}", port.trim_start_matches("port "));
    let mut send = Proc::spawn(Command::new(&env.me).args(["raw-send", "tcp", &addr, &file.display().to_string()]))?;
    let t0 = Instant::now();
    send.say("go").await?;
    raw_done("raw tcp copy", t0, recv, send, &out, size, sha).await
}

/// The proxy's ceiling: both ends connect to proxy65 with SOCKS5, one XMPP
/// activation, then a plain copy through it.
async fn raw_relay_run(env: &Env, activator: &skiff_engine::Client, file: &Path, sha: &str, n: u32) -> Result<Sample> {
    let size = std::fs::metadata(file)?.len();
    let out = env.fresh_dir("relay")?.join("out.bin");
    let me = activator.jid().context("activator offline")?.to_string();
    let target = "bob@localhost/relay";
    let sid = format!("bench{n}");
    let dst = dst_addr(&sid, &me, target);
    let proxy = format!("127.0.0.1:{}", env.server.proxy_port);
    let mut recv =
        Proc::spawn(Command::new(&env.me).args(["raw-recv", "socks", &proxy, &dst, &out.display().to_string()]))?;
    recv.until(10, "the receiver at the proxy", |l| l == "ready").await?;
    let mut send =
        Proc::spawn(Command::new(&env.me).args(["raw-send", "socks", &proxy, &dst, &file.display().to_string()]))?;
    send.until(10, "the sender at the proxy", |l| l == "ready").await?;
    let query = Element::new("query", skiff_proto::ns::BYTESTREAMS)
        .with_attr("sid", &sid)
        .with_child(Element::new("activate", skiff_proto::ns::BYTESTREAMS).with_text(target));
    let proxy_jid: skiff_proto::jid::Jid = env.server.proxy_jid().parse()?;
    let t0 = Instant::now();
    activator.set(Some(proxy_jid), query).await.map_err(|e| anyhow!("activation: {e}"))?;
    send.say("go").await?;
    raw_done("raw relay (proxy65)", t0, recv, send, &out, size, sha).await
}

/// The end of a raw copy started at `t0`: the receiver's last byte, both processes'
/// stats, the content check.
async fn raw_done(
    contender: &'static str,
    t0: Instant,
    mut recv: Proc,
    send: Proc,
    out: &Path,
    size: u64,
    sha: &str,
) -> Result<Sample> {
    let (t1, _) = recv.until(600, "done", |l| l.starts_with("done ")).await?;
    let receiver = recv.finish(10).await?;
    let sender = send.finish(10).await?;
    if sha256_file(out) != sha {
        bail!("{contender}: content differs");
    }
    Ok(Sample {
        contender,
        size,
        secs: t1.duration_since(t0).as_secs_f64(),
        latency_ms: None,
        sender,
        receiver,
        server_cpu_s: 0.0,
    })
}

/// slixmpp to slixmpp (Debian's python3-slixmpp) over `method` (`ibb` or `s5b` via the proxy).
async fn slix_run(env: &Env, contender: &'static str, file: &Path, sha: &str) -> Result<Sample> {
    let size = std::fs::metadata(file)?.len();
    let dl = env.fresh_dir("slixdl")?;
    let method = if contender.contains("ibb") { "ibb" } else { "s5b" };
    let mut recv =
        Proc::spawn(env.slix("bob").args(["receive", "--dir", &dl.display().to_string(), "--method", method]))?;
    recv.until(30, "online", |l| json(l)["event"] == "online").await?;
    let mut cmd = env.slix("alice");
    cmd.args(["send", "--to", "bob@localhost/slix", "--file", &file.display().to_string(), "--method", method]);
    if method == "s5b" {
        cmd.args(["--proxy", &env.server.proxy_jid()]);
    }
    cmd.args(["--timeout", "3600"]);
    let send = Proc::spawn(&mut cmd)?;
    let budget = 120 + size / MIB * 2;
    let (t0, _) = recv.until(budget, "the offer", |l| json(l)["event"] == "offer").await?;
    let (t1, done) = recv
        .until(budget, "the completion", |l| {
            let v = json(l);
            v["event"] == "completed" || v["event"] == "failed"
        })
        .await?;
    if json(&done)["event"] != "completed" {
        bail!("{contender}: {done}");
    }
    let receiver_stats = *recv.stats.lock().unwrap();
    drop(recv);
    let sender = send.finish(60).await.unwrap_or_default();
    let got = std::fs::read_dir(&dl)?.filter_map(|e| e.ok()).map(|e| e.path()).next().context("no file")?;
    if sha256_file(&got) != sha {
        bail!("{contender}: content differs");
    }
    Ok(Sample {
        contender,
        size,
        secs: t1.duration_since(t0).as_secs_f64(),
        latency_ms: None,
        sender,
        receiver: receiver_stats,
        server_cpu_s: 0.0,
    })
}

// ---------------------------------------------------------------- the run

/// Prosody's CPU seconds so far.
fn server_cpu(env: &Env) -> f64 {
    env.server.pid().and_then(cpu_seconds).unwrap_or(0.0)
}

fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (n, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], MIB),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    Ok(n.parse::<u64>().with_context(|| format!("size {s}"))? * mult)
}

fn human(size: u64) -> String {
    if size >= 1 << 30 {
        format!("{} GiB", size >> 30)
    } else {
        format!("{} MiB", size >> 20)
    }
}

async fn bench(args: &[String]) -> Result<()> {
    let mut opt: BTreeMap<&str, String> = BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = a.strip_prefix("--").ok_or_else(|| anyhow!("unknown argument {a}"))?;
        opt.insert(
            match key {
                "sizes" => "sizes",
                "ibb-max" => "ibb-max",
                "slix-max" => "slix-max",
                "rounds" => "rounds",
                "write" => "write",
                "only" => "only",
                "ibb-block" => "ibb-block",
                "batches" => "batches",
                "download-dir" => "download-dir",
                _ => bail!("unknown option --{key}"),
            },
            it.next().cloned().ok_or_else(|| anyhow!("--{key} needs a value"))?,
        );
    }
    let sizes: Vec<u64> = opt
        .get("sizes")
        .map(String::as_str)
        .unwrap_or("10M,200M,1G")
        .split(',')
        .filter(|s| *s != "none")
        .map(parse_size)
        .collect::<Result<_>>()?;
    let ibb_max = parse_size(opt.get("ibb-max").map(String::as_str).unwrap_or("200M"))?;
    let slix_max = parse_size(opt.get("slix-max").map(String::as_str).unwrap_or("10M"))?;
    let rounds: u32 = opt.get("rounds").map(|r| r.parse()).transpose()?.unwrap_or(1);
    let only: Option<Vec<String>> = opt.get("only").map(|o| o.split(',').map(str::to_owned).collect());

    let me = std::env::current_exe()?;
    let skiff = me.parent().context("exe dir")?.join("skiff");
    if !skiff.exists() {
        bail!("{} is missing: build it with the benchmark (bench/run.sh does)", skiff.display());
    }
    let server = Prosody::start(ProsodyOptions::default())?;
    let env = Env {
        server,
        ibb_block: opt.get("ibb-block").cloned(),
        skiff,
        me,
        work: tempfile::Builder::new().prefix("skiff-bench-").tempdir()?,
        downloads: match opt.get("download-dir") {
            Some(dir) => Some(tempfile::Builder::new().prefix("skiff-bench-dl-").tempdir_in(dir)?),
            None => None,
        },
    };
    let activator = skiff_engine::Client::start(skiff_tests::peer::account(&env.server, "alice", "relay"));
    activator.wait_online().await.map_err(|e| anyhow!("sign-in: {e}"))?;

    let files_dir = env.fresh_dir("files")?;
    let mut samples: Vec<Sample> = Vec::new();
    let mut n = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let file = random_file(&files_dir, &format!("bench-{size}.bin"), size, 100 + i as u64);
        let sha = sha256_file(&file);
        let mut contenders: Vec<&'static str> = vec![
            "raw tcp copy",
            "skiff s5b direct",
            "jingle s5b direct",
            "raw relay (proxy65)",
            "skiff s5b proxy",
            "jingle s5b proxy",
        ];
        if size <= ibb_max {
            contenders.extend(["skiff ibb", "jingle ibb"]);
        }
        if size <= slix_max {
            contenders.extend(["slixmpp ibb", "slixmpp s5b proxy"]);
        }
        if let Some(o) = &only {
            contenders.retain(|c| o.iter().any(|x| c.contains(x.as_str())));
        }
        for round in 0..rounds {
            // Alternate: every other round runs the list backwards.
            let order: Vec<&'static str> =
                if round % 2 == 0 { contenders.clone() } else { contenders.iter().rev().copied().collect() };
            for c in order {
                n += 1;
                eprint!("{:>8} {c:<22} round {} ... ", human(size), round + 1);
                let server_before = server_cpu(&env);
                let r = match c {
                    "raw tcp copy" => raw_tcp_run(&env, &file, &sha).await,
                    "raw relay (proxy65)" => raw_relay_run(&env, &activator, &file, &sha, n).await,
                    c if c.starts_with("skiff") || c.starts_with("jingle") => skiff_run(&env, c, &file, &sha).await,
                    c => slix_run(&env, c, &file, &sha).await,
                };
                let r = r.map(|mut s| {
                    s.server_cpu_s = server_cpu(&env) - server_before;
                    s
                });
                match r {
                    Ok(s) => {
                        eprintln!("{:.1} MiB/s", s.size as f64 / MIB as f64 / s.secs);
                        samples.push(s);
                    }
                    Err(e) => eprintln!("FAILED: {e:#}"),
                }
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    let mut report = report(&samples, &sizes, rounds, args);
    if let Some(specs) = opt.get("batches") {
        report.push_str(&batch_bench(&env, specs, rounds).await?);
    }
    println!("{report}");
    if let Some(path) = opt.get("write") {
        std::fs::write(path, &report).with_context(|| format!("write {path}"))?;
        eprintln!("written to {path}");
    }
    Ok(())
}

/// Median of the samples of one contender at one size.
fn median(samples: &[&Sample]) -> Option<Sample> {
    let mut v: Vec<&Sample> = samples.to_vec();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    Some(v[v.len() / 2].clone())
}

fn report(samples: &[Sample], sizes: &[u64], rounds: u32, args: &[String]) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let prosody = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "prosody"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut s = String::new();
    let mut line = |t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    line(format!(
        "Machine: {cpu}, {cores} cores, {:.0} GiB RAM, Linux {}; Prosody {prosody} on 127.0.0.1 (Nagle off); {rounds} round(s), median shown.",
        mem as f64 / (1 << 20) as f64,
        kernel.trim()
    ));
    line(format!("Command: `bench/run.sh {}`", args.join(" ")));
    line(String::new());
    line("| size | contender | MiB/s | ratio | offer → first byte | sender CPU s/GiB | receiver CPU s/GiB | server CPU s/GiB | sender peak RSS | receiver peak RSS |".into());
    line("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|".into());
    for &size in sizes {
        let of = |c: &str| median(&samples.iter().filter(|x| x.size == size && x.contender == c).collect::<Vec<_>>());
        let ceiling = |c: &str| match c {
            "skiff s5b direct" | "jingle s5b direct" => Some(("raw tcp copy", of("raw tcp copy"))),
            "skiff s5b proxy" | "jingle s5b proxy" => Some(("raw relay (proxy65)", of("raw relay (proxy65)"))),
            "skiff ibb" | "jingle ibb" => Some(("slixmpp ibb", of("slixmpp ibb"))),
            "slixmpp s5b proxy" => Some(("raw relay (proxy65)", of("raw relay (proxy65)"))),
            _ => None,
        };
        for c in [
            "raw tcp copy",
            "skiff s5b direct",
            "jingle s5b direct",
            "raw relay (proxy65)",
            "skiff s5b proxy",
            "jingle s5b proxy",
            "skiff ibb",
            "jingle ibb",
            "slixmpp ibb",
            "slixmpp s5b proxy",
        ] {
            let Some(m) = of(c) else { continue };
            let rate = size as f64 / MIB as f64 / m.secs;
            let ratio = match ceiling(c) {
                Some((name, Some(base))) => format!("{:.2}× {}", base.secs / m.secs, short(name)),
                _ => "—".into(),
            };
            let gib = size as f64 / (1u64 << 30) as f64;
            line(format!(
                "| {} | {c} | {rate:.1} | {ratio} | {} | {:.2} | {:.2} | {:.2} | {:.1} MiB | {:.1} MiB |",
                human(size),
                m.latency_ms.map(|l| format!("{l:.0} ms")).unwrap_or_else(|| "—".into()),
                m.sender.cpu_s / gib,
                m.receiver.cpu_s / gib,
                m.server_cpu_s / gib,
                m.sender.peak_rss_kib as f64 / 1024.0,
                m.receiver.peak_rss_kib as f64 / 1024.0,
            ));
        }
    }
    s
}

fn short(name: &str) -> &str {
    match name {
        "raw tcp copy" => "raw TCP",
        "raw relay (proxy65)" => "raw relay",
        "slixmpp ibb" => "slixmpp IBB",
        n => n,
    }
}
