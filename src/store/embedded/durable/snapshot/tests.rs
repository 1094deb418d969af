use super::*;
use crate::record::{Priority, SameSite};
use crate::store::embedded::durable::format::columns::{encode, Expires, Ints};
use crate::store::embedded::durable::format::columns::{Batch, SnapChunk};
use crate::store::embedded::durable::format::cookie::put_cookie;
use std::sync::Arc;

type Entry = (String, Record, i64);

fn cookie(path: &str, max_age: Option<i64>, deadline: i64) -> CookieRecord {
    CookieRecord {
        original_max_age: max_age,
        expires: max_age.map(|_| deadline),
        path: Arc::from(path),
        ..CookieRecord::default()
    }
}

fn entry(sid: &str, cookie: CookieRecord, deadline: i64, data: &str) -> Entry {
    let data = Data::from_trusted(data);
    (sid.to_owned(), Record { cookie, data }, deadline)
}

/// The file of one chunk holding `entries` as the writer lays them out.
fn file_of(entries: &[Entry]) -> Vec<u8> {
    let mut batch = Batch::default();
    for (sid, record, deadline) in entries {
        batch.push(sid, record, *deadline);
    }
    file_with(entries.len() as u32, &batch.take())
}

fn file_with(count: u32, chunk: &SnapChunk) -> Vec<u8> {
    frame(7, &[(count, &encode(chunk).unwrap())])
}

fn load_all(bytes: &[u8]) -> Result<Vec<Entry>, StoreError> {
    let mut copy = AlignedVec::<16>::new();
    copy.extend_from_slice(bytes);
    let mut out = Vec::new();
    load("snap-t", &copy, |s, r, d| out.push((s, r, d)))?;
    Ok(out)
}

/// The reason loading `bytes` fails with (it names the file).
fn refusal(bytes: &[u8]) -> String {
    let e = load_all(bytes).expect_err("must be refused").to_string();
    assert!(e.contains("snapshot snap-t at offset "), "{e}");
    e
}

/// A valid two-entry chunk to spoil one column of.
fn two() -> SnapChunk {
    let mut batch = Batch::default();
    for (sid, record, deadline) in [
        entry("a", cookie("/", Some(5), 100), 100, "{}"),
        entry("bé", cookie("/x", None, 50), 50, r#"{"é":1}"#),
    ] {
        batch.push(sid.as_ref(), &record, deadline);
    }
    let chunk = batch.take();
    assert!(load_all(&file_with(2, &chunk)).is_ok());
    chunk
}

#[test]
fn a_chunk_with_several_shapes_round_trips() {
    let mut odd = cookie("/", Some(60_000), 0);
    odd.secure = Some(true);
    odd.domain = Some(Arc::from("example.com"));
    odd.same_site = Some(SameSite::Strict);
    odd.priority = Some(Priority::High);
    odd.partitioned = Some(false);
    let mut entries = Vec::new();
    for i in 0..300i64 {
        let deadline = 1_700_000_000_000 + i * 7_919;
        let c = match i % 3 {
            0 => cookie("/", Some(60_000), deadline),
            1 => cookie("/", None, deadline),
            _ => CookieRecord {
                expires: Some(deadline),
                ..odd.clone()
            },
        };
        // Lengths past a byte, text past ASCII.
        let data = format!(r#"{{"n":"{}"}}"#, "é".repeat(i as usize));
        entries.push(entry(&format!("sid-{i}"), c, deadline, &data));
    }
    // A cookie whose `expires` is not its deadline comes back as it went in.
    entries[4].1.cookie.expires = Some(12);
    assert_eq!(load_all(&file_of(&entries)).unwrap(), entries);
    // Every deadline and length the same; an empty chunk.
    let same: Vec<Entry> = (0..5)
        .map(|i| entry(&format!("s{i}"), cookie("/", Some(1), -3), -3, "{}"))
        .collect();
    assert_eq!(load_all(&file_of(&same)).unwrap(), same);
    assert_eq!(load_all(&file_of(&[])).unwrap(), []);
    // Deadlines spread past 32 bits.
    let far = [
        entry("a", cookie("/", Some(1), i64::MIN), i64::MIN, "{}"),
        entry("b", cookie("/", Some(1), i64::MAX), i64::MAX, "{}"),
    ];
    assert_eq!(load_all(&file_of(&far)).unwrap(), far);
}

#[test]
fn written_files_round_trip_over_several_chunks() {
    let fs = crate::store::embedded::durable::fault::FaultStorage::new();
    let dir = Path::new("/s");
    fs.create_dir(dir).unwrap();
    let entries: Vec<Entry> = (0..CHUNK as i64 + 10)
        .map(|i| entry(&format!("{i:032}"), cookie("/", Some(9), i), i, "{}"))
        .collect();
    let input = entries.iter().map(|(s, r, d)| (s.as_str(), r.clone(), *d));
    write(&fs, dir, 42, input).unwrap();
    let bytes = fs.contents(&dir.join(snapshot_name(42))).unwrap();
    assert_eq!(header_cut(&bytes), Some(42));
    let mut out = Vec::new();
    let mut counted = 0;
    let cut = load_counted("t", &bytes, |n| counted = n, |s, r, d| out.push((s, r, d)));
    assert_eq!((cut.unwrap(), counted), (42, entries.len()));
    assert_eq!(out, entries);
}

#[test]
fn every_truncation_and_bit_flip_is_refused() {
    let entries = [
        entry("a", cookie("/", Some(5), 100), 100, "{}"),
        entry("b", cookie("/", Some(5), 900), 900, r#"{"x":1}"#),
    ];
    let bytes = file_of(&entries);
    for len in 0..bytes.len() {
        refusal(&bytes[..len]);
    }
    // A flip is refused, or is in bytes that carry nothing (reserved header and footer
    // bytes, padding) and the entries load unchanged.
    let mut refused = 0;
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 1 << (at % 8);
        match load_all(&b) {
            Ok(got) => assert_eq!(got, entries, "flip at {at}"),
            Err(_) => refused += refusal(&b).len().min(1),
        }
    }
    assert!(refused + 32 >= bytes.len(), "{refused} of {}", bytes.len());
}

#[test]
fn a_corrupt_shape_index_is_refused() {
    let mut chunk = two();
    chunk.shape_of = Ints::U8(vec![0, 2]);
    let e = refusal(&file_with(2, &chunk));
    assert!(e.contains("shape index out of range"), "{e}");
}

#[test]
fn a_bad_cookie_shape_is_refused() {
    for bad in [vec![0xff; 6], Vec::new()] {
        let mut chunk = two();
        chunk.shapes[1] = bad;
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("invalid cookie shape"), "{e}");
    }
    // A shape's bytes are all used; its `expires` is a placeholder 0.
    let mut chunk = two();
    chunk.shapes[1].push(0);
    assert!(refusal(&file_with(2, &chunk)).contains("invalid cookie shape"));
    let mut chunk = two();
    let mut c = cookie("/", Some(5), 1);
    c.expires = Some(1);
    chunk.shapes[0].clear();
    put_cookie(&mut chunk.shapes[0], &c);
    assert!(refusal(&file_with(2, &chunk)).contains("invalid cookie shape"));
}

#[test]
fn lengths_that_do_not_match_are_refused() {
    // A column shorter than the header's count, or a count the columns do not hold.
    let mut chunk = two();
    chunk.data_lens = Ints::U32(vec![2]);
    let e = refusal(&file_with(2, &chunk));
    assert!(e.contains("entry count mismatch"), "{e}");
    let e = refusal(&file_with(3, &two()));
    assert!(e.contains("entry count mismatch"), "{e}");
    // A count over a chunk's, even one that every column holds (each one value for all).
    let same = SnapChunk {
        shapes: two().shapes,
        shape_of: Ints::Same(0),
        deadline_base: 0,
        deadlines: Ints::Same(0),
        expires: Vec::new(),
        sid_lens: Ints::Same(0),
        data_lens: Ints::Same(0),
        text: String::new(),
    };
    let n = CHUNK as u32;
    assert_eq!(
        load_all(&file_with(n, &same)).map(|v| v.len()).ok(),
        Some(CHUNK)
    );
    let e = refusal(&file_with(n + 1, &same));
    assert!(e.contains("entry count 4097 over 4096"), "{e}");
    let e = refusal(&file_with(u32::MAX, &same));
    assert!(e.contains("over 4096"), "{e}");
    // Lengths past the text, or short of it.
    let mut chunk = two();
    chunk.sid_lens = Ints::U16(vec![1, 300]);
    let e = refusal(&file_with(2, &chunk));
    assert!(e.contains("lengths exceed the text"), "{e}");
    let mut chunk = two();
    chunk.text.push('x');
    let e = refusal(&file_with(2, &chunk));
    assert!(e.contains("lengths do not add up to the text"), "{e}");
    let mut chunk = two();
    chunk.data_lens = Ints::Same(u64::MAX);
    let e = refusal(&file_with(2, &chunk));
    assert!(e.contains("lengths exceed the text"), "{e}");
}

#[test]
fn a_split_inside_a_character_is_refused() {
    // "bé": the id ends inside "é" and the data starts there.
    let mut chunk = two();
    chunk.sid_lens = Ints::U8(vec![1, 2]);
    chunk.data_lens = Ints::U8(vec![2, 9]);
    let e = refusal(&file_with(2, &chunk));
    assert!(e.contains("text split inside a character"), "{e}");
}

#[test]
fn a_bad_expires_list_is_refused() {
    let bad = [
        vec![Expires { at: 2, expires: 1 }],
        // The second entry's shape has no `expires`.
        vec![Expires { at: 1, expires: 1 }],
        vec![Expires { at: 0, expires: 1 }, Expires { at: 0, expires: 2 }],
    ];
    for list in bad {
        let mut chunk = two();
        chunk.expires = list;
        let e = refusal(&file_with(2, &chunk));
        assert!(e.contains("invalid expires list"), "{e}");
    }
}

#[test]
fn a_version_1_file_is_refused_naming_its_version() {
    let mut bytes = file_of(&[]);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..24]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(header_cut(&bytes), None);
    let e = refusal(&bytes);
    assert!(
        e.contains("snapshot version 1 is not read by this build"),
        "{e}"
    );
}

#[test]
fn arbitrary_chunks_load_or_are_refused_without_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut loaded = 0;
    for _ in 0..20_000 {
        let bytes: Vec<u8> = (0..seed % 96)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let (count, chunk) = arbitrary_chunk(&bytes);
        loaded += load_all(&frame(1, &[(count, &chunk)])).is_ok() as usize;
    }
    assert!(loaded > 0);
}
