//! The cross-target layout check: every target's `lib` run writes the crate's layout report
//! (`shmfusion::object::layout::write_report`: one line per shared type, `name<TAB>size<TAB>align<TAB>
//! offsets<TAB>fingerprint`); here they are compared. For each type, the targets that agree on
//! the fingerprint must agree on every byte of the line, or two programs built for them would
//! open each other's objects and misread them.

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
                if line != &first {
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
}
