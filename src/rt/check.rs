//! A tiny check harness for self-test programs: prints `ok <name>` or `FAIL <name>: <detail>` per check and a
//! final `<program>: N passed, M failed` line that test drivers parse from a console.
//!
//! ```no_run
//! # use shmfusion::rt::check::Checks;
//! let mut checks = Checks::new();
//! checks.check("two plus two", 2 + 2 == 4);
//! checks.check("parse", "42".parse::<u8>());
//! checks.check_that("page size", 4096 % 512 == 0, format_args!("got {}", 4096));
//! let status = checks.summary("my-selftest");
//! ```

use core::fmt;

/// The result of one check: passed, or failed with a printable detail.
pub trait Outcome {
    /// Whether the check passed.
    fn passed(&self) -> bool;
    /// Writes why the check failed (called only when it did).
    fn fmt_failure(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl Outcome for bool {
    fn passed(&self) -> bool {
        *self
    }
    fn fmt_failure(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("condition is false")
    }
}

impl<T, E: fmt::Debug> Outcome for Result<T, E> {
    fn passed(&self) -> bool {
        self.is_ok()
    }
    fn fmt_failure(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ok(_) => Ok(()),
            Err(e) => write!(f, "{e:?}"),
        }
    }
}

impl<T> Outcome for Option<T> {
    fn passed(&self) -> bool {
        self.is_some()
    }
    fn fmt_failure(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("got None")
    }
}

/// Displays an [`Outcome`]'s failure detail.
struct Failure<'a, O: ?Sized>(&'a O);

impl<O: Outcome + ?Sized> fmt::Display for Failure<'_, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_failure(f)
    }
}

/// Counts and reports checks. Output goes to stdout.
#[derive(Debug, Default)]
pub struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    /// No checks run yet.
    pub const fn new() -> Self {
        Checks { passed: 0, failed: 0 }
    }

    /// Records and prints one check; returns whether it passed.
    pub fn check<O: Outcome>(&mut self, name: &str, outcome: O) -> bool {
        let ok = outcome.passed();
        if ok {
            self.passed += 1;
            crate::rt::println!("ok {name}");
        } else {
            self.failed += 1;
            crate::rt::println!("FAIL {name}: {}", Failure(&outcome));
        }
        ok
    }

    /// Records and prints one check with a failure detail of the caller's choosing (formatted only on failure);
    /// returns `ok`.
    pub fn check_that(&mut self, name: &str, ok: bool, detail: fmt::Arguments<'_>) -> bool {
        if ok {
            self.passed += 1;
            crate::rt::println!("ok {name}");
        } else {
            self.failed += 1;
            crate::rt::println!("FAIL {name}: {detail}");
        }
        ok
    }

    /// The number of checks that passed.
    pub fn passed(&self) -> u32 {
        self.passed
    }

    /// The number of checks that failed.
    pub fn failed(&self) -> u32 {
        self.failed
    }

    /// Prints `<program>: N passed, M failed` and returns the exit status: 0 iff no check failed, else 1.
    pub fn summary(&self, program: &str) -> i32 {
        crate::rt::println!("{program}: {} passed, {} failed", self.passed, self.failed);
        i32::from(self.failed != 0)
    }
}
