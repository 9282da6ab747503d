//! The app's lifecycle, with the real binary in a private X display: the demo's
//! Prosody ends with the app however the app ends (SIGTERM, SIGINT, window close,
//! SIGKILL via its watchdog), one left over from an earlier run is stopped at the next
//! start; a second launch hands its files to the first and exits; a damaged history is
//! moved aside and the app still starts.

use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use skiff_tests::desktop::Desktop;

/// The pids of the Prosody processes running the demo configuration under `home`.
fn demo_servers(desktop: &Desktop) -> Vec<i32> {
    let config = desktop.dir().join("data/skiff-demo/prosody.cfg.lua");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if !zombie && cmdline.split(|b| *b == 0).any(|a| a == config.as_os_str().as_encoded_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

fn wait_until(secs: u64, what: &str, log: &dyn Fn() -> String, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(secs), "no {what} within {secs} s; app log:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Starts the app in demo mode and waits until alice is signed in to the demo server.
fn start_demo(desktop: &Desktop) -> (Child, Vec<i32>) {
    let app = desktop.spawn_app(true).unwrap();
    let log = || desktop.spawned_app_log();
    wait_until(60, "demo sign-in", &log, || log().contains("demo: alice signed in"));
    let servers = demo_servers(desktop);
    assert_eq!(servers.len(), 1, "one demo server: {servers:?}");
    (app, servers)
}

fn ends_with_the_app(desktop: &Desktop, signal: Signal) -> Duration {
    let (mut app, servers) = start_demo(desktop);
    kill(Pid::from_raw(app.id() as i32), signal).unwrap();
    let log = || desktop.spawned_app_log();
    wait_until(20, "app exit", &log, || app.try_wait().unwrap().is_some());
    let took = wait_until(10, "end of the demo server", &log, || demo_servers(desktop).is_empty());
    assert!(servers.iter().all(|p| !demo_servers(desktop).contains(p)));
    // Stopped by the app itself when it had the chance (not by the watchdog).
    assert_eq!(log().contains("demo: stopped"), signal != Signal::SIGKILL, "{}", log());
    took
}

#[test]
fn the_demo_server_ends_with_the_app_however_it_ends() {
    let desktop = Desktop::start().unwrap();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGKILL] {
        let took = ends_with_the_app(&desktop, signal);
        println!("{signal}: the demo server was gone {} ms after the app", took.as_millis());
    }
}

#[test]
fn the_demo_server_ends_when_the_window_is_closed() {
    let desktop = Desktop::start().unwrap();
    let (mut app, _) = start_demo(&desktop);
    // The window manager's close button: WM_DELETE_WINDOW to the app's windows.
    let search = std::process::Command::new("xdotool")
        .args(["search", "--pid", &app.id().to_string()])
        .env("DISPLAY", &desktop.display)
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&search.stdout).lines().map(str::to_owned).collect();
    assert!(!ids.is_empty(), "no window of the app");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/close_window.py");
    let closed = std::process::Command::new("python3").arg(script).args(&ids).env("DISPLAY", &desktop.display).status();
    assert!(closed.unwrap().success());
    let log = || desktop.spawned_app_log();
    wait_until(20, "app exit", &log, || app.try_wait().unwrap().is_some());
    let took = wait_until(10, "end of the demo server", &log, || demo_servers(&desktop).is_empty());
    assert!(log().contains("demo: stopped"), "{}", log());
    println!("window closed: the demo server was gone {} ms after the app", took.as_millis());
}

#[test]
fn a_demo_server_left_running_is_stopped_at_the_next_start() {
    let desktop = Desktop::start().unwrap();
    let (mut app, servers) = start_demo(&desktop);
    // A crash that also took the watchdog: kill both, leave the server running.
    // (Only this app's watchdog: other tests may run at the same time.)
    let pattern = format!("skiff-prosody-watchdog {} ", app.id());
    let watchdogs = std::process::Command::new("pkill").args(["-KILL", "-f", &pattern]).status();
    assert!(watchdogs.unwrap().success());
    kill(Pid::from_raw(app.id() as i32), Signal::SIGKILL).unwrap();
    app.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(demo_servers(&desktop), servers, "the server outlived the app");

    // The next start stops it and runs its own.
    let (mut app, now) = start_demo(&desktop);
    assert_ne!(now, servers);
    assert!(servers.iter().all(|p| !now.contains(p)), "the old server still runs");
    assert!(desktop.spawned_app_log().contains("left over by an earlier run"));
    kill(Pid::from_raw(app.id() as i32), Signal::SIGTERM).unwrap();
    app.wait().unwrap();
    let log = || desktop.spawned_app_log();
    wait_until(10, "end of the demo server", &log, || demo_servers(&desktop).is_empty());
}

#[test]
fn a_second_launch_hands_its_files_to_the_first_and_exits() {
    let desktop = Desktop::start().unwrap();
    let mut first = desktop.spawn_app(false).unwrap();
    let log = || desktop.spawned_app_log();
    wait_until(30, "the first instance", &log, || desktop.bus_name_owned("im.skiff.desktop.SingleInstance"));
    let files = tempfile::tempdir().unwrap();
    let photo = files.path().join("photo.jpg");
    std::fs::write(&photo, b"jpeg").unwrap();
    let photo_arg = photo.display().to_string();
    let mut second =
        desktop.spawn_app_with(false, &[&photo_arg, "--not-a-file", "/no/such/file"], "second.log").unwrap();
    let took = wait_until(20, "the second launch to exit", &log, || second.try_wait().unwrap().is_some());
    let status = second.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the second launch ended with {status}:\n{}", desktop.log_named("second.log"));
    wait_until(10, "the hand-over", &log, || {
        log().contains("another launch: focusing the window; it hands over 1 file(s)")
    });
    assert!(first.try_wait().unwrap().is_none(), "the first instance still runs");
    println!("the second launch handed over and exited in {} ms", took.as_millis());
    kill(Pid::from_raw(first.id() as i32), Signal::SIGTERM).unwrap();
    first.wait().unwrap();
}

#[test]
fn a_damaged_history_is_moved_aside_and_the_app_starts() {
    let desktop = Desktop::start().unwrap();
    let history = desktop.data_dir().join("history.sqlite3");
    std::fs::write(&history, vec![0x5a; 8192]).unwrap();
    let mut app = desktop.spawn_app(false).unwrap();
    let log = || desktop.spawned_app_log();
    wait_until(30, "the app up", &log, || desktop.bus_name_owned("im.skiff.desktop.SingleInstance"));
    assert!(app.try_wait().unwrap().is_none(), "the app did not start: {}", log());
    let moved: Vec<_> = std::fs::read_dir(desktop.data_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("history.sqlite3.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1, "{}", log());
    assert_eq!(std::fs::read(moved[0].path()).unwrap(), vec![0x5a; 8192]);
    // The user is told (a desktop notification) where the old history went.
    let told = wait_until(10, "the notification", &log, || {
        desktop.notifications().iter().any(|n| n.summary.contains("new transfer history"))
    });
    let _ = told;
    kill(Pid::from_raw(app.id() as i32), Signal::SIGTERM).unwrap();
    app.wait().unwrap();
}
