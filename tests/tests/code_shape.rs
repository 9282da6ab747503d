//! The shape the code keeps so that a newcomer finds things quickly (ARCHITECTURE.md,
//! "Rules"): no module of the product (the crates and the desktop shell) over 600 lines
//! of non-test code, and no function of the transfer engine (the drivers and what
//! they call) over 60 lines. Tests (`tests.rs`, a trailing `mod tests`) are not
//! counted. A failure names each file or function and its length.

use std::path::{Path, PathBuf};

const MAX_MODULE_LINES: usize = 600;
const MAX_TRANSFER_FN_LINES: usize = 60;

/// The product's source folders, from the workspace root.
const PRODUCT: &[&str] = &[
    "crates/skiff-proto/src",
    "crates/skiff-engine/src",
    "crates/skiff-cli/src",
    "crates/skiff-devserver/src",
    "src-tauri/src",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir` but test files.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of `text` before its trailing test module (`#[cfg(test)]` then `mod tests`).
fn non_test_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end =
        lines.windows(2).position(|w| w[0] == "#[cfg(test)]" && w[1].starts_with("mod tests {")).unwrap_or(lines.len());
    lines[..end].to_vec()
}

/// Each function in `lines` (name, first line, length in lines): from its `fn` line to
/// the closing brace at the same indentation.
fn functions(lines: &[&str]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let rest = ["pub(super) ", "pub(crate) ", "pub(in crate::transfer) ", "pub "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
            .unwrap_or(trimmed);
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        let Some(sig) = rest.strip_prefix("fn ") else { continue };
        let name: String = sig.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if line.trim_end().ends_with(';') {
            continue; // a declaration without a body
        }
        let close = format!("{indent}}}");
        if let Some(len) = lines[i + 1..].iter().position(|l| *l == close) {
            out.push((name, i + 1, len + 2));
        }
    }
    out
}

#[test]
fn no_product_module_is_over_600_lines() {
    let root = root();
    let mut long = Vec::new();
    let mut seen = 0;
    for dir in PRODUCT {
        for file in sources(&root.join(dir)) {
            seen += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            let n = non_test_lines(&text).len();
            if n > MAX_MODULE_LINES {
                long.push(format!("{} ({n} lines)", file.strip_prefix(&root).unwrap_or(&file).display()));
            }
        }
    }
    assert!(seen > 50, "only {seen} source files found under {}", root.display());
    assert!(
        long.is_empty(),
        "modules over {MAX_MODULE_LINES} lines of non-test code: split them by concern: {long:#?}"
    );
}

#[test]
fn no_transfer_function_is_over_60_lines() {
    let root = root();
    let mut long = Vec::new();
    let mut counted = 0;
    for file in sources(&root.join("crates/skiff-engine/src/transfer")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (name, line, len) in functions(&non_test_lines(&text)) {
            counted += 1;
            if len > MAX_TRANSFER_FN_LINES {
                long.push(format!(
                    "{}:{line} {name} ({len} lines)",
                    file.strip_prefix(&root).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(counted > 100, "only {counted} functions found in the transfer engine");
    assert!(long.is_empty(), "transfer functions over {MAX_TRANSFER_FN_LINES} lines: {long:#?}");
}

#[test]
fn the_checks_measure_what_they_claim() {
    let text = "fn a() {\n    x();\n}\n\nimpl T {\n    pub(super) async fn b(&self) {\n        y();\n        z();\n    }\n    fn c();\n}\n\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n";
    let lines = non_test_lines(text);
    assert_eq!(lines.len(), 12);
    assert_eq!(functions(&lines), [("a".to_owned(), 1, 3), ("b".to_owned(), 6, 4)]);
}
