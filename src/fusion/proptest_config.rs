//! Shared proptest configuration for the fusion property tests.

extern crate std;

use proptest::test_runner::Config;

/// `host_cases` cases on x86_64, a quarter on i686 (native too, but the logic under test is the same: the
/// 32-bit run is there for width-dependent arithmetic), an eighth (at least 16) on other architectures, which run
/// under qemu-user and are about an order of magnitude slower. `PROPTEST_CASES` overrides all.
/// Failures are not persisted to files.
pub(crate) fn config(host_cases: u32) -> Config {
    config_scaled(host_cases, 8)
}

/// As [`config`], with `host_cases / emulated_divisor` (at least 16) under emulation, for tests whose cases are
/// long enough that an eighth would take minutes under qemu-user.
pub(crate) fn config_scaled(host_cases: u32, emulated_divisor: u32) -> Config {
    let cases = match std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None if cfg!(target_arch = "x86_64") => host_cases,
        None if cfg!(target_arch = "x86") => (host_cases / 4).max(16),
        None => (host_cases / emulated_divisor).max(16),
    };
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
