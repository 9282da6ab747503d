//! The fuzz targets (`skiff_proto::fuzzing`) as a short, deterministic property test on
//! the stable toolchain: every target over its seed corpus and the saved crash inputs
//! (`fuzz/seeds/`, `fuzz/regressions/`), then a fixed number of mutations of them made
//! by a seeded generator (bit flips, byte changes, insertions of XML tokens, cuts,
//! duplications, splices). The long coverage-guided runs are `bench/fuzz.sh`.

use std::path::{Path, PathBuf};

use skiff_proto::fuzzing::TARGETS;

/// Mutations per target (spread over its inputs); `SKIFF_FUZZ_CASES=N` asks for more.
const CASES: usize = 3000;

/// xorshift64*: small, seeded, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"/>",
    b"</",
    b"'",
    b"\"",
    b"=",
    b"&amp;",
    b"&#0;",
    b"&#x10FFFF;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"<?xml",
    b"xmlns='",
    b"xmlns:p='",
    b"<a>",
    b"</a>",
    b"<a/>",
    b" a='1'",
    b"\xff",
    b"\x00",
    b"\xc3\x28",
    b"0",
    b"-1",
    b"18446744073709551616",
    b"4294967295",
    b"65535",
];

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            3 => v.truncate(at),
            4 if at < v.len() => {
                let end = (at + rng.below(64)).min(v.len());
                let piece = v[at..end].to_vec();
                v.splice(at..at, piece);
            }
            5 => {
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(128)).min(other.len());
                v.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                if at < v.len() {
                    let end = (at + rng.below(16)).min(v.len());
                    v.drain(at..end);
                }
            }
        }
    }
    v
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries.flatten() {
            files.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn every_target_holds_on_its_corpus_and_mutations() {
    for (name, target) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "no seeds for {name} in fuzz/seeds/{name}/");
        for (path, data) in &inputs {
            let r = std::panic::catch_unwind(|| target(data));
            assert!(r.is_ok(), "{name} failed on {}", path.display());
        }
        let mut rng = Rng(0x5eed_0000 ^ name.len() as u64 ^ (u64::from(name.as_bytes()[0]) << 32));
        let cases = std::env::var("SKIFF_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(CASES);
        for case in 0..cases {
            let (_, a) = &inputs[case % inputs.len()];
            let (_, b) = &inputs[rng.below(inputs.len())];
            let input = mutate(&mut rng, a, b);
            let r = std::panic::catch_unwind(|| target(&input));
            assert!(r.is_ok(), "{name} failed on mutation {case}: {:?}", String::from_utf8_lossy(&input));
        }
    }
}

/// `SKIFF_FUZZ_REPLAY=PATH...`: runs the target of each file (named by its folder) once,
/// e.g. with `SKIFF_FUZZ_TRACE=1` and `--nocapture` to watch a transfer seed.
#[test]
fn replay() {
    let Ok(paths) = std::env::var("SKIFF_FUZZ_REPLAY") else { return };
    for path in paths.split_whitespace().map(Path::new) {
        let dir = path.parent().and_then(Path::file_name).and_then(|d| d.to_str()).unwrap();
        let (_, target) = TARGETS.iter().find(|(name, _)| *name == dir).expect("a target's folder");
        target(&std::fs::read(path).unwrap());
    }
}

#[test]
fn the_property_run_can_fail() {
    // A target that panics on one seed is caught: the harness is not vacuous.
    fn picky(data: &[u8]) {
        assert!(!data.windows(4).any(|w| w == b"<si "), "found an SI offer");
    }
    let inputs = corpus("si");
    assert!(inputs.iter().any(|(_, d)| std::panic::catch_unwind(|| picky(d)).is_err()));
}

#[test]
fn every_target_has_a_cargo_fuzz_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let script = std::fs::read_to_string(root.join("../bench/fuzz.sh")).unwrap();
    let listed = script.lines().find_map(|l| l.strip_prefix("all=(")).expect("the target list of bench/fuzz.sh");
    for (name, _) in TARGETS {
        let source = std::fs::read_to_string(root.join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(source.contains(&format!("skiff_proto::fuzzing::{name}(")), "fuzz_targets/{name}.rs");
        assert!(manifest.contains(&format!("name = \"{name}\"")), "no [[bin]] {name} in fuzz/Cargo.toml");
        assert!(listed.trim_end_matches(')').split_whitespace().any(|w| w == *name), "{name} not in bench/fuzz.sh");
    }
}
