use super::*;
use crate::stream::parse_element;

fn entry(path: &str, size: u64) -> Entry {
    Entry { path: RelPath::new(path).unwrap(), size, sha256: None }
}

fn head(files: u64, size: u64) -> BatchHead {
    BatchHead { id: "b1".into(), name: "photos".into(), files, size }
}

fn part(files: u64, size: u64, first: u64, entries: Vec<Entry>) -> ManifestPart {
    ManifestPart { head: head(files, size), first, entries }
}

/// The error the assembler gives for one part holding `entries`, or `None`.
fn refused(files: u64, size: u64, entries: Vec<Entry>) -> Option<ManifestError> {
    ManifestAssembler::default().add(part(files, size, 0, entries)).err()
}

#[test]
fn paths_stay_inside_the_batch() {
    for ok in ["a.jpg", "2024/a.jpg", "photos/2023/a b.jpg", "日本/写真.jpg", ".hidden", "a..b", "x/...", "aux.txt"]
    {
        assert_eq!(RelPath::new(ok).unwrap().as_str(), ok);
    }
    let why = |p: &str| match RelPath::new(p) {
        Err(ManifestError::BadPath { why, .. }) => why,
        other => panic!("{p:?}: {other:?}"),
    };
    assert_eq!(why(""), "is empty");
    assert_eq!(why("/etc/passwd"), "is absolute");
    assert_eq!(why("C:/x"), "is absolute");
    assert_eq!(why("../x"), "leaves or names its folder");
    assert_eq!(why("a/../../x"), "leaves or names its folder");
    assert_eq!(why("a/./x"), "leaves or names its folder");
    assert_eq!(why("a//x"), "has an empty component");
    assert_eq!(why("a/"), "has an empty component");
    assert_eq!(why("a\\..\\x"), "holds control characters or backslashes");
    assert_eq!(why("a\0b"), "holds control characters or backslashes");
    assert_eq!(why("a\nb"), "holds control characters or backslashes");
    assert_eq!(why(&vec!["d"; MAX_DEPTH + 1].join("/")), "is too deep");
    assert_eq!(why(&"x".repeat(MAX_COMPONENT_BYTES + 1)), "has a component that is too long");
    assert_eq!(why(&"ab/".repeat(400)), "is too long");
    let deep = vec!["d"; MAX_DEPTH].join("/");
    assert!(RelPath::new(&deep).is_ok());
}

#[test]
fn a_manifest_round_trips_in_parts() {
    let entries: Vec<Entry> = (0..2_500)
        .map(|i| Entry {
            path: RelPath::new(&format!("2024/{:02}/img-{i}.jpg", i % 12)).unwrap(),
            size: i,
            sha256: (i % 2 == 0).then(|| format!("{:064x}", i)),
        })
        .collect();
    let m = Manifest::new("b1", "photos", entries).unwrap();
    assert_eq!((m.head.files, m.head.size), (2_500, (0..2_500u64).sum()));
    let parts = m.parts(MAX_PART_ENTRIES);
    assert_eq!(
        parts.iter().map(|p| (p.first, p.entries.len())).collect::<Vec<_>>(),
        [(0, 1000), (1000, 1000), (2000, 500)]
    );
    // Through XML, as the receiver gets them.
    let mut a = ManifestAssembler::default();
    let mut done = None;
    for (i, p) in parts.iter().enumerate() {
        let xml = Element::from(p).to_xml();
        assert!(xml.len() < 128 * 1024, "part {i} is {} bytes", xml.len());
        let back = ManifestPart::try_from(&parse_element(xml.as_bytes()).unwrap()).unwrap();
        assert_eq!(&back, p);
        done = a.add(back).unwrap();
        assert_eq!(done.is_some(), i == parts.len() - 1);
    }
    assert_eq!(done.unwrap(), m);
    assert_eq!(m.entry("2024/03/img-3.jpg").map(|e| e.size), Some(3));
}

#[test]
fn an_empty_batch_is_one_part() {
    let m = Manifest::new("b1", "empty folder", Vec::new()).unwrap();
    let parts = m.parts(10);
    assert_eq!(parts.len(), 1);
    assert_eq!(ManifestAssembler::default().add(parts[0].clone()).unwrap(), Some(m));
}

#[test]
fn lying_manifests_are_refused() {
    // Duplicates, also by case (one file system would merge them), and a file that is
    // also a folder.
    assert_eq!(refused(2, 2, vec![entry("a/b", 1), entry("a/b", 1)]), Some(ManifestError::Duplicate("a/b".into())));
    assert_eq!(refused(2, 2, vec![entry("a/B", 1), entry("a/b", 1)]), Some(ManifestError::Duplicate("a/b".into())));
    assert_eq!(refused(2, 2, vec![entry("a", 1), entry("a/b", 1)]), Some(ManifestError::Duplicate("a".into())));
    assert_eq!(refused(2, 2, vec![entry("a/b", 1), entry("a", 1)]), Some(ManifestError::Duplicate("a".into())));
    // Counts and sizes that do not add up.
    assert_eq!(refused(1, 2, vec![entry("a", 1), entry("b", 1)]), Some(ManifestError::MoreFilesThanAnnounced(1)));
    assert_eq!(
        refused(2, 3, vec![entry("a", 1), entry("b", 1)]),
        Some(ManifestError::SizeMismatch { announced: 3, listed: 2 })
    );
    assert_eq!(
        refused(2, 1, vec![entry("a", 1), entry("b", 1)]),
        Some(ManifestError::SizeMismatch { announced: 1, listed: 2 })
    );
    let huge = vec![entry("a", u64::MAX), entry("b", u64::MAX)];
    assert!(matches!(refused(2, u64::MAX, huge), Some(ManifestError::SizeMismatch { .. })));
    // Parts that disagree or skip.
    let mut a = ManifestAssembler::default();
    assert_eq!(a.add(part(3, 3, 0, vec![entry("a", 1)])), Ok(None));
    let mut other = part(3, 3, 1, vec![entry("b", 1)]);
    other.head.name = "other".into();
    assert_eq!(a.add(other), Err(ManifestError::Inconsistent("its name")));
    assert_eq!(a.add(part(3, 3, 2, vec![entry("c", 1)])), Err(ManifestError::OutOfOrder { expected: 1, got: 2 }));
    assert_eq!(a.add(part(4, 3, 1, vec![entry("c", 1)])), Err(ManifestError::Inconsistent("how many files it holds")));
}

#[test]
fn hostile_parts_are_refused_before_they_are_read() {
    let el = |xml: &str| parse_element(xml.as_bytes()).unwrap();
    let err = |xml: &str| ManifestPart::try_from(&el(xml)).unwrap_err();
    // 10^6 files announced: refused at the head.
    assert_eq!(
        err("<batch xmlns='urn:x-skiff:batch:0' id='b' name='n' files='1000000' size='0'/>"),
        ManifestError::TooManyFiles(1_000_000)
    );
    let many: String = (0..=MAX_PART_ENTRIES).map(|i| format!("<file path='f{i}' size='0'/>")).collect();
    assert_eq!(
        err(&format!("<batch xmlns='urn:x-skiff:batch:0' id='b' name='n' files='2000' size='0'>{many}</batch>")),
        ManifestError::PartTooLarge(MAX_PART_ENTRIES + 1)
    );
    assert!(matches!(
        err("<batch xmlns='urn:x-skiff:batch:0' id='b' name='n' files='1' size='1'><file path='../../.ssh/authorized_keys' size='1'/></batch>"),
        ManifestError::BadPath { .. }
    ));
    assert!(matches!(
        err("<batch xmlns='urn:x-skiff:batch:0' id='' name='n' files='1' size='1'/>"),
        ManifestError::Malformed(_)
    ));
    assert!(matches!(
        err("<batch xmlns='urn:x-skiff:batch:0' id='b' name='n' files='-1' size='1'/>"),
        ManifestError::Malformed(_)
    ));
    assert!(matches!(
        err("<batch xmlns='urn:x-skiff:batch:0' id='b' name='n' size='1'/>"),
        ManifestError::Malformed(_)
    ));
    assert!(matches!(err("<batch xmlns='other' id='b' name='n' files='1' size='1'/>"), ManifestError::Malformed(_)));
    // A malformed hash counts as none.
    let p = ManifestPart::try_from(&el(
        "<batch xmlns='urn:x-skiff:batch:0' id='b' name='n' files='1' size='1'><file path='a' size='1' sha256='zz'/></batch>",
    ))
    .unwrap();
    assert_eq!(p.entries[0].sha256, None);
}

#[test]
fn the_offer_marker_round_trips() {
    let m = InBatch { id: "b1".into(), first: 2, count: 3 };
    let el = Element::from(&m);
    assert_eq!(el.to_xml(), "<in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='2' count='3'/>");
    assert_eq!(InBatch::try_from(&el), Ok(m.clone()));
    let one = InBatch { id: "b1".into(), first: 0, count: 1 };
    assert_eq!(Element::from(&one).to_xml(), "<in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='0'/>");
    assert_eq!(InBatch::try_from(&Element::from(&one)), Ok(one.clone()));
    for bad in [
        "<in-batch xmlns='urn:x-skiff:batch:0' id='b1'/>",
        "<in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='0' count='0'/>",
        "<in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='0' count='20001'/>",
        "<in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='-1'/>",
        "<in-batch xmlns='urn:x-skiff:batch:0' first='1'/>",
    ] {
        let el = parse_element(bad.as_bytes()).unwrap();
        assert!(matches!(InBatch::try_from(&el), Err(ParseError::Invalid { .. })), "{bad}");
    }
    let other = parse_element(b"<x xmlns='urn:x-skiff:batch:0'/>").unwrap();
    assert!(matches!(InBatch::try_from(&other), Err(ParseError::NotMine { .. })));
    // The entries a run names, none when it leaves the batch (or overflows).
    let entries =
        (0..5).map(|i| Entry { path: RelPath::new(&format!("f{i}")).unwrap(), size: i, sha256: None }).collect();
    let manifest = Manifest::new("b1", "n", entries).unwrap();
    let paths = |r: &InBatch| r.entries(&manifest).map(|e| e.iter().map(|e| e.path.to_string()).collect::<Vec<_>>());
    assert_eq!(paths(&m), Some(vec!["f2".to_owned(), "f3".into(), "f4".into()]));
    assert_eq!(paths(&InBatch { first: 3, ..m.clone() }), None);
    assert_eq!(paths(&InBatch { first: u64::MAX, count: 2, ..m.clone() }), None);
}

#[test]
fn a_receipt_lists_the_runs_held_and_round_trips() {
    let done = [true, true, false, true, false, false, true];
    let r = Received::from_flags("b1", &done);
    assert_eq!(r.have, [(0, 2), (3, 1), (6, 1)]);
    let el = Element::from(&r);
    assert_eq!(
        el.to_xml(),
        "<received xmlns='urn:x-skiff:batch:0' id='b1'><have first='0' count='2'/><have first='3' count='1'/>\
         <have first='6' count='1'/></received>"
    );
    let back = Received::try_from(&el).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.flags(7).unwrap(), done);
    // Runs past the batch's end, or overflowing, are refused.
    assert!(back.flags(6).is_err());
    assert!(Received { id: "b".into(), have: vec![(u64::MAX, 2)] }.flags(10).is_err());
    assert_eq!(Received::from_flags("b", &[false; 3]).have, []);
}
