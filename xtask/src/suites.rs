//! The suites: library tests, and the static programs (build, run, boot, ELF check).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::elf;
use crate::proc::{self, Output, Took};
use crate::qemu;
use crate::report::Counts;
use crate::targets::{Kernel, Program, Target};

pub const HOST: &str = "x86_64-unknown-linux-gnu";
/// A guard against hangs only: a cold cross test build takes a few minutes.
pub const CARGO_TIMEOUT: Duration = Duration::from_secs(1200);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Static, libc-free linking: rust-lld, no PIE, no C runtime. `link-self-contained=no` keeps
/// rustc from adding musl's crt1.o (its own `_start`) on i686-unknown-linux-musl.
const STATIC_RUSTFLAGS: &[&str] = &[
    "-C",
    "linker=rust-lld",
    "-C",
    "linker-flavor=ld.lld",
    "-C",
    "relocation-model=static",
    "-C",
    "target-feature=+crt-static",
    "-C",
    "link-self-contained=no",
    // Leaves out the test-only dev-dependencies (Cargo.toml), which cargo builds for any example.
    "--cfg",
    "shmfusion_static_programs",
];

/// [`STATIC_RUSTFLAGS`] and the runtime's linker script, which drops the unwind tables no
/// panic of an `rt` program reads (see `src/rt/no-unwind.ld`), as `CARGO_ENCODED_RUSTFLAGS`
/// (one argument per field, so a checkout path with spaces stays one argument).
fn static_rustflags(root: &Path) -> String {
    let script = format!("link-arg=-T{}", root.join("src/rt/no-unwind.ld").display());
    let mut flags: Vec<&str> = STATIC_RUSTFLAGS.to_vec();
    flags.extend(["-C", &script, "-C", "link-arg=--no-eh-frame-hdr"]);
    flags.join("\x1f")
}

#[derive(Clone)]
pub struct Ctx {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub cargo: String,
    /// Passed to `cargo test` as given after `--`.
    pub test_args: Vec<String>,
    /// argv for the static programs (after `--` on the kernel command line).
    pub program_args: Vec<String>,
    /// The selected targets (host suites that check every target, such as `capi`, use these).
    pub targets: Vec<&'static crate::targets::Target>,
}

/// Prints a result line for a target (or `host`), and details below it when something failed.
pub fn say(who: &str, suite: &str, c: Counts, took: Took, details: &str) {
    println!("[{who}] {suite}: {} passed, {} failed ({took})", c.passed, c.failed);
    if c.failed > 0 && !details.trim().is_empty() {
        for line in details.trim_end().lines() {
            println!("    {line}");
        }
    }
}

/// `cargo test`: unit and integration tests, and doc tests on the host only (cross doc tests
/// would compile and link every example separately, for little gain).
pub fn lib(ctx: &Ctx, t: &Target) -> Counts {
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root)
        .args(["test", "-p", "shmfusion", "--no-fail-fast", "--target", t.triple]);
    if t.triple != HOST {
        cmd.args(["--lib", "--tests"]);
    }
    // The layout report of this target, for the cross-target comparison (`layout.rs`).
    let report = crate::layout::report_path(&ctx.target_dir, t.triple);
    let _ = fs::remove_file(&report);
    if let Some(dir) = report.parent() {
        let _ = fs::create_dir_all(dir);
    }
    cmd.env("SHMFUSION_LAYOUT_REPORT", &report);
    quick_profile(&mut cmd);
    cmd.args(&ctx.test_args);
    cargo_test(t.triple, "lib", &mut cmd)
}

/// Builds `examples/<name>.rs` for this machine as the x86_64 `lib` suite does (`--target`, the quick profile),
/// so that when that suite ran (its `cargo test` builds every example) nothing is compiled; returns its path.
pub fn host_example(ctx: &Ctx, name: &str) -> Result<PathBuf, String> {
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root)
        .args(["build", "-p", "shmfusion", "--example", name, "--target", HOST]);
    quick_profile(&mut cmd);
    let out = proc::run(&mut cmd, CARGO_TIMEOUT).map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.success() {
        return Err(format!(
            "{}\ncargo build --example {name}: {}",
            excerpt(&out.text),
            out.describe(CARGO_TIMEOUT)
        ));
    }
    Ok(ctx.target_dir.join(HOST).join("debug/examples").join(name))
}

/// Optimised a little, with line tables only: under qemu-user the property tests ran 25x
/// faster than unoptimised and the cold build took a third of the time, while debug
/// assertions and overflow checks stay on. No LTO, not even rustc's default thin LTO across one
/// crate's codegen units: it took a fifth of the unit tests' compile time.
pub fn quick_profile(cmd: &mut Command) {
    for profile in ["DEV", "TEST"] {
        cmd.env(format!("CARGO_PROFILE_{profile}_OPT_LEVEL"), "1");
        cmd.env(format!("CARGO_PROFILE_{profile}_DEBUG"), "line-tables-only");
        cmd.env(format!("CARGO_PROFILE_{profile}_LTO"), "off");
    }
}

/// Runs a `cargo test` command and counts libtest's results.
pub fn cargo_test(who: &str, suite: &str, cmd: &mut Command) -> Counts {
    let out = match proc::run(cmd, CARGO_TIMEOUT) {
        Ok(out) => out,
        Err(e) => {
            say(
                who,
                suite,
                Counts::FAIL,
                Took::default(),
                &format!("cannot run cargo: {e}"),
            );
            return Counts::FAIL;
        }
    };
    let mut c = test_results(&out.text);
    // A build failure, a crashed test binary or a timeout prints no failing result line.
    if !out.success() && c.failed == 0 {
        c.failed += 1;
    }
    let details = format!("{}\ncargo: {}", excerpt(&out.text), out.describe(CARGO_TIMEOUT));
    say(who, suite, c, out.took(), &details);
    c
}

/// Sums every `test result: ok. N passed; M failed; ...` line of libtest.
fn test_results(text: &str) -> Counts {
    let mut c = Counts::default();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        let words: Vec<&str> = rest.split([' ', ';']).filter(|w| !w.is_empty()).collect();
        for w in words.windows(2) {
            match (w[0].parse::<u32>(), w[1]) {
                (Ok(n), "passed") => c.passed += n,
                (Ok(n), "failed") => c.failed += n,
                _ => {}
            }
        }
    }
    c
}

/// The useful part of a failed cargo run: the tests' `failures:` blocks (panic messages and
/// names), or else the compiler's errors, or else the last lines.
pub fn excerpt(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut inside = false;
    for l in &lines {
        inside |= *l == "failures:";
        // A crashed test binary prints no `failures:`, only cargo's note and qemu's signal line.
        if inside || l.contains("process didn't exit successfully") || l.starts_with("qemu: uncaught") {
            out.push(*l);
        }
        inside &= !l.starts_with("test result:");
    }
    if out.is_empty()
        && let Some(i) = lines.iter().position(|l| l.starts_with("error"))
    {
        out = lines[i..].to_vec();
    }
    if out.is_empty() {
        out = lines[lines.len().saturating_sub(30)..].to_vec();
    }
    // Backtraces make this long; the panic message and location come before them.
    let mut backtrace = false;
    out.retain(|l| {
        backtrace = (backtrace || l.starts_with("stack backtrace:")) && !l.is_empty();
        !backtrace && !l.starts_with("note: Some details")
    });
    out.truncate(150);
    out.join("\n")
}

/// A static program built for one target.
pub struct Built {
    /// With symbols, for the ELF check.
    pub unstripped: PathBuf,
    /// What runs and what is measured.
    pub stripped: PathBuf,
    pub size: u64,
}

/// Builds all programs for `t` in one cargo call, in a target dir of its own so that the
/// static RUSTFLAGS do not invalidate the test build. Symbols are kept (strip=false) for the
/// ELF check, and a stripped copy is made with binutils.
pub fn build_static(ctx: &Ctx, t: &Target, programs: &[&Program]) -> Vec<Result<Built, String>> {
    let dir = ctx.target_dir.join("xtask-static");
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root)
        .args(["build", "-p", "shmfusion", "--features", "rt", "--profile", "static"])
        .args([
            "--config",
            "profile.static.strip=false",
            "--target",
            t.triple,
            "--target-dir",
        ])
        .arg(&dir)
        .env("CARGO_ENCODED_RUSTFLAGS", static_rustflags(&ctx.root))
        .env_remove("RUSTFLAGS");
    if t.triple != HOST {
        // Overrides the cross gcc of .cargo/config.toml. Not for the host: there the same
        // setting would also link the build scripts, which need the C library.
        let var = format!("CARGO_TARGET_{}_LINKER", t.triple.to_uppercase().replace('-', "_"));
        cmd.env(var, "rust-lld");
    }
    let mut present = Vec::new();
    for p in programs {
        if ctx.root.join(format!("examples/{}.rs", p.example)).exists() {
            cmd.args(["--example", p.example]);
            present.push(p.example);
        }
    }
    let build = if present.is_empty() {
        None
    } else {
        Some(proc::run(&mut cmd, CARGO_TIMEOUT))
    };
    if let Some(Ok(out)) = &build {
        let (what, took) = (out.describe(CARGO_TIMEOUT), out.took());
        println!("[{}] static build: {} ({what}, {took})", t.triple, present.join(" "));
    }
    let build_error = match &build {
        Some(Ok(out)) if out.success() => None,
        Some(Ok(out)) => Some(format!(
            "static build: {}\n{}",
            out.describe(CARGO_TIMEOUT),
            excerpt(&out.text)
        )),
        Some(Err(e)) => Some(format!("cannot run cargo: {e}")),
        None => None,
    };
    programs
        .iter()
        .map(|p| {
            if !present.contains(&p.example) {
                return Err(format!("examples/{}.rs does not exist", p.example));
            }
            if let Some(e) = &build_error {
                return Err(e.clone());
            }
            let unstripped = dir.join(t.triple).join("static/examples").join(p.example);
            let stripped = unstripped.with_extension("stripped");
            let out = Command::new(t.strip).arg("-o").arg(&stripped).arg(&unstripped).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => return Err(format!("{}: {}", t.strip, String::from_utf8_lossy(&o.stderr))),
                Err(e) => return Err(format!("{}: {e}", t.strip)),
            }
            let size = fs::metadata(&stripped).map_err(|e| e.to_string())?.len();
            Ok(Built {
                unstripped,
                stripped,
                size,
            })
        })
        .collect()
}

/// Reports a program that could not be built: one failure in each of its cells.
pub fn not_built(t: &Target, p: &Program, suite: &str, why: &str) -> Counts {
    say(
        t.triple,
        &format!("{}{suite}", p.example),
        Counts::FAIL,
        Took::default(),
        why,
    );
    Counts::FAIL
}

/// Runs the program natively, or under qemu-user for foreign targets.
pub fn run_user(ctx: &Ctx, t: &Target, p: &Program, b: &Built) -> Counts {
    let mut cmd = match t.qemu_user {
        Some(qemu) => {
            let mut c = Command::new(qemu);
            c.arg(&b.stripped);
            c
        }
        None => Command::new(&b.stripped),
    };
    cmd.args(&ctx.program_args);
    let suite = p.example.to_string();
    match proc::run(&mut cmd, RUN_TIMEOUT) {
        Ok(out) => program_result(t, &suite, p, &out, true),
        Err(e) => {
            say(
                t.triple,
                &suite,
                Counts::FAIL,
                Took::default(),
                &format!("cannot run: {e}"),
            );
            Counts::FAIL
        }
    }
}

/// Boots the program as `/init` on the target's real kernel.
pub fn run_kernel(ctx: &Ctx, t: &Target, k: &Kernel, image: &Path, p: &Program, b: &Built) -> Counts {
    let suite = format!("{}-kernel", p.example);
    let initrd = b.stripped.with_extension("cpio");
    let booted = fs::read(&b.stripped)
        .and_then(|bin| fs::write(&initrd, qemu::initramfs(&bin)))
        .and_then(|()| qemu::boot(k, image, &initrd, &ctx.program_args, RUN_TIMEOUT));
    match booted {
        // Exit status says nothing here: qemu exits the same way whatever init did.
        Ok(out) => program_result(t, &suite, p, &out, false),
        Err(e) => {
            say(
                t.triple,
                &suite,
                Counts::FAIL,
                Took::default(),
                &format!("cannot boot {}: {e}", k.qemu),
            );
            Counts::FAIL
        }
    }
}

/// Reads `<prefix>: N passed, M failed` from the output; no such line is one failure.
fn program_result(t: &Target, suite: &str, p: &Program, out: &Output, check_exit: bool) -> Counts {
    let text = out.text.replace('\r', "");
    let marker = format!("{}: ", p.result_prefix);
    let parsed = text
        .lines()
        .rev()
        .find_map(|l| parse_counts(&l[l.find(&marker)? + marker.len()..]));
    let mut details: Vec<String> = text.lines().filter(|l| l.contains("FAIL")).map(String::from).collect();
    let mut c = match parsed {
        Some(c) => c,
        None => {
            let who = if check_exit { "program" } else { "qemu" };
            details.push(format!(
                "no `{marker}N passed, M failed` line ({who}: {})",
                out.describe(RUN_TIMEOUT)
            ));
            details.extend(last_lines(&text, 25));
            Counts::FAIL
        }
    };
    if check_exit && parsed.is_some() && !out.success() {
        c.failed += 1;
        details.push(format!("exited with {}", out.describe(RUN_TIMEOUT)));
    }
    say(t.triple, suite, c, out.took(), &details.join("\n"));
    c
}

/// "17 passed, 0 failed" (anything may follow).
fn parse_counts(s: &str) -> Option<Counts> {
    let mut words = s.split_whitespace();
    let passed = words.next()?.parse().ok()?;
    if words.next()? != "passed," {
        return None;
    }
    let failed = words.next()?.parse().ok()?;
    words.next()?.starts_with("failed").then_some(Counts { passed, failed })
}

pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("| {l}"))
        .collect()
}

/// Proves the program is a static, libc-free executable of the right machine and size.
pub fn static_check(t: &Target, p: &Program, b: &Built) -> Counts {
    let mut c = Counts::default();
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if ok {
            c.passed += 1;
        } else {
            c.failed += 1;
            problems.push(what);
        }
    };
    match fs::read(&b.unstripped)
        .map_err(|e| e.to_string())
        .and_then(|d| elf::parse(&d))
    {
        Err(e) => check(false, format!("{}: {e}", b.unstripped.display())),
        Ok(e) => {
            check(
                e.machine == t.elf_machine,
                format!("ELF machine {} (want {})", e.machine, t.elf_machine),
            );
            check(
                e.e_type == elf::ET_EXEC,
                format!("ELF type {} is not a static executable (ET_EXEC)", e.e_type),
            );
            check(e.entry != 0, "entry point is 0: no `_start` was linked in".into());
            check(!e.has_interp, "has PT_INTERP: it wants a dynamic loader".into());
            check(
                !e.has_dynamic && e.needed.is_empty(),
                format!("dynamic section, needs {:?}", e.needed),
            );
            // ARM EHABI: each function's entry in .ARM.exidx names its personality routine with
            // an R_ARM_NONE relocation, which leaves the symbol undefined without ever using it.
            // Nothing calls it in a panic=abort program, which has no unwinder.
            let undefined: Vec<&String> = e
                .undefined
                .iter()
                .filter(|s| !s.starts_with("__aeabi_unwind_cpp_pr"))
                .collect();
            check(
                e.has_symtab && undefined.is_empty(),
                match e.has_symtab {
                    false => "no .symtab to check for undefined symbols".into(),
                    true => format!("undefined symbols: {undefined:?}"),
                },
            );
        }
    }
    if let Some(max) = p.max_size {
        check(b.size <= max, format!("stripped size {} B exceeds {max} B", b.size));
    }
    say(
        t.triple,
        &format!("{} static", p.example),
        c,
        Took::default(),
        &problems.join("\n"),
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_flags_keep_a_spaced_script_path_in_one_field() {
        let flags = static_rustflags(Path::new("/a b/repo"));
        let fields: Vec<&str> = flags.split('\x1f').collect();
        assert!(
            fields.contains(&"link-arg=-T/a b/repo/src/rt/no-unwind.ld"),
            "{fields:?}"
        );
        assert!(fields.contains(&"relocation-model=static"), "{fields:?}");
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../src/rt/no-unwind.ld")
                .is_file()
        );
    }

    #[test]
    fn libtest_summaries_are_summed() {
        let text = "test result: ok. 76 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s\n\
                    test result: FAILED. 30 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n\
                    test foo ... ok\n";
        let c = test_results(text);
        assert_eq!((c.passed, c.failed), (106, 2));
    }

    #[test]
    fn program_result_lines() {
        let c = parse_counts("17 passed, 0 failed").unwrap();
        assert_eq!((c.passed, c.failed), (17, 0));
        let c = parse_counts("3 passed, 1 failed\r").unwrap();
        assert_eq!((c.passed, c.failed), (3, 1));
        assert!(parse_counts("17 passed").is_none());
        assert!(parse_counts("x passed, 0 failed").is_none());
    }

    #[test]
    fn excerpt_prefers_test_failures_over_cargo_errors() {
        let text = "running 2 tests\nfailures:\n\n---- a stdout ----\npanicked at x.rs:1\nstack backtrace:\n   0: f\n\nfailures:\n    a\n\ntest result: FAILED. 1 passed; 1 failed\nerror: test failed\n";
        let e = excerpt(text);
        assert!(e.contains("panicked at x.rs:1") && e.contains("    a"), "{e}");
        assert!(!e.contains("0: f") && !e.contains("error: test failed"), "{e}");
        assert!(excerpt("Compiling x\nerror[E0583]: file not found\n").starts_with("error[E0583]"));
    }
}
