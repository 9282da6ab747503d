//! Tests of the file side: names, hashing, free space, `.part` files, sources.

use super::part::move_into_place;
use super::*;
use skiff_proto::dates::parse_xep82;
use std::io;
use std::path::{Path, PathBuf};

const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";
const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Deterministic bytes that are not all alike.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
}

// --- sanitize_file_name ------------------------------------------------------

#[test]
fn sanitize_strips_directories() {
    assert_eq!(sanitize_file_name("../../evil"), "evil");
    assert_eq!(sanitize_file_name("/etc/passwd"), "passwd");
    assert_eq!(sanitize_file_name("/abs/path"), "path");
    assert_eq!(sanitize_file_name("C:\\Windows\\x.exe"), "x.exe");
    assert_eq!(sanitize_file_name("C:\\x\\y.txt"), "y.txt");
    assert_eq!(sanitize_file_name("..\\..\\boot.ini"), "boot.ini");
    assert_eq!(sanitize_file_name("a/b\\c/d.txt"), "d.txt");
    assert_eq!(sanitize_file_name("dir/"), "file");
    assert_eq!(sanitize_file_name("dir/.."), "file");
}

#[test]
fn sanitize_dots_and_empty() {
    assert_eq!(sanitize_file_name(".."), "file");
    assert_eq!(sanitize_file_name("."), "file");
    assert_eq!(sanitize_file_name("..."), "file");
    assert_eq!(sanitize_file_name(""), "file");
    assert_eq!(sanitize_file_name("   "), "file");
    assert_eq!(sanitize_file_name("\0\r\n"), "file");
    assert_eq!(sanitize_file_name("???"), "file");
    assert_eq!(sanitize_file_name(". ."), "file");
}

#[test]
fn sanitize_hidden_files() {
    assert_eq!(sanitize_file_name(".hidden"), "_hidden");
    assert_eq!(sanitize_file_name(".bashrc"), "_bashrc");
    assert_eq!(sanitize_file_name("..foo"), "_.foo");
    assert_eq!(sanitize_file_name("  .ssh"), "_ssh");
    assert_eq!(sanitize_file_name("/home/u/.ssh/authorized_keys"), "authorized_keys");
}

#[test]
fn sanitize_trailing_dots_and_whitespace() {
    assert_eq!(sanitize_file_name("name."), "name");
    assert_eq!(sanitize_file_name("name..."), "name");
    assert_eq!(sanitize_file_name("name. . "), "name");
    assert_eq!(sanitize_file_name("  report.pdf \t"), "report.pdf");
    assert_eq!(sanitize_file_name("a b  c.txt"), "a b  c.txt");
}

#[test]
fn sanitize_windows_reserved_names() {
    assert_eq!(sanitize_file_name("CON"), "_CON");
    assert_eq!(sanitize_file_name("con.txt"), "_con.txt");
    assert_eq!(sanitize_file_name("nul"), "_nul");
    assert_eq!(sanitize_file_name("Prn.tar.gz"), "_Prn.tar.gz");
    assert_eq!(sanitize_file_name("aux"), "_aux");
    assert_eq!(sanitize_file_name("COM1"), "_COM1");
    assert_eq!(sanitize_file_name("com9.log"), "_com9.log");
    assert_eq!(sanitize_file_name("LPT1"), "_LPT1");
    assert_eq!(sanitize_file_name("lpt5.doc"), "_lpt5.doc");
    assert_eq!(sanitize_file_name("CON .txt"), "_CON .txt");
    assert_eq!(sanitize_file_name("COM¹"), "_COM¹");
    // Not reserved: longer names, COM0/COM10, reserved words inside a name.
    assert_eq!(sanitize_file_name("console.txt"), "console.txt");
    assert_eq!(sanitize_file_name("COM10"), "COM10");
    assert_eq!(sanitize_file_name("nullable.rs"), "nullable.rs");
    assert_eq!(sanitize_file_name("my con.txt"), "my con.txt");
}

#[test]
fn sanitize_removes_control_and_illegal_characters() {
    assert_eq!(sanitize_file_name("a\0b"), "ab");
    assert_eq!(sanitize_file_name("line\r\nbreak.txt"), "linebreak.txt");
    assert_eq!(sanitize_file_name("del\u{7f}.txt"), "del.txt");
    assert_eq!(sanitize_file_name("tab\there"), "tabhere");
    assert_eq!(sanitize_file_name("c1\u{85}\u{9b}.txt"), "c1.txt");
    assert_eq!(sanitize_file_name("what?<is>:this\"|*.txt"), "whatisthis.txt");
    assert_eq!(sanitize_file_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
    assert_eq!(sanitize_file_name("\u{2066}a\u{2069}.txt"), "a.txt");
}

#[test]
fn sanitize_keeps_unicode() {
    for name in ["résumé 2024.pdf", "文件.txt", "Привет мир.docx", "😀 party.png", "naïve café", "ملف.txt"]
    {
        assert_eq!(sanitize_file_name(name), name);
        assert!(is_safe_file_name(name), "{name}");
    }
}

#[test]
fn sanitize_caps_long_names_keeping_the_extension() {
    let long = format!("{}.txt", "a".repeat(300));
    let out = sanitize_file_name(&long);
    assert_eq!(out.len(), MAX_NAME_BYTES);
    assert_eq!(out, format!("{}.txt", "a".repeat(196)));

    // Multi-byte characters are never cut in half.
    let long = format!("{}.txt", "文".repeat(100));
    let out = sanitize_file_name(&long);
    assert!(out.len() <= MAX_NAME_BYTES);
    assert_eq!(out, format!("{}.txt", "文".repeat(65)));
    let long = format!("{}.pdf", "é".repeat(150));
    assert_eq!(sanitize_file_name(&long), format!("{}.pdf", "é".repeat(98)));

    // A long extension is not kept: the whole name is cut.
    let long = format!("a.{}", "b".repeat(300));
    let out = sanitize_file_name(&long);
    assert_eq!(out, format!("a.{}", "b".repeat(198)));

    // A cut that exposes a space or dot at the end removes it.
    let long = format!("{} {}", "a".repeat(199), "b".repeat(100));
    assert_eq!(sanitize_file_name(&long), "a".repeat(199));

    // Exactly the limit is left alone.
    let exact = "x".repeat(MAX_NAME_BYTES);
    assert_eq!(sanitize_file_name(&exact), exact);
}

#[test]
fn sanitize_is_idempotent_and_agrees_with_is_safe() {
    let long = format!("{}.txt", "文".repeat(100));
    let inputs = [
        "../../evil",
        "/abs/path",
        "C:\\Windows\\x.exe",
        "..",
        ".",
        "",
        ".hidden",
        "CON",
        "con.txt",
        "nul",
        "a\0b",
        "name.",
        ". foo",
        " .foo. ",
        "..foo",
        "résumé 2024.pdf",
        long.as_str(),
    ];
    for raw in inputs {
        let once = sanitize_file_name(raw);
        assert_eq!(sanitize_file_name(&once), once, "not idempotent for {raw:?}");
        assert!(is_safe_file_name(&once), "{once:?}");
        assert!(!once.is_empty() && !once.contains(['/', '\\']) && once != "." && once != "..");
    }
}

#[test]
fn is_safe_file_name_rejects_unsafe_names() {
    for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "CON", "nul.txt", "a\0b", "name.", " x", "x "] {
        assert!(!is_safe_file_name(bad), "{bad:?}");
    }
    for good in ["report.pdf", "archive.tar.gz", "_hidden", "_CON", "notes", "a (1).txt"] {
        assert!(is_safe_file_name(good), "{good:?}");
    }
    assert!(!is_safe_file_name(&"a".repeat(MAX_NAME_BYTES + 1)));
}

// --- unique_path / part_path -------------------------------------------------

#[test]
fn part_path_appends_the_suffix() {
    assert_eq!(part_path(Path::new("/d/x.txt")), PathBuf::from("/d/x.txt.part"));
    assert_eq!(part_path(Path::new("noext")), PathBuf::from("noext.part"));
}

#[test]
fn unique_path_free_name_is_kept() {
    let d = dir();
    assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a.txt"));
}

#[test]
fn unique_path_skips_existing_files_and_parts() {
    let d = dir();
    std::fs::write(d.path().join("a.txt"), b"x").expect("write");
    assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a (1).txt"));
    std::fs::write(d.path().join("a (1).txt.part"), b"x").expect("write");
    assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a (2).txt"));
    std::fs::write(d.path().join("a (2).txt"), b"x").expect("write");
    assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a (3).txt"));

    // Only a .part of the name itself also makes it taken.
    std::fs::write(d.path().join("b.bin.part"), b"x").expect("write");
    assert_eq!(unique_path(d.path(), "b.bin"), d.path().join("b (1).bin"));
}

#[test]
fn unique_path_splits_at_the_last_dot() {
    let d = dir();
    for name in ["archive.tar.gz", "notes", "_profile", ".profile"] {
        std::fs::write(d.path().join(name), b"x").expect("write");
    }
    assert_eq!(unique_path(d.path(), "archive.tar.gz"), d.path().join("archive.tar (1).gz"));
    assert_eq!(unique_path(d.path(), "notes"), d.path().join("notes (1)"));
    assert_eq!(unique_path(d.path(), ".profile"), d.path().join(".profile (1)"));
}

#[cfg(unix)]
#[test]
fn unique_path_counts_a_dangling_symlink_as_taken() {
    let d = dir();
    std::os::unix::fs::symlink(d.path().join("nowhere"), d.path().join("link.txt")).expect("symlink");
    assert_eq!(unique_path(d.path(), "link.txt"), d.path().join("link (1).txt"));
}

// --- hashing -----------------------------------------------------------------

#[test]
fn stream_hasher_known_values() {
    let mut h = StreamHasher::new();
    h.update(b"he");
    h.update(b"");
    h.update(b"llo");
    assert_eq!(h.bytes(), 5);
    assert_eq!(h.finish(), Hashes { md5: HELLO_MD5.into(), sha256: HELLO_SHA256.into() });
    let empty = StreamHasher::new().finish();
    assert_eq!((empty.md5.as_str(), empty.sha256.as_str()), (EMPTY_MD5, EMPTY_SHA256));
}

#[test]
fn stream_hasher_large_blocks_match_small_ones() {
    let data = pattern(3 * 1024 * 1024 + 17);
    let mut big = StreamHasher::new();
    big.update(&data);
    let mut small = StreamHasher::new();
    for chunk in data.chunks(4093) {
        small.update(chunk);
    }
    assert_eq!(big.bytes(), data.len() as u64);
    assert_eq!(big.finish(), small.finish());
}

#[test]
fn hash_file_whole_and_prefix() {
    let d = dir();
    let path = d.path().join("hw.txt");
    std::fs::write(&path, b"hello world").expect("write");
    let prefix = hash_file_blocking(&path, Some(5)).expect("hash");
    assert_eq!((prefix.md5.as_str(), prefix.sha256.as_str()), (HELLO_MD5, HELLO_SHA256));
    let whole = hash_file_blocking(&path, None).expect("hash");
    assert_eq!(whole.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
    assert_eq!(hash_file_blocking(&path, Some(11)).expect("hash"), whole);
    assert_eq!(hash_file_blocking(&path, Some(0)).expect("hash").md5, EMPTY_MD5);
    let err = hash_file_blocking(&path, Some(12)).expect_err("file too short");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    let err = hash_file_blocking(&d.path().join("missing"), None).expect_err("missing");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[tokio::test]
async fn hash_file_async_matches_blocking() {
    let d = dir();
    let path = d.path().join("big.bin");
    let data = pattern(2 * IO_BUFFER + 5);
    std::fs::write(&path, &data).expect("write");
    let mut h = StreamHasher::new();
    h.update(&data);
    assert_eq!(hash_file(path.clone(), None).await.expect("hash"), h.finish());
    assert_eq!(hash_file(path.clone(), None).await.expect("hash"), hash_file_blocking(&path, None).expect("hash"));
}

#[test]
fn free_space_sentences() {
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(10 << 20), "10.0 MiB");
    let dir = tempfile::tempdir().unwrap();
    let free = free_space(dir.path()).unwrap();
    assert!(free > 0);
    assert_eq!(check_free_space(dir.path(), 0), Ok(()));
    // A folder not made yet is judged by the nearest one that exists.
    assert_eq!(check_free_space(&dir.path().join("a/b"), 1), Ok(()));
    let err = check_free_space(&dir.path().join("a"), u64::MAX / 2).unwrap_err();
    assert!(err.starts_with(&format!("not enough space in {}: the file needs", dir.path().join("a").display())));
    assert!(err.contains("short)"), "{err}");
}

// --- PartFile ----------------------------------------------------------------

#[tokio::test]
async fn part_file_happy_path() {
    let d = dir();
    let final_path = d.path().join("hello.txt");
    let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
    assert_eq!(pf.final_path(), final_path);
    assert_eq!(pf.part_path(), d.path().join("hello.txt.part"));
    assert!(pf.part_path().exists());
    assert!(!final_path.exists());
    pf.write(b"hel").await.expect("write");
    pf.write(b"lo").await.expect("write");
    assert_eq!(pf.written(), 5);
    assert_eq!(pf.expected_size(), 5);
    // The announced MD5 is compared case-insensitively.
    let done = pf.finish(Some(&HELLO_MD5.to_uppercase())).await.expect("finish");
    assert_eq!(done.path, final_path);
    assert_eq!(done.size, 5);
    assert_eq!(done.hashes, Hashes { md5: HELLO_MD5.into(), sha256: HELLO_SHA256.into() });
    assert_eq!(std::fs::read(&final_path).expect("read"), b"hello");
    assert!(!d.path().join("hello.txt.part").exists());
}

#[tokio::test]
async fn part_file_without_md5_and_empty_file() {
    let d = dir();
    let pf = PartFile::create(d.path().join("empty"), 0).await.expect("create");
    let done = pf.finish(None).await.expect("finish");
    assert_eq!((done.size, done.hashes.md5.as_str()), (0, EMPTY_MD5));
    assert_eq!(std::fs::read(d.path().join("empty")).expect("read"), b"");
}

#[tokio::test]
async fn part_file_large_write_is_complete() {
    let d = dir();
    let data = pattern(3 * IO_BUFFER + 12_345);
    let final_path = d.path().join("big.bin");
    let mut pf = PartFile::create(final_path.clone(), data.len() as u64).await.expect("create");
    // Mixed block sizes: some smaller than the buffer, one larger.
    let (a, rest) = data.split_at(1000);
    let (b, c) = rest.split_at(2 * IO_BUFFER + 7);
    for block in [a, b] {
        pf.write(block).await.expect("write");
    }
    for block in c.chunks(65_536) {
        pf.write(block).await.expect("write");
    }
    let mut h = StreamHasher::new();
    h.update(&data);
    let expected = h.finish();
    let done = pf.finish(Some(&expected.md5)).await.expect("finish");
    assert_eq!(done.hashes, expected);
    assert_eq!(std::fs::read(&final_path).expect("read"), data);
}

#[tokio::test]
async fn part_file_too_few_bytes_is_a_size_mismatch() {
    let d = dir();
    let final_path = d.path().join("short.txt");
    let mut pf = PartFile::create(final_path.clone(), 10).await.expect("create");
    pf.write(b"hello").await.expect("write");
    let err = pf.finish(Some(HELLO_MD5)).await.expect_err("too short");
    assert!(matches!(err, VerifyError::SizeMismatch { expected: 10, got: 5 }), "{err:?}");
    assert_eq!(err.to_string(), "the sender announced 10 bytes but sent 5");
    assert!(!final_path.exists());
    // The partial file stays, complete up to what arrived, for a resume.
    assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"hello");
}

#[tokio::test]
async fn part_file_refuses_more_than_announced() {
    let d = dir();
    let final_path = d.path().join("liar.txt");
    let mut pf = PartFile::create(final_path.clone(), 3).await.expect("create");
    let err = pf.write(b"hello").await.expect_err("too many bytes");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("more than the 3 bytes it announced"), "{err}");
    assert_eq!(pf.written(), 0);
    pf.write(b"hel").await.expect("write within the size");
    assert!(pf.write(b"l").await.is_err());
    pf.flush().await.expect("flush");
    assert_eq!(std::fs::metadata(pf.part_path()).expect("metadata").len(), 3);
    let done = pf.finish(None).await.expect("finish");
    assert_eq!(std::fs::read(done.path).expect("read"), b"hel");
}

#[tokio::test]
async fn part_file_wrong_md5_removes_the_part() {
    let d = dir();
    let final_path = d.path().join("damaged.txt");
    let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
    pf.write(b"hellp").await.expect("write");
    let err = pf.finish(Some(HELLO_MD5)).await.expect_err("damaged");
    match &err {
        VerifyError::HashMismatch { expected, got, .. } => {
            assert_eq!(expected, HELLO_MD5);
            assert_ne!(got, HELLO_MD5);
            assert_eq!(got.len(), 32);
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("the file's MD5 does not match what the sender announced (expected 5d41"), "{msg}");
    assert!(msg.ends_with("it was damaged in transit; the partial file was removed"), "{msg}");
    assert!(!final_path.exists());
    assert!(!part_path(&final_path).exists());
}

#[tokio::test]
async fn part_file_never_overwrites_a_file_that_appeared_meanwhile() {
    let d = dir();
    let final_path = d.path().join("hello.txt");
    let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
    pf.write(b"hello").await.expect("write");
    std::fs::write(&final_path, b"precious").expect("write");
    let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
    assert_eq!(done.path, d.path().join("hello (1).txt"));
    assert_eq!(std::fs::read(&done.path).expect("read"), b"hello");
    assert_eq!(std::fs::read(&final_path).expect("read"), b"precious");
    assert!(!part_path(&final_path).exists());
}

#[test]
fn move_into_place_skips_taken_names() {
    let d = dir();
    let final_path = d.path().join("x.txt");
    let part = part_path(&final_path);
    std::fs::write(&part, b"new").expect("write");
    std::fs::write(&final_path, b"old").expect("write");
    std::fs::write(d.path().join("x (1).txt"), b"old1").expect("write");
    let landed = move_into_place(&part, &final_path).expect("move");
    assert_eq!(landed, d.path().join("x (2).txt"));
    assert_eq!(std::fs::read(&landed).expect("read"), b"new");
    assert_eq!(std::fs::read(&final_path).expect("read"), b"old");
    assert!(!part.exists());
}

#[tokio::test]
async fn part_file_create_fails_when_the_part_exists() {
    let d = dir();
    let final_path = d.path().join("a.bin");
    std::fs::write(part_path(&final_path), b"earlier").expect("write");
    let err = PartFile::create(final_path.clone(), 5).await.expect_err("exists");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"earlier");
}

#[tokio::test]
async fn part_file_resume_after_a_partial_write() {
    let d = dir();
    let final_path = d.path().join("hello.txt");
    let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
    pf.write(b"hel").await.expect("write");
    pf.flush().await.expect("flush");
    drop(pf);
    assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"hel");

    let mut pf = PartFile::resume(final_path.clone(), 3, 5).await.expect("resume");
    assert_eq!(pf.written(), 3);
    assert!(pf.write(b"lo!").await.is_err());
    pf.write(b"lo").await.expect("write");
    assert_eq!(pf.written(), 5);
    let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
    assert_eq!(done.hashes.sha256, HELLO_SHA256);
    assert_eq!(std::fs::read(&final_path).expect("read"), b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_file_hashes_while_writing_many_chunks_and_after_a_resume() {
    let d = dir();
    let final_path = d.path().join("big.bin");
    let data: Vec<u8> = (0..3_000_017u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let cut = 1_234_567;
    let mut pf = PartFile::create(final_path.clone(), data.len() as u64).await.expect("create");
    for chunk in data[..cut].chunks(7_001) {
        pf.write(chunk).await.expect("write");
    }
    pf.flush().await.expect("flush");
    drop(pf);
    let mut pf = PartFile::resume(final_path.clone(), cut as u64, data.len() as u64).await.expect("resume");
    for chunk in data[cut..].chunks(65_536) {
        pf.write(chunk).await.expect("write");
    }
    let mut h = StreamHasher::new();
    h.update(&data);
    let want = h.finish();
    let done = pf.finish(Some(&want.md5.to_uppercase())).await.expect("finish");
    assert_eq!(done.hashes, want);
    assert_eq!(hash_file_blocking(&final_path, None).expect("hash"), want);
}

#[tokio::test]
async fn part_file_resume_truncates_to_the_offset() {
    let d = dir();
    let final_path = d.path().join("hello.txt");
    // More on disk than the resume record vouches for: the tail is dropped.
    std::fs::write(part_path(&final_path), b"helXXXX").expect("write");
    let mut pf = PartFile::resume(final_path.clone(), 3, 5).await.expect("resume");
    pf.write(b"lo").await.expect("write");
    let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
    assert_eq!(done.path, final_path);
    assert_eq!(std::fs::read(&final_path).expect("read"), b"hello");
}

#[tokio::test]
async fn part_file_resume_errors() {
    let d = dir();
    let final_path = d.path().join("r.bin");
    let err = PartFile::resume(final_path.clone(), 0, 5).await.expect_err("no part");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    std::fs::write(part_path(&final_path), b"he").expect("write");
    let err = PartFile::resume(final_path.clone(), 3, 5).await.expect_err("offset past the part");
    assert!(err.to_string().contains("holds only 2 bytes"), "{err}");
    let err = PartFile::resume(final_path.clone(), 6, 5).await.expect_err("offset past the size");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    // The failed attempts left the part alone.
    assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"he");

    std::fs::create_dir(part_path(&d.path().join("dir.bin"))).expect("mkdir");
    let err = PartFile::resume(d.path().join("dir.bin"), 0, 5).await.expect_err("directory");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn part_file_resume_at_the_end_finishes() {
    let d = dir();
    let final_path = d.path().join("done.txt");
    std::fs::write(part_path(&final_path), b"hello").expect("write");
    let pf = PartFile::resume(final_path.clone(), 5, 5).await.expect("resume");
    let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
    assert_eq!(done.size, 5);
}

// --- SourceFile / file_meta --------------------------------------------------

#[tokio::test]
async fn source_file_reads_from_an_offset() {
    let d = dir();
    let path = d.path().join("digits");
    std::fs::write(&path, b"0123456789").expect("write");
    let mut src = SourceFile::open(&path, 4).await.expect("open");
    assert_eq!((src.size(), src.position()), (10, 4));
    let mut buf = [0u8; 4];
    assert_eq!(src.read_block(&mut buf).await.expect("read"), 4);
    assert_eq!(&buf, b"4567");
    assert_eq!(src.read_block(&mut buf).await.expect("read"), 2);
    assert_eq!(&buf[..2], b"89");
    assert_eq!(src.read_block(&mut buf).await.expect("read"), 0);
    assert_eq!(src.position(), 10);

    let mut at_end = SourceFile::open(&path, 10).await.expect("open at the end");
    assert_eq!(at_end.read_block(&mut buf).await.expect("read"), 0);

    let err = SourceFile::open(&path, 11).await.expect_err("past the end");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("from byte 11"), "{err}");
    assert!(SourceFile::open(d.path(), 0).await.is_err());
}

#[tokio::test]
async fn several_files_read_as_one_stream_from_any_offset() {
    let d = dir();
    let mut files = Vec::new();
    for (name, data) in [("a", &b"abc"[..]), ("empty", b""), ("b", b"defgh"), ("c", b"ij")] {
        let p = d.path().join(name);
        std::fs::write(&p, data).expect("write");
        files.push((p, data.len() as u64));
    }
    let all = b"abcdefghij";
    for offset in 0..=10u64 {
        for block in [1usize, 2, 4, 64] {
            let mut src = SourceFile::open_many(files.clone(), offset).await.expect("open");
            assert_eq!((src.size(), src.position()), (10, offset));
            let mut got = Vec::new();
            let mut buf = vec![0u8; block];
            loop {
                let n = src.read_block(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, &all[offset as usize..], "from {offset} in blocks of {block}");
            assert_eq!(src.position(), 10);
        }
    }
    assert!(SourceFile::open_many(files.clone(), 11).await.is_err());
    // A file that changed after the offer fails the read that reaches it.
    std::fs::write(&files[2].0, b"de").expect("shrink");
    let mut src = SourceFile::open_many(files.clone(), 0).await.expect("open");
    let mut buf = [0u8; 16];
    let err = src.read_block(&mut buf).await.expect_err("changed");
    assert!(err.to_string().contains("changed size"), "{err}");
}

#[tokio::test]
async fn source_file_fills_whole_blocks() {
    let d = dir();
    let path = d.path().join("big.bin");
    let data = pattern(5 * IO_BUFFER / 2);
    std::fs::write(&path, &data).expect("write");
    let mut src = SourceFile::open(&path, 0).await.expect("open");
    let mut buf = vec![0u8; IO_BUFFER];
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let n = src.read_block(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        sizes.push(n);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(sizes, [IO_BUFFER, IO_BUFFER, IO_BUFFER / 2]);
    assert_eq!(got, data);
}

#[test]
fn file_meta_reports_size_name_and_date() {
    let d = dir();
    let path = d.path().join("résumé.pdf");
    std::fs::write(&path, b"hello").expect("write");
    let mtime = parse_xep82("2009-07-14T04:52:25.650Z").expect("date");
    std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(mtime)).expect("set mtime");
    let meta = file_meta(&path).expect("meta");
    assert_eq!(meta.size, 5);
    assert_eq!(meta.name, "résumé.pdf");
    assert_eq!(meta.mtime_ns, 1_247_547_145_650_000_000);
    assert_eq!(meta.date, "2009-07-14T04:52:25.650Z");
    assert_eq!(file_meta(d.path()).expect_err("directory").kind(), io::ErrorKind::InvalidInput);
    assert_eq!(file_meta(&d.path().join("missing")).expect_err("missing").kind(), io::ErrorKind::NotFound);
}

// --- packs -------------------------------------------------------------------

fn sha256_hex(data: &[u8]) -> String {
    let mut h = StreamHasher::new();
    h.update(data);
    h.finish().sha256
}

/// Feeds `stream` to a new pack writer in chunks of `chunk` bytes.
async fn feed(entries: &[PackEntry], stream: &[u8], chunk: usize) -> PackWriter {
    let mut w = PackWriter::new(entries.to_vec());
    for c in stream.chunks(chunk) {
        w.write(c).await.expect("write");
    }
    w
}

fn pack_of(root: &Path, files: &[(&str, &[u8])]) -> (Vec<PackEntry>, Vec<u8>) {
    let entries = files
        .iter()
        .map(|(p, data)| PackEntry { path: root.join(p), size: data.len() as u64, sha256: sha256_hex(data) })
        .collect();
    (entries, files.iter().flat_map(|f| f.1.iter().copied()).collect())
}

#[tokio::test]
async fn a_pack_is_cut_into_its_files_each_checked() {
    let d = dir();
    let root = d.path().join("photos");
    let mut files: Vec<(&str, &[u8])> = vec![
        ("empty-first", b""),
        ("2024/a.jpg", b"first"),
        ("2023/a.jpg", b"second!"),
        ("empty.txt", b""),
        ("deep/er/x", b"xyz"),
        ("empty-last", b""),
    ];
    let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("many/{i}"), vec![i as u8; i * 7])).collect();
    files.extend(many.iter().map(|(p, d)| (p.as_str(), d.as_slice())));
    let (entries, stream) = pack_of(&root, &files);
    // Chunks that cross the files' boundaries anywhere.
    for (round, chunk) in [1usize, 3, 1000].into_iter().enumerate() {
        let root = d.path().join(format!("r{round}"));
        let (entries, _) = pack_of(&root, &files);
        let w = feed(&entries, &stream, chunk).await;
        assert_eq!(w.written(), stream.len() as u64);
        let hashes = w.finish().await.expect("finish");
        for ((p, data), h) in files.iter().zip(&hashes) {
            assert_eq!(std::fs::read(root.join(p)).unwrap(), *data, "{p}");
            assert_eq!(*h, sha256_hex(data));
            assert!(!part_path(&root.join(p)).exists());
        }
    }
    // Into places taken meanwhile: nothing is written over, no `.part` is left.
    std::fs::create_dir_all(root.join("2024")).unwrap();
    std::fs::write(root.join("2024/a.jpg"), b"mine").unwrap();
    let err = feed(&entries, &stream, 4).await.finish().await.expect_err("taken");
    assert!(matches!(err, UnpackError::Exists(_)), "{err}");
    assert_eq!(std::fs::read(root.join("2024/a.jpg")).unwrap(), b"mine");
    assert!(!part_path(&root.join("2023/a.jpg")).exists());
    // More bytes than the files: refused at the write.
    let mut w = feed(&entries, &stream, 64).await;
    let more = w.write(b"!").await.expect_err("past the end");
    assert_eq!(more.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn a_pack_with_a_damaged_file_leaves_nothing() {
    let d = dir();
    let root = d.path().join("b");
    let entries = vec![
        PackEntry { path: root.join("good"), size: 4, sha256: sha256_hex(b"good") },
        PackEntry { path: root.join("bad"), size: 3, sha256: sha256_hex(b"BAD") },
        PackEntry { path: root.join("after"), size: 5, sha256: sha256_hex(b"after") },
    ];
    // The stream runs to its end; the damage is reported then.
    let w = feed(&entries, b"goodbadafter", 2).await;
    let err = w.finish().await.expect_err("damaged");
    assert!(matches!(err, UnpackError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("bad"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // A stream shorter than its files.
    let w = feed(&entries[..1], b"goo", 2).await;
    assert!(matches!(w.finish().await, Err(UnpackError::SizeMismatch { expected: 4, got: 3 })));
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());
}

#[tokio::test]
async fn a_pack_cut_short_keeps_its_whole_files() {
    let d = dir();
    let root = d.path().join("k");
    let files: Vec<(String, Vec<u8>)> = (0..12).map(|i| (format!("f{i}"), vec![b'a' + i as u8; 10])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    let (entries, stream) = pack_of(&root, &refs);
    // 9 files and a half arrived.
    let w = feed(&entries, &stream[..95], 7).await;
    let kept = w.keep_whole().await;
    assert_eq!(kept.len(), 9);
    for (p, data) in &files[..9] {
        assert_eq!(&std::fs::read(root.join(p)).unwrap(), data);
    }
    let mut left: Vec<String> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"], "the half file's .part is gone");
    // A damaged file among them: nothing is kept.
    let mut bad = entries.clone();
    bad[1].sha256 = sha256_hex(b"other");
    let root2 = d.path().join("k2");
    for e in &mut bad {
        e.path = root2.join(e.path.file_name().unwrap());
    }
    assert!(feed(&bad, &stream[..50], 7).await.keep_whole().await.is_empty());
    assert!(std::fs::read_dir(&root2).unwrap().next().is_none());
}
