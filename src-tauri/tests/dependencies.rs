//! The shipped app links no test code: its demo server comes from `skiff-devserver`,
//! not from the end-to-end test crate (and so not its WebDriver client).

use std::process::Command;

#[test]
fn the_desktop_app_links_no_test_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "skiff-desktop", "-e", "normal,build", "--prefix", "none", "--offline", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let crates: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"skiff-devserver"), "the demo's server launcher: {crates:?}");
    for test_only in ["skiff-tests", "fantoccini", "tauri-driver"] {
        assert!(!crates.contains(&test_only), "the app links {test_only}");
    }
}
