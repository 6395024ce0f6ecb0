//! Header validation against arbitrary bytes: random inputs (proptest; `PROPTEST_CASES` raises the count for a
//! long fuzz run) and a regression corpus of inputs that once mattered (`tests/corpus/header/*.hex`: 256 header
//! bytes then the 8-byte mapping length, little-endian, in hex; the file name starts with the expected outcome).
//!
//! The property: validation is total (no panic, no loop) and, when it accepts, the payload lies inside the
//! mapping, aligned, and every field matches the expected fingerprint.

use core::sync::atomic::{AtomicU8, Ordering};
use proptest::prelude::*;
use shmfusion::object::{self, Fingerprint, Header, HeaderError, MAGIC, READY, validate};

fn expected() -> Fingerprint {
    Fingerprint {
        kind_hash: object::fnv1a(b"spsc-ring"),
        type_id: 7,
        size: 4160,
        align: 64,
        capacity: 64,
        element_size: 64,
    }
}

/// Puts `bytes` into a real, aligned header (through atomics, as a hostile peer would) and validates it.
fn check(bytes: &[u8; 256], mapping_len: u64) -> Result<u64, HeaderError> {
    let header = Box::new(Header::default());
    // SAFETY: `Header` is 256 bytes of atomics; viewing it as atomic bytes and storing through them is sound.
    let cells = unsafe { core::slice::from_raw_parts((&*header as *const Header).cast::<AtomicU8>(), 256) };
    for (cell, b) in cells.iter().zip(bytes) {
        cell.store(*b, Ordering::Relaxed);
    }
    let fp = expected();
    let result = validate(&header.snapshot(), &fp, mapping_len);
    if let Ok(offset) = result {
        assert!(
            offset.checked_add(fp.size).is_some_and(|end| end <= mapping_len),
            "payload out of bounds"
        );
        assert_eq!(offset % u64::from(fp.align), 0, "payload misaligned");
        assert!(offset >= 256, "payload overlaps the header");
    }
    result
}

/// A valid header for `expected()`, as the creator would publish it.
fn valid_bytes() -> [u8; 256] {
    let header = Header::default();
    let fp = expected();
    header.publish(&fp, object::total_size_of(&fp).unwrap(), 0, 0);
    let mut out = [0u8; 256];
    // SAFETY: as in `check`.
    let cells = unsafe { core::slice::from_raw_parts((&header as *const Header).cast::<AtomicU8>(), 256) };
    for (o, c) in out.iter_mut().zip(cells) {
        *o = c.load(Ordering::Relaxed);
    }
    out
}

#[test]
fn a_valid_header_is_accepted_and_every_single_byte_flip_is_handled() {
    let good = valid_bytes();
    assert_eq!(check(&good, 8192), Ok(256));
    assert_eq!(u64::from_le_bytes(good[..8].try_into().unwrap()), MAGIC);
    for i in 0..256 {
        for bit in 0..8 {
            let mut b = good;
            b[i] ^= 1 << bit;
            let _ = check(&b, 8192);
        }
    }
}

#[test]
fn corpus_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/header");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let hex: String = text.split_whitespace().collect();
        let raw: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(raw.len(), 264, "{}", path.display());
        let bytes: [u8; 256] = raw[..256].try_into().unwrap();
        let len = u64::from_le_bytes(raw[256..].try_into().unwrap());
        let result = check(&bytes, len);
        let name = path.file_name().unwrap().to_str().unwrap();
        let outcome = match result {
            Ok(_) => "ok",
            Err(HeaderError::TooShort { .. }) => "tooshort",
            Err(HeaderError::NotShmfusion { .. }) => "foreign",
            Err(HeaderError::Endianness) => "endian",
            Err(HeaderError::Version { .. }) => "version",
            Err(HeaderError::NotReady { .. }) => "notready",
            Err(HeaderError::Type { .. }) => "type",
            Err(HeaderError::Layout { .. }) => "layout",
            Err(HeaderError::Corrupt(_)) => "corrupt",
            Err(HeaderError::Truncated { .. }) => "truncated",
        };
        assert!(name.starts_with(outcome), "{name}: got {result:?}");
        seen += 1;
    }
    assert!(seen >= 10, "the corpus has {seen} inputs");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(20_000)
    ))]

    /// Entirely random headers: total, bounds-safe.
    #[test]
    fn random_headers_never_break_validation(bytes in proptest::array::uniform32(any::<[u8; 8]>()), len in any::<u64>()) {
        let flat: [u8; 256] = bytes.concat().try_into().unwrap();
        let _ = check(&flat, len);
    }

    /// A valid header with a few random fields overwritten: reaches the deep checks.
    #[test]
    fn mutated_valid_headers_never_break_validation(
        edits in proptest::collection::vec((0usize..32, any::<u64>()), 1..4),
        len in prop_oneof![Just(8192u64), 0u64..16384, any::<u64>()],
    ) {
        let mut b = valid_bytes();
        for (word, value) in edits {
            b[word * 8..word * 8 + 8].copy_from_slice(&value.to_le_bytes());
        }
        let _ = check(&b, len);
    }
}

#[test]
fn state_ready_constant_is_what_publish_writes() {
    assert_eq!(u32::from_le_bytes(valid_bytes()[12..16].try_into().unwrap()), READY);
}
