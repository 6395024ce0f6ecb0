//! The cross-target layout check: every target's `lib` run writes the crate's layout report
//! (`shmfusion::object::layout::write_report`: one line per shared type, `name<TAB>size<TAB>align<TAB>
//! offsets<TAB>fingerprint`); here they are compared. For each type, the targets that agree on
//! the fingerprint must agree on every byte of the line, or two programs built for them would
//! open each other's objects and misread them. A line without a fingerprint (`-`: a sample or
//! element type, never shared on its own) is compared without its alignment column: an element's
//! own alignment moves none of its bytes (its size and field offsets do, and are compared), and
//! where it sits inside a shared type is pinned (8-byte payload cells) and checked on that type's
//! own line. So `u64` fields aligned to 4 on i686 and to 8 elsewhere are no mismatch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::report::Counts;

/// Where the lib tests of `triple` write the report (`SHMFUSION_LAYOUT_REPORT`).
pub fn report_path(target_dir: &Path, triple: &str) -> PathBuf {
    target_dir.join("xtask-layout").join(format!("{triple}.txt"))
}

/// For one type: fingerprint -> (target, line) of each target that reported it.
type ByFingerprint<'a> = BTreeMap<&'a str, Vec<(&'a str, &'a str)>>;

/// Compares the reports (target, text): one count per type; the details name every mismatch.
pub fn compare(reports: &[(&str, String)]) -> (Counts, Vec<String>) {
    let mut types: BTreeMap<&str, ByFingerprint> = BTreeMap::new();
    for (target, text) in reports {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let name = line.split('\t').next().unwrap_or(line);
            let fp = line.rsplit('\t').next().unwrap_or("");
            types
                .entry(name)
                .or_default()
                .entry(fp)
                .or_default()
                .push((target, line));
        }
    }
    let mut counts = Counts::default();
    let mut problems = Vec::new();
    for (name, by_fp) in &types {
        let mut ok = true;
        for (fp, lines) in by_fp {
            let (first_target, first) = lines[0];
            for (target, line) in &lines[1..] {
                if comparable(line, fp) != comparable(first, fp) {
                    ok = false;
                    problems.push(format!(
                        "{name}: same fingerprint {fp} but another layout\n      {first_target}: {first}\n      {target}: {line}"
                    ));
                }
            }
        }
        let seen: usize = by_fp.values().map(Vec::len).sum();
        if seen != reports.len() {
            ok = false;
            problems.push(format!("{name}: reported by {seen} of {} targets", reports.len()));
        }
        counts.add(if ok { Counts::PASS } else { Counts::FAIL });
    }
    (counts, problems)
}

/// The part of a report line that must agree across targets (see the module docs).
fn comparable<'a>(line: &'a str, fingerprint: &str) -> Vec<&'a str> {
    let mut columns: Vec<&str> = line.split('\t').collect();
    if fingerprint == "-" && columns.len() > 2 {
        columns.remove(2);
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_fingerprint_needs_the_same_line_and_every_target_reports_every_type() {
        let a = "Latest<u128>\t384\t128\tseq@0 copy0@8\tfp=1\nHeader\t256\t64\tmagic@0\t-\n".to_string();
        let same = a.clone();
        let moved = "Latest<u128>\t384\t128\tseq@0 copy0@16\tfp=1\nHeader\t256\t64\tmagic@0\t-\n".to_string();
        let refused = "Latest<u128>\t384\t128\tseq@0 copy0@16\tfp=2\nHeader\t256\t64\tmagic@0\t-\n".to_string();
        let (c, p) = compare(&[("x86_64", a.clone()), ("riscv64", same)]);
        assert_eq!((c.passed, c.failed, p.len()), (2, 0, 0));
        let (c, p) = compare(&[("aarch64", a.clone()), ("armv7", moved)]);
        assert_eq!((c.passed, c.failed), (1, 1));
        assert!(p[0].contains("copy0@16"), "{p:?}");
        let (c, _) = compare(&[("aarch64", a.clone()), ("armv7", refused)]);
        assert_eq!((c.passed, c.failed), (2, 0));
        let (c, p) = compare(&[("aarch64", a), ("armv7", "Header\t256\t64\tmagic@0\t-\n".into())]);
        assert_eq!((c.passed, c.failed), (1, 1));
        assert!(p[0].contains("1 of 2"), "{p:?}");
    }

    #[test]
    fn an_unshared_element_may_differ_in_alignment_but_not_in_size_or_offsets() {
        let x86_64 = "Stamped<Imu>\t48\t8\theader@0 payload@24\t-\n".to_string();
        let i686 = "Stamped<Imu>\t48\t4\theader@0 payload@24\t-\n".to_string();
        let (c, p) = compare(&[("x86_64", x86_64.clone()), ("i686", i686)]);
        assert_eq!((c.passed, c.failed, p.len()), (1, 0, 0), "{p:?}");
        let moved = "Stamped<Imu>\t48\t4\theader@0 payload@20\t-\n".to_string();
        let (c, _) = compare(&[("x86_64", x86_64.clone()), ("i686", moved)]);
        assert_eq!((c.passed, c.failed), (0, 1));
        let shorter = "Stamped<Imu>\t44\t4\theader@0 payload@24\t-\n".to_string();
        let (c, _) = compare(&[("x86_64", x86_64), ("i686", shorter)]);
        assert_eq!((c.passed, c.failed), (0, 1));
        // A shared type keeps its alignment in the comparison.
        let a = "Latest<T>\t384\t128\tseq@0\tfp=1\n".to_string();
        let b = "Latest<T>\t384\t64\tseq@0\tfp=1\n".to_string();
        let (c, _) = compare(&[("a", a), ("b", b)]);
        assert_eq!((c.passed, c.failed), (0, 1));
    }
}
