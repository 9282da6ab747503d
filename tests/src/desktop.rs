//! The desktop app under test: a private X display (Xvfb), a private session bus
//! with a notification daemon (dunst), and `tauri-driver` (WebDriver in front of
//! WebKitWebDriver) that launches `skiff-desktop` in it. Nothing here touches the
//! machine's own desktop, bus or data: HOME and the XDG folders point into a
//! temporary directory.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use skiff_tests::desktop::Desktop;
//! let desktop = Desktop::start()?;
//! let app = desktop.launch().await?;
//! app.click("signin-submit").await?;
//! # Ok(()) }
//! ```
//!
//! Notifications: dunst runs every notification through a script that appends it
//! (summary, body) to a log ([`Desktop::notifications`]); [`Desktop::invoke_action`]
//! opens dunst's context menu, whose "dmenu" is a script that picks the wanted
//! action, exactly as a user picking it from the menu would.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::prosody::free_port;

/// The `skiff-desktop` binary beside the test binary (built by `cargo build --workspace --bins`).
pub fn desktop_binary() -> PathBuf {
    crate::cli::workspace_binary("skiff-desktop", "skiff-desktop")
}

/// One notification as dunst received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub app: String,
    pub summary: String,
    pub body: String,
}

/// A child process in its own process group; the group is killed on drop.
#[derive(Debug)]
struct Group(Child);

impl Group {
    fn spawn(cmd: &mut Command, what: &str) -> Result<Group> {
        cmd.process_group(0);
        let child =
            cmd.spawn().with_context(|| format!("cannot start {what} (scripts/install-deps.sh installs it)"))?;
        Ok(Group(child))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(self.0.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Xvfb + D-Bus + dunst + tauri-driver, torn down on drop.
#[derive(Debug)]
pub struct Desktop {
    /// `HOME` of the app: downloads land in `home/Downloads`.
    pub home: PathBuf,
    /// `DISPLAY`, e.g. `:93`.
    pub display: String,
    /// The private session bus address.
    pub bus: String,
    driver_port: u16,
    notify_log: PathBuf,
    dmenu_choice: PathBuf,
    dmenu_seen: PathBuf,
    // Dropped in this order: the driver (and the app) first, the display last.
    driver: Option<Group>,
    keyring: Option<Group>,
    dunst: Option<Group>,
    dbus: Option<Group>,
    xvfb: Option<Group>,
    dir: TempDir,
}

impl Desktop {
    /// Starts the display, the bus, dunst and tauri-driver (at most ~20 s).
    pub fn start() -> Result<Desktop> {
        let dir = tempfile::Builder::new().prefix("skiff-desktop-").tempdir()?;
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        for d in ["home", "home/Downloads", "config", "data", "cache", "runtime", "bin"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        set_mode_700(&root.join("runtime"))?;
        // What the app opens (a file, a folder) is written down, not shown: a stand-in
        // for xdg-open first on the app's PATH ([`Desktop::opened`]).
        let opener = root.join("bin/xdg-open");
        std::fs::write(
            &opener,
            format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", root.join("opened.log").display()),
        )?;
        std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

        // X display: Xvfb picks a free number and writes it to fd 1.
        let mut xcmd = Command::new("Xvfb");
        xcmd.args(["-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(root.join("xvfb.log"))?);
        let mut xvfb = Group::spawn(&mut xcmd, "Xvfb")?;
        let number = read_first_line(xvfb.0.stdout.take().expect("piped"), Duration::from_secs(15), "Xvfb's display")?;
        let display = format!(":{}", number.trim());

        // Session bus, without the system's activatable services: what runs on it is
        // what the test starts (no keyring unless `start_keyring`, as on a desktop
        // without one; the default config would activate gnome-keyring by itself).
        std::fs::create_dir_all(root.join("dbus-services"))?;
        let bus_conf = root.join("bus.conf");
        std::fs::write(
            &bus_conf,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig>\n  <type>session</type>\n  <keep_umask/>\n  <listen>unix:tmpdir=/tmp</listen>\n  \
                 <servicedir>{}</servicedir>\n  <policy context=\"default\">\n    \
                 <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n    \
                 <allow own=\"*\"/>\n  </policy>\n</busconfig>\n",
                root.join("dbus-services").display()
            ),
        )?;
        let mut dcmd = Command::new("dbus-daemon");
        dcmd.arg(format!("--config-file={}", bus_conf.display()))
            .args(["--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", root.join("bus").display()))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(root.join("dbus.log"))?);
        let mut dbus = Group::spawn(&mut dcmd, "dbus-daemon")?;
        let bus = read_first_line(dbus.0.stdout.take().expect("piped"), Duration::from_secs(10), "the bus address")?
            .trim()
            .to_owned();

        // dunst: logs every notification, and a "dmenu" that picks the action named
        // in `dmenu_choice` (and records the menu it was offered).
        let notify_log = root.join("notifications.log");
        let dmenu_choice = root.join("dmenu-choice");
        let dmenu_seen = root.join("dmenu-seen");
        let log_script = root.join("log-notification.sh");
        std::fs::write(
            &log_script,
            format!(
                "#!/bin/sh\n# dunst calls: appname summary body icon urgency\nprintf '%s\\037%s\\037%s\\036' \"$1\" \"$2\" \"$3\" >> '{}'\n",
                notify_log.display()
            ),
        )?;
        let dmenu = root.join("dmenu.sh");
        std::fs::write(
            &dmenu,
            format!(
                "#!/bin/sh\ncat > '{seen}'\nwant=$(cat '{choice}')\ngrep -F \",$want]\" '{seen}' | sort -t '[' -k 2 -n -r | head -n 1\n",
                seen = dmenu_seen.display(),
                choice = dmenu_choice.display()
            ),
        )?;
        set_executable(&log_script)?;
        set_executable(&dmenu)?;
        let dunstrc = root.join("dunstrc");
        std::fs::write(
            &dunstrc,
            format!(
                "[global]\n    dmenu = {}\n    sticky_history = yes\n    origin = bottom-right\n    offset = 8x8\n    width = 330\n\n[log_all]\n    appname = \"*\"\n    script = {}\n",
                dmenu.display(),
                log_script.display()
            ),
        )?;
        let env = Env { display: &display, bus: &bus, root: &root };
        let mut ucmd = Command::new("dunst");
        ucmd.args(["-config"])
            .arg(&dunstrc)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("dunst.log"))?);
        env.apply(&mut ucmd);
        let dunst = Group::spawn(&mut ucmd, "dunst")?;
        wait_until(Duration::from_secs(10), "dunst on the session bus", || {
            let mut c = Command::new("dunstctl");
            c.args(["count", "displayed"]).stdout(Stdio::null()).stderr(Stdio::null());
            env.apply(&mut c);
            c.status().map(|s| s.success()).unwrap_or(false)
        })?;

        // Tests stay on loopback: the app's streamhost offers 127.0.0.1 only, from its
        // first start (the UI can change it later; the setting is applied at once).
        let data = root.join("data/skiff");
        std::fs::create_dir_all(&data)?;
        skiff_engine::store::Store::open(&data.join("history.sqlite3"))?
            .set_setting("desktop.settings", r#"{"streamhostAddrs":["127.0.0.1"]}"#)?;

        // tauri-driver on free ports; the app inherits its environment.
        let driver_port = free_port();
        let native_port = free_port();
        let mut tcmd = Command::new(tauri_driver_path());
        tcmd.args(["--port", &driver_port.to_string(), "--native-port", &native_port.to_string()])
            .stdout(std::fs::File::create(root.join("app.log"))?)
            .stderr(std::fs::File::create(root.join("app.err.log"))?);
        env.apply(&mut tcmd);
        let driver = Group::spawn(&mut tcmd, "tauri-driver")?;
        wait_until(Duration::from_secs(15), "tauri-driver", || {
            TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, driver_port)),
                Duration::from_millis(200),
            )
            .is_ok()
        })?;

        Ok(Desktop {
            home,
            display,
            bus,
            driver_port,
            notify_log,
            dmenu_choice,
            dmenu_seen,
            driver: Some(driver),
            keyring: None,
            dunst: Some(dunst),
            dbus: Some(dbus),
            xvfb: Some(xvfb),
            dir,
        })
    }

    /// The temporary root (logs: `app.err.log`, `dunst.log`, ...).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the app keeps its history and settings.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data/skiff")
    }

    /// The default download folder of the app.
    pub fn downloads(&self) -> PathBuf {
        self.home.join("Downloads")
    }

    /// Launches the app (a new WebDriver session) and waits until the page is ready.
    pub async fn launch(&self) -> Result<App> {
        let mut caps = serde_json::Map::new();
        caps.insert("tauri:options".into(), json!({ "application": desktop_binary() }));
        // tauri-driver accepts connections before its WebKitWebDriver answers: a
        // session request that gets no answer is tried again, a few times.
        let mut attempt = 0;
        let client = loop {
            attempt += 1;
            let result = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", self.driver_port))
                .await;
            match result {
                Ok(c) => break c,
                Err(e) if attempt < 4 && e.to_string().contains("did not respond") => {
                    tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                }
                Err(e) => return Err(anyhow!("WebDriver session: {e} (app log: {})", self.app_log_tail())),
            }
        };
        let app = App { client };
        app.wait_js("return document.body.dataset.ready === '1'", 30, "the page to be ready").await?;
        Ok(app)
    }

    /// Every notification shown so far, oldest first.
    /// What the app asked the desktop to open (files, folders), oldest first.
    pub fn opened(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir().join("opened.log")).unwrap_or_default();
        log.lines().map(str::to_owned).collect()
    }

    /// Waits until the app has asked to open `target`.
    pub async fn wait_opened(&self, target: &Path, secs: u64) -> Result<()> {
        let want = target.display().to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if self.opened().contains(&want) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(anyhow!("the app did not open {want} within {secs} s (opened: {:?})", self.opened()))
    }

    pub fn notifications(&self) -> Vec<Notification> {
        let text = std::fs::read_to_string(&self.notify_log).unwrap_or_default();
        text.split('\x1e')
            .filter(|r| !r.is_empty())
            .map(|r| {
                let mut f = r.split('\x1f').map(str::to_owned);
                Notification {
                    app: f.next().unwrap_or_default(),
                    summary: f.next().unwrap_or_default(),
                    body: f.next().unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Waits for a notification matching `pred`.
    pub async fn wait_notification(
        &self,
        secs: u64,
        what: &str,
        pred: impl Fn(&Notification) -> bool,
    ) -> Result<Notification> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(n) = self.notifications().into_iter().find(&pred) {
                return Ok(n);
            }
            if Instant::now() > deadline {
                bail!("no notification {what} within {secs} s; seen: {:?}", self.notifications());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Picks `action` (e.g. `accept`) of the newest notification that has it from
    /// dunst's context menu. Returns the menu dunst offered.
    pub fn invoke_action(&self, action: &str) -> Result<String> {
        std::fs::write(&self.dmenu_choice, action)?;
        let _ = std::fs::remove_file(&self.dmenu_seen);
        let mut c = Command::new("dunstctl");
        c.arg("context");
        Env { display: &self.display, bus: &self.bus, root: self.dir.path() }.apply(&mut c);
        let out = c.output().context("dunstctl context")?;
        if !out.status.success() {
            bail!("dunstctl context failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        // dunst runs the menu after dunstctl returns.
        let mut menu = String::new();
        let _ = wait_until(Duration::from_secs(5), "dunst's menu", || {
            menu = std::fs::read_to_string(&self.dmenu_seen).unwrap_or_default();
            menu.contains(&format!(",{action}]"))
        });
        if !menu.contains(&format!(",{action}]")) {
            bail!("dunst's menu has no {action:?} action: {menu:?}");
        }
        Ok(menu)
    }

    /// A PNG of the app's window as the X server shows it (WebKitWebDriver's own
    /// screenshot hangs on a relaunched app).
    /// With `whole_screen`, the notification beside the window is in the picture too.
    pub async fn screenshot(&self, path: &Path, whole_screen: bool) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(600)).await; // let transitions settle
        if whole_screen {
            let mut import = Command::new("import");
            import.args(["-window", "root"]).arg(path);
            Env { display: &self.display, bus: &self.bus, root: self.dir.path() }.apply(&mut import);
            if !import.status().context("import (ImageMagick)")?.success() {
                bail!("import failed for the screen");
            }
            return Ok(());
        }
        let env = Env { display: &self.display, bus: &self.bus, root: self.dir.path() };
        let mut find = Command::new("xdotool");
        find.args(["search", "--onlyvisible", "--name", "^Skiff$"]);
        env.apply(&mut find);
        let out = find.output().context("xdotool")?;
        let ids = String::from_utf8_lossy(&out.stdout);
        let id = ids.lines().last().ok_or_else(|| anyhow!("no Skiff window on {}", self.display))?.trim().to_owned();
        let mut import = Command::new("import");
        import.args(["-window", &id]).arg(path);
        env.apply(&mut import);
        let st = import.status().context("import (ImageMagick)")?;
        if !st.success() {
            bail!("import failed for window {id}");
        }
        Ok(())
    }

    /// Starts an OS keyring on the private session bus: gnome-keyring-daemon's Secret
    /// Service, its login keyring unlocked (as a desktop session does at login).
    /// Without it the bus has no keyring service at all.
    pub fn start_keyring(&mut self) -> Result<()> {
        let mut cmd = Command::new("gnome-keyring-daemon");
        cmd.args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("keyring.log"))?);
        Env { display: &self.display, bus: &self.bus, root: self.dir.path() }.apply(&mut cmd);
        let mut group = Group::spawn(&mut cmd, "gnome-keyring-daemon")?;
        {
            use std::io::Write;
            let mut stdin = group.0.stdin.take().expect("piped");
            stdin.write_all(b"login-keyring-password")?;
        }
        self.keyring = Some(group);
        wait_until(Duration::from_secs(10), "the Secret Service on the session bus", || {
            self.bus_name_owned("org.freedesktop.secrets")
        })
    }

    /// Whether `name` is owned on the private session bus.
    pub fn bus_name_owned(&self, name: &str) -> bool {
        let mut c = Command::new("dbus-send");
        c.args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{name}"),
        ]);
        Env { display: &self.display, bus: &self.bus, root: self.dir.path() }.apply(&mut c);
        c.output().map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true")).unwrap_or(false)
    }

    /// What the keyring holds for Skiff and `account` (`secret-tool lookup`).
    pub fn keyring_lookup(&self, account: &str) -> Option<String> {
        let mut c = Command::new("secret-tool");
        c.args(["lookup", "service", "skiff", "username", account]);
        Env { display: &self.display, bus: &self.bus, root: self.dir.path() }.apply(&mut c);
        let out = c.output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    /// Runs the app directly (no WebDriver) in this desktop, with the demo when
    /// `demo`; its output goes to `app-direct.log` in [`Desktop::dir`].
    pub fn spawn_app(&self, demo: bool) -> Result<std::process::Child> {
        self.spawn_app_with(demo, &[], "app-direct.log")
    }

    /// [`Desktop::spawn_app`] with command-line arguments, its output to `log_name`.
    pub fn spawn_app_with(&self, demo: bool, args: &[&str], log_name: &str) -> Result<std::process::Child> {
        let log = std::fs::File::create(self.dir.path().join(log_name))?;
        let mut cmd = Command::new(desktop_binary());
        cmd.args(args);
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        Env { display: &self.display, bus: &self.bus, root: self.dir.path() }.apply(&mut cmd);
        if demo {
            cmd.env_remove("SKIFF_NO_DEMO");
        }
        Ok(cmd.spawn()?)
    }

    /// What the app started by [`Desktop::spawn_app`] wrote so far.
    pub fn spawned_app_log(&self) -> String {
        self.log_named("app-direct.log")
    }

    /// What an app started with [`Desktop::spawn_app_with`] wrote to `log_name`.
    pub fn log_named(&self, log_name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(log_name)).unwrap_or_default()
    }

    /// The end of the app's stderr (for failure messages).
    pub fn app_log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("app.err.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        // Explicit order: the app before the services it talks to.
        self.driver.take();
        self.keyring.take();
        self.dunst.take();
        self.dbus.take();
        self.xvfb.take();
    }
}

/// The environment every process of the private desktop gets.
struct Env<'a> {
    display: &'a str,
    bus: &'a str,
    root: &'a Path,
}

impl Env<'_> {
    fn apply(&self, cmd: &mut Command) {
        let r = self.root;
        cmd.env("DISPLAY", self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus)
            .env("HOME", r.join("home"))
            .env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_DATA_HOME", r.join("data"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("XDG_RUNTIME_DIR", r.join("runtime"))
            .env("PATH", format!("{}:{}", r.join("bin").display(), std::env::var("PATH").unwrap_or_default()))
            .env("SKIFF_NO_DEMO", "1")
            .env("SKIFF_LOG", "info")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("SKIFF_DATA_DIR")
            // WebKit's GPU paths are not there under Xvfb.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1");
    }
}

/// A running app, driven over WebDriver. Elements are found by `data-testid`.
#[derive(Debug)]
pub struct App {
    pub client: Client,
}

/// Longest a single WebDriver command may take before the test calls it hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one WebDriver command with [`COMMAND_TIMEOUT`].
async fn within<T, E: std::fmt::Display>(what: &str, f: impl std::future::Future<Output = Result<T, E>>) -> Result<T> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow!("{what}: no answer from the WebDriver within {COMMAND_TIMEOUT:?}")),
    }
}

fn by_testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

impl App {
    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        within(&format!("script\n{script}\n"), self.client.execute(script, args)).await
    }

    /// Polls `script` until it returns something truthy (that value is returned).
    pub async fn wait_js(&self, script: &str, secs: u64, what: &str) -> Result<Value> {
        self.wait_js_args(script, vec![], secs, what).await
    }

    pub async fn wait_js_args(&self, script: &str, args: Vec<Value>, secs: u64, what: &str) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.js(script, args.clone()).await;
            match &v {
                Ok(v) if truthy(v) => return Ok(v.clone()),
                _ if Instant::now() > deadline => {
                    bail!("waited {secs} s for {what}; last: {v:?}");
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until the element with `testid` exists and is displayed.
    pub async fn wait_shown(&self, testid: &str, secs: u64) -> Result<()> {
        self.wait_js_args(
            "const e = document.querySelector(arguments[0]); return !!e && e.checkVisibility();",
            vec![json!(by_testid(testid))],
            secs,
            &format!("{testid} to be shown"),
        )
        .await
        .map(|_| ())
    }

    /// Waits until the element with `testid` is gone or not displayed.
    pub async fn wait_hidden(&self, testid: &str, secs: u64) -> Result<()> {
        self.wait_js_args(
            "const e = document.querySelector(arguments[0]); return !e || !e.checkVisibility();",
            vec![json!(by_testid(testid))],
            secs,
            &format!("{testid} to be hidden"),
        )
        .await
        .map(|_| ())
    }

    async fn find(&self, testid: &str) -> Result<fantoccini::elements::Element> {
        within(&format!("find {testid}"), self.client.find(Locator::Css(&by_testid(testid)))).await
    }

    /// A real click (WebDriver pointer input) on the element.
    pub async fn click(&self, testid: &str) -> Result<()> {
        within(&format!("click {testid}"), self.find(testid).await?.click()).await?;
        Ok(())
    }

    /// A real click on the element matching the CSS selector.
    pub async fn click_css(&self, css: &str) -> Result<()> {
        let e = within(&format!("find {css}"), self.client.find(Locator::Css(css))).await?;
        within(&format!("click {css}"), e.click()).await?;
        Ok(())
    }

    /// Clears the field and types `text` into it (real key events).
    pub async fn type_into(&self, testid: &str, text: &str) -> Result<()> {
        let e = self.find(testid).await?;
        // (WebKitWebDriver's Element Clear fails on some empty fields: clear in the page.)
        self.js(
            "const e = document.querySelector(arguments[0]); if (e.value !== '') { e.value = ''; e.dispatchEvent(new Event('input', { bubbles: true })); } return true;",
            vec![json!(by_testid(testid))],
        )
        .await?;
        within(&format!("type into {testid}"), e.send_keys(text)).await?;
        Ok(())
    }

    /// Chooses `value` in a `<select>`.
    pub async fn select(&self, testid: &str, value: &str) -> Result<()> {
        self.find(testid)
            .await?
            .select_by_value(value)
            .await
            .map_err(|e| anyhow!("select {value} in {testid}: {e}"))?;
        Ok(())
    }

    /// The visible text of the element.
    pub async fn text(&self, testid: &str) -> Result<String> {
        within(&format!("text of {testid}"), self.find(testid).await?.text()).await
    }

    /// The drop of files from a file manager: the shell's drag-and-drop events at the
    /// centre of the element (in physical pixels, as the shell reports them).
    pub async fn drop_files(&self, testid: &str, paths: &[PathBuf]) -> Result<()> {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        self.js(
            r#"const [sel, paths] = [arguments[0], arguments[1]];
               const r = document.querySelector(sel).getBoundingClientRect();
               const k = window.devicePixelRatio || 1;
               const position = { x: Math.round((r.left + r.width / 2) * k), y: Math.round((r.top + r.height / 2) * k) };
               const emit = (event, payload) => window.__TAURI_INTERNALS__.invoke('plugin:event|emit', { event, payload });
               return (async () => {
                 await emit('tauri://drag-enter', { paths, position });
                 await emit('tauri://drag-over', { position });
                 await emit('tauri://drag-drop', { paths, position });
                 return true;
               })();"#,
            vec![json!(by_testid(testid)), json!(paths)],
        )
        .await?;
        Ok(())
    }

    /// Ends the session (the app quits).
    pub async fn close(self) -> Result<()> {
        within("end the session", self.client.close()).await?;
        Ok(())
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn tauri_driver_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    match cargo_home.map(|c| c.join("bin/tauri-driver")) {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("tauri-driver"),
    }
}

fn read_first_line(out: std::process::ChildStdout, timeout: Duration, what: &str) -> Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut r = BufReader::new(out);
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the writer never blocks on a full pipe.
        let mut sink = String::new();
        while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let line = rx.recv_timeout(timeout).map_err(|_| anyhow!("no {what} within {timeout:?}"))?;
    if line.trim().is_empty() {
        bail!("no {what}: the process ended");
    }
    Ok(line)
}

fn wait_until(timeout: Duration, what: &str, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() > deadline {
            bail!("{what} did not come up within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn set_executable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn set_mode_700(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}
