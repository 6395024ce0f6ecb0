//! The layout report: sizes, alignments, field offsets and layout fingerprints of every shared type of the
//! crate over representative payloads, one line per type.
//!
//! Two programs can share an object only if they agree on every byte of its layout; the header's
//! [`Fingerprint`] is what an opener checks. Everything that could move a byte differently on two targets is
//! either in the fingerprint (payload size and alignment, element size, capacity, kind, type) or pinned to the
//! same value on every target (128-byte line padding, 8-byte payload cells whatever the payload's own alignment,
//! fixed-width atomics). The report makes that checkable: print it on each target (as `cargo xtask test` does on
//! all five) and compare; two lines for the same type must be identical, or else their fingerprints must differ
//! (so that the two programs refuse each other's objects instead of misreading them).
//!
//! ```
//! let mut report = String::new();
//! shmfusion::object::layout::write_report(&mut report).unwrap();
//! assert!(report.lines().any(|l| l.starts_with("shmfusion::buffer::latest::Latest<u128>\t")));
//! ```

use core::fmt::{self, Write};
use core::mem::{align_of, offset_of, size_of};

use super::{Fingerprint, Header, ObjectOptions, SharedState, fnv1a};
use crate::buffer::{BroadcastRing, Latest, SpscRing};
use crate::fusion::{GnssFix, ImuSample, MagSample, Protected, Quaternion, SampleHeader, Stamped};

/// One 64-bit hash of every field of a fingerprint (FNV-1a over their little-endian bytes).
pub fn fingerprint_hash(fp: &Fingerprint) -> u64 {
    let mut bytes = [0u8; 44];
    let parts: [&[u8]; 6] = [
        &fp.kind_hash.to_le_bytes(),
        &fp.type_id.to_le_bytes(),
        &fp.size.to_le_bytes(),
        &fp.align.to_le_bytes(),
        &fp.capacity.to_le_bytes(),
        &fp.element_size.to_le_bytes(),
    ];
    let mut at = 0;
    for p in parts {
        bytes[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    fnv1a(&bytes)
}

/// Writes one line: `type<TAB>size<TAB>align<TAB>field@offset ...<TAB>fingerprint` (`-` for a type that is not
/// a [`SharedState`] on its own and so has no fingerprint).
fn line<T>(out: &mut dyn Write, fields: &[(&str, usize)], fp: Option<&Fingerprint>) -> fmt::Result {
    write!(
        out,
        "{}\t{}\t{}\t",
        core::any::type_name::<T>(),
        size_of::<T>(),
        align_of::<T>()
    )?;
    for (i, (name, offset)) in fields.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        write!(out, "{sep}{name}@{offset}")?;
    }
    match fp {
        Some(fp) => writeln!(
            out,
            "\tfp={:016x} (size {} align {} elements {}x{})",
            fingerprint_hash(fp),
            fp.size,
            fp.align,
            fp.capacity,
            fp.element_size
        ),
        None => writeln!(out, "\t-"),
    }
}

fn shared<S: SharedState>(out: &mut dyn Write, fields: &[(&str, usize)]) -> fmt::Result {
    line::<S>(out, fields, Some(&ObjectOptions::new().fingerprint::<S>()))
}

/// The three buffers over one payload type (capacity 4 for the rings).
fn buffers<T: crate::Shareable>(out: &mut dyn Write) -> fmt::Result {
    shared::<Latest<T>>(out, &Latest::<T>::layout_fields())?;
    shared::<SpscRing<T, 4>>(out, &SpscRing::<T, 4>::layout_fields())?;
    shared::<BroadcastRing<T, 4>>(out, &BroadcastRing::<T, 4>::layout_fields())
}

/// A stamped sample and the buffers over it.
fn stamped<T: crate::fusion::Payload + Send + Sync>(out: &mut dyn Write) -> fmt::Result {
    line::<T>(out, &[], None)?;
    line::<Stamped<T>>(
        out,
        &[
            ("header", offset_of!(Stamped<T>, header)),
            ("payload", offset_of!(Stamped<T>, payload)),
        ],
        None,
    )?;
    buffers::<Stamped<T>>(out)
}

/// Writes the layout report (see the module documentation): the segment header, the sample types, and the
/// SPSC ring, latest-value slot and broadcast ring over `u8`, `u64`, `u128`, `[f64; 3]`, each stamped sensor
/// sample, and an end-to-end [`Protected`] sample.
pub fn write_report(out: &mut dyn Write) -> fmt::Result {
    line::<Header>(
        out,
        &[
            ("magic", offset_of!(Header, magic)),
            ("version", offset_of!(Header, version)),
            ("state", offset_of!(Header, state)),
            ("total_size", offset_of!(Header, total_size)),
            ("payload_offset", offset_of!(Header, payload_offset)),
            ("payload_size", offset_of!(Header, payload_size)),
            ("payload_align", offset_of!(Header, payload_align)),
            ("flags", offset_of!(Header, flags)),
            ("kind_hash", offset_of!(Header, kind_hash)),
            ("type_id", offset_of!(Header, type_id)),
            ("capacity", offset_of!(Header, capacity)),
            ("element_size", offset_of!(Header, element_size)),
            ("creator_uid", offset_of!(Header, creator_uid)),
            ("creator", offset_of!(Header, creator)),
        ],
        None,
    )?;
    line::<SampleHeader>(
        out,
        &[
            ("stamp", offset_of!(SampleHeader, stamp)),
            ("seq", offset_of!(SampleHeader, seq)),
            ("channel", offset_of!(SampleHeader, channel)),
            ("flags", offset_of!(SampleHeader, flags)),
        ],
        None,
    )?;
    buffers::<u8>(out)?;
    buffers::<u64>(out)?;
    buffers::<u128>(out)?;
    buffers::<[f64; 3]>(out)?;
    stamped::<ImuSample>(out)?;
    stamped::<MagSample>(out)?;
    stamped::<GnssFix>(out)?;
    stamped::<Quaternion>(out)?;
    line::<Protected<Stamped<ImuSample>>>(out, &Protected::<Stamped<ImuSample>>::layout_fields(), None)?;
    buffers::<Protected<Stamped<ImuSample>>>(out)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn payload_cells_sit_at_the_same_offsets_whatever_the_payload_alignment() {
        // u128 is 16-aligned on x86_64/aarch64/riscv64 and 8-aligned on armv7: the cells must not follow it.
        assert_eq!(Latest::<u128>::layout_fields(), Latest::<[u64; 2]>::layout_fields());
        assert_eq!(Latest::<u128>::layout_fields()[1], ("copy0", 8));
        assert_eq!(
            SpscRing::<u128, 4>::layout_fields(),
            SpscRing::<[u64; 2], 4>::layout_fields()
        );
        assert_eq!(
            BroadcastRing::<u128, 4>::layout_fields(),
            BroadcastRing::<[u64; 2], 4>::layout_fields()
        );
        assert_eq!(BroadcastRing::<u128, 4>::layout_fields()[4], ("slot0.data", 264));
    }

    #[test]
    fn report_has_one_line_per_type_and_writes_it_where_asked() {
        let mut report = std::string::String::new();
        write_report(&mut report).unwrap();
        let lines: std::vec::Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 2 + 4 * 3 + 4 * 5 + 4);
        assert!(lines.iter().all(|l| l.split('\t').count() == 5), "{report}");
        // `cargo xtask test` collects the report of every target and compares them.
        if let Some(path) = std::env::var_os("SHMFUSION_LAYOUT_REPORT") {
            std::fs::write(path, &report).unwrap();
        }
    }
}
