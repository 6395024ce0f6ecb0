//! Host-only suites: loom models, Miri, a 64-bit and a 32-bit program sharing one object,
//! lints, xtask's own tests, the Python extension and the shmfusion tool. They run once, on
//! this machine, and fill the `host` row.

use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::time::Duration;

use crate::proc::{self, Took};
use crate::report::Counts;
use crate::suites::{self, CARGO_TIMEOUT, Ctx, HOST, excerpt, say};

const WHO: &str = "host";
/// The peers give up after 10 s themselves.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Suite {
    pub name: &'static str,
    /// Only on an x86_64 machine (the loom and Miri runs are meant for it; abi-mix runs i686
    /// natively there).
    pub x86_64: bool,
    /// Part of a plain `cargo xtask test`; the others run only when named with `--suite`.
    pub default: bool,
    /// Runs in the background lane, beside the targets' suites: it compiles and runs only in-process
    /// code in a target dir of its own, and creates no System V object, process or namespace that a
    /// foreground test (a leak count, `reap`, a segment listing) could see.
    pub background: bool,
    /// Compilation only, done in the background lane ahead of the suite (same commands, so the
    /// suite itself then finds its build done).
    pub prebuild: Option<fn(&Ctx)>,
    pub run: fn(&Ctx) -> Counts,
}

#[rustfmt::skip]
pub const SUITES: &[Suite] = &[
    // Miri first of the queued suites: it interprets on one core, and as the last suite left it kept the other
    // core idle for two minutes.
    Suite { name: "miri", x86_64: true, default: true, background: true, prebuild: None, run: miri },
    Suite { name: "loom", x86_64: true, default: true, background: true, prebuild: None, run: loom },
    Suite { name: "abi-mix", x86_64: true, default: true, background: false, prebuild: None, run: abi_mix },
    Suite { name: "capi", x86_64: true, default: true, background: false, prebuild: Some(crate::capi::prebuild), run: crate::capi::suite },
    Suite { name: "lint", x86_64: false, default: true, background: true, prebuild: None, run: lint },
    Suite { name: "xtask", x86_64: false, default: true, background: false, prebuild: None, run: xtask },
    Suite { name: "python", x86_64: false, default: true, background: false, prebuild: None, run: crate::python::run },
    Suite { name: "cli", x86_64: true, default: true, background: false, prebuild: Some(cli_prebuild), run: cli },
    Suite { name: "bridge", x86_64: true, default: true, background: false, prebuild: Some(bridge_prebuild), run: bridge },
    Suite { name: "bridge-net", x86_64: true, default: true, background: false, prebuild: Some(bridge_net_prebuild), run: bridge_net },
    Suite { name: "bench", x86_64: true, default: true, background: false, prebuild: Some(crate::bench::prebuild), run: crate::bench::suite },
    Suite { name: "bridge-cross", x86_64: true, default: true, background: false, prebuild: Some(bridge_cross_prebuild), run: bridge_cross },
];

/// Whether suite `h` runs on this machine.
pub fn applicable(h: &Suite) -> bool {
    !h.x86_64 || cfg!(target_arch = "x86_64")
}

/// Runs a prebuild's command, in one line: a failure shows again, with its details, when the suite runs it.
pub fn prebuild(what: &str, cmd: &mut Command) {
    match proc::run(cmd, CARGO_TIMEOUT) {
        Ok(out) if out.success() => println!("[{WHO}] prebuild {what}: built ({})", out.took()),
        _ => prebuild_failed(what),
    }
}

/// A prebuild's failure line: the suite reports why when it runs the same step again.
pub fn prebuild_failed(what: &str) {
    println!("[{WHO}] prebuild {what}: failed (the suite reports why)");
}

/// The companion crates' builds go to a target dir of their own, so that the background lane's
/// prebuilds never wait for the build lock of the targets' suites.
pub fn host_target_dir(ctx: &Ctx) -> PathBuf {
    ctx.target_dir.join("host")
}

/// Where `host_cargo`'s native programs are.
pub fn host_bin_dir(ctx: &Ctx) -> PathBuf {
    host_target_dir(ctx).join(HOST).join("debug")
}

/// `cargo` for the companion crates (the tool, the bridge, the benchmark), in `ctx.root`. Every build in
/// `host_target_dir` goes through here, so that they share one profile and no command invalidates another's
/// build:
/// - no debug info: nobody steps through these builds in a debugger, and a panic's message still names its file
///   and line. Zenoh's build for riscv64 took 219 s of CPU without it, 244 s with line tables;
/// - every build names its target, this machine's too (an explicit `--target` overrides it). Then the proc macros
///   and build scripts are compiled once, in one configuration, for the native and the cross builds alike;
///   without `--target`, the native builds compile them in another (the aarch64 bridge rebuilt all of them:
///   about 120 s of CPU);
/// - clippy as the compiler of the workspace's crates (what `cargo clippy` does over `cargo check`), so that
///   they are linted as they build and the `lint` suite reads their warnings back (`companion_lints`) instead
///   of checking zenoh, clap and the rest a second time.
pub fn host_cargo(ctx: &Ctx) -> Command {
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root)
        .env("CARGO_TARGET_DIR", host_target_dir(ctx))
        .env("CARGO_BUILD_TARGET", HOST);
    for profile in ["DEV", "TEST"] {
        cmd.env(format!("CARGO_PROFILE_{profile}_DEBUG"), "false");
    }
    if let Some(driver) = clippy_driver(ctx) {
        cmd.env("RUSTC_WORKSPACE_WRAPPER", driver);
    }
    cmd
}

/// The toolchain's `clippy-driver`, beside its `cargo` (the `lint` suite's setup installs it).
fn clippy_driver(ctx: &Ctx) -> Option<PathBuf> {
    let driver = Path::new(&ctx.cargo).with_file_name("clippy-driver");
    driver.is_file().then_some(driver)
}

/// The loom models of src/buffer, in a target dir of their own: `--cfg loom` would otherwise
/// invalidate the normal build. The build is most of the suite's cost, so the release profile is lowered to
/// opt-level 1 without LTO: that cut its CPU time by a quarter, for a third more time in the models (15 s to
/// 20 s).
fn loom(ctx: &Ctx) -> Counts {
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root)
        .args(["test", "--release", "-p", "shmfusion", "--lib", "loom"])
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CARGO_TARGET_DIR", ctx.target_dir.join("loom"))
        .env("RUSTFLAGS", "--cfg loom")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    tests_ran(suites::cargo_test(WHO, "loom", &mut cmd), "loom")
}

/// The buffer tests under Miri (nightly; setup installs it).
fn miri(ctx: &Ctx) -> Counts {
    let fail = |why: String| {
        say(WHO, "miri", Counts::FAIL, Took::default(), &why);
        Counts::FAIL
    };
    let toolchains = proc::query("rustup", &["toolchain", "list"]).unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        return fail(
            "no nightly toolchain (setup installs it: `rustup toolchain install nightly \
                     --profile minimal --component miri,rust-src`)"
                .into(),
        );
    }
    // Builds Miri's sysroot once, so that its output stays out of the test's.
    match proc::run(nightly_cargo(ctx).args(["miri", "setup"]), CARGO_TIMEOUT) {
        Ok(out) if out.success() => {}
        Ok(out) => {
            let tail = suites::last_lines(&out.text, 20).join("\n");
            return fail(format!(
                "cargo +nightly miri setup: {}\n{tail}",
                out.describe(CARGO_TIMEOUT)
            ));
        }
        Err(e) => return fail(format!("cannot run cargo +nightly miri setup: {e}")),
    }
    let mut cmd = nightly_cargo(ctx);
    cmd.args(["miri", "test", "-p", "shmfusion", "--lib", "buffer::"]);
    tests_ran(suites::cargo_test(WHO, "miri", &mut cmd), "miri")
}

/// `cargo +nightly` through rustup's proxy: `ctx.cargo` is the stable toolchain's own binary,
/// and `cargo xtask` leaves RUSTUP_TOOLCHAIN and CARGO pointing at stable.
fn nightly_cargo(ctx: &Ctx) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&ctx.root)
        .arg("+nightly")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO");
    cmd
}

/// A filter that matches nothing passes silently in libtest: here it is a failure.
fn tests_ran(c: Counts, suite: &str) -> Counts {
    if c.passed + c.failed > 0 {
        return c;
    }
    println!("    no {suite} test ran: counted as a failure");
    Counts::FAIL
}

/// examples/object_peer built for x86_64 and i686: each creates an object that the other opens.
fn abi_mix(ctx: &Ctx) -> Counts {
    let t0 = proc::Stopwatch::start();
    let mut peers: Vec<(&str, PathBuf)> = Vec::new();
    for (bits, triple) in [("64", HOST), ("32", "i686-unknown-linux-musl")] {
        let mut cmd = Command::new(&ctx.cargo);
        cmd.current_dir(&ctx.root).args([
            "build",
            "-p",
            "shmfusion",
            "--example",
            "object_peer",
            "--target",
            triple,
        ]);
        // The lib suite's profile, so that its build of the crate is reused.
        suites::quick_profile(&mut cmd);
        let why = match proc::run(&mut cmd, CARGO_TIMEOUT) {
            Ok(out) if out.success() => {
                peers.push((bits, ctx.target_dir.join(triple).join("debug/examples/object_peer")));
                continue;
            }
            Ok(out) => format!("{}\ncargo build: {}", excerpt(&out.text), out.describe(CARGO_TIMEOUT)),
            Err(e) => format!("cannot run cargo: {e}"),
        };
        let c = Counts { passed: 0, failed: 2 };
        say(WHO, "abi-mix", c, t0.took(), &format!("{triple}: {why}"));
        return c;
    }
    let mut c = Counts::default();
    let mut details = Vec::new();
    for (i, (creator, opener)) in [(&peers[0], &peers[1]), (&peers[1], &peers[0])].into_iter().enumerate() {
        // Fresh for each run and each direction.
        let key = 0x4000_0000 + process::id() % 0x1000_0000 * 2 + i as u32;
        match pair(&creator.1, &opener.1, &key.to_string()) {
            Ok(()) => c.add(Counts::PASS),
            Err(e) => {
                c.add(Counts::FAIL);
                details.push(format!("{}-bit creator, {}-bit opener: {e}", creator.0, opener.0));
            }
        }
    }
    say(WHO, "abi-mix", c, t0.took(), &details.join("\n"));
    c
}

/// Runs `creator create KEY`, then `opener open KEY`; both must exit with status 0.
fn pair(creator: &Path, opener: &Path, key: &str) -> Result<(), String> {
    let mut created = proc::start(Command::new(creator).args(["create", key])).map_err(|e| format!("creator: {e}"))?;
    // The creator fills the object after creating it: the opener may only look once it is full.
    let opened = created
        .wait_for("created by", PEER_TIMEOUT)
        .then(|| proc::run(Command::new(opener).args(["open", key]), PEER_TIMEOUT));
    let created = created.finish(PEER_TIMEOUT).map_err(|e| format!("creator: {e}"))?;
    let mut problems = Vec::new();
    for (who, out) in [("creator", Some(Ok(created))), ("opener", opened)] {
        match out {
            Some(Ok(out)) if out.success() => {}
            Some(Ok(out)) => problems.push(format!(
                "{who}: {}\n| {}",
                out.describe(PEER_TIMEOUT),
                out.text.trim_end().replace('\n', "\n| ")
            )),
            Some(Err(e)) => problems.push(format!("{who}: {e}")),
            None => problems.push(format!("{who}: not started (the creator never said `created by`)")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `cargo fmt --check` and clippy with warnings denied, in the root workspace and in capi/: one check each, and
/// one for the companion crates that `host_cargo` builds (linted by their own builds).
fn lint(ctx: &Ctx) -> Counts {
    let t0 = proc::Stopwatch::start();
    let mut c = Counts::default();
    let mut details = Vec::new();
    // The whole workspace but the crates linted by their builds: a new member is linted here by default.
    let mut clippy = vec!["-q", "clippy", "--workspace", "--all-targets"];
    for package in LINTED_BY_BUILD {
        clippy.extend(["--exclude", package]);
    }
    clippy.extend(["--", "-D", "warnings"]);
    // capi/ is a workspace of its own (see its Cargo.toml), linted in its own directory.
    // Check builds in target dirs of their own: lint runs in the background lane.
    let checks: [(&str, &[&str]); 4] = [
        (".", &["fmt", "--all", "--check"]),
        (".", &clippy),
        ("capi", &["fmt", "--all", "--check"]),
        ("capi", &["-q", "clippy", "--all-targets", "--", "-D", "warnings"]),
    ];
    for (dir, args) in checks {
        let mut cmd = Command::new(&ctx.cargo);
        let lint_dir = ctx.target_dir.join(if dir == "." { "lint" } else { "lint-capi" });
        cmd.current_dir(ctx.root.join(dir))
            .args(args)
            .env("CARGO_TARGET_DIR", lint_dir);
        match proc::run(&mut cmd, CARGO_TIMEOUT) {
            Ok(out) if out.success() => c.add(Counts::PASS),
            Ok(out) => {
                c.add(Counts::FAIL);
                details.push(format!("cargo {}: {}", args.join(" "), out.describe(CARGO_TIMEOUT)));
                details.extend(out.text.lines().take(40).map(|l| format!("| {l}")));
            }
            Err(e) => {
                c.add(Counts::FAIL);
                details.push(format!("cannot run cargo {}: {e}", args.join(" ")));
            }
        }
    }
    match companion_lints(ctx) {
        Ok(()) => c.add(Counts::PASS),
        Err(why) => {
            c.add(Counts::FAIL);
            details.push(why);
        }
    }
    say(WHO, "lint", c, t0.took(), &details.join("\n"));
    c
}

/// The crates that `host_cargo` builds, and lints as it builds them; `cargo clippy` checks the rest of the
/// workspace in `target/lint`.
const LINTED_BY_BUILD: [&str; 3] = ["shmfusion-cli", "shmfusion-bridge", "shmfusion-bench"];

/// Builds every target of the companion crates with `host_cargo` (after their suites' prebuilds, this only
/// replays the diagnostics cargo kept for each crate) and fails on any warning, as `-D warnings` would. One
/// package per cargo command, as their suites build them: together, cargo would unify their dependencies'
/// features (syn's, for one), and rebuild every proc macro and all that depends on them (300 s of CPU).
fn companion_lints(ctx: &Ctx) -> Result<(), String> {
    if clippy_driver(ctx).is_none() {
        return Err(format!(
            "no clippy-driver beside {} (setup installs the clippy component)",
            ctx.cargo
        ));
    }
    let mut problems = Vec::new();
    for package in LINTED_BY_BUILD {
        let mut cmd = host_cargo(ctx);
        cmd.args(["test", "--no-run", "--all-targets", "-p", package]);
        let out = proc::run(&mut cmd, CARGO_TIMEOUT).map_err(|e| format!("cannot run cargo: {e}"))?;
        let warned = diagnostic_summaries(&out.text);
        if out.success() && warned.is_empty() {
            continue;
        }
        problems.push(format!(
            "clippy in the build of {package}: {}",
            out.describe(CARGO_TIMEOUT)
        ));
        problems.extend(warned.iter().map(|l| format!("| {l}")));
        problems.push(excerpt(&out.text));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// cargo's summary lines of the compiler's diagnostics (`warning: `name` (lib) generated 2 warnings`,
/// `error: could not compile ...`), which it prints again, from its cache, for crates it does not rebuild.
/// Its own notes (a future-incompatibility report about a dependency) are not diagnostics of ours.
fn diagnostic_summaries(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            (l.starts_with("warning: `") && l.contains(" generated ")) || l.starts_with("error: could not compile")
        })
        .collect()
}

/// xtask's own unit tests.
fn xtask(ctx: &Ctx) -> Counts {
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root).args(["test", "-p", "xtask"]);
    tests_ran(suites::cargo_test(WHO, "xtask", &mut cmd), "xtask")
}

/// The target of the tool's static build: a board needs no matching C library to run it.
pub const CLI_STATIC_TARGET: &str = "aarch64-unknown-linux-musl";

/// The `shmfusion` tool: its static aarch64 build (ELF check), then its tests with the venv's Python (MCAP
/// readers, JSON Schema), including the ignored ones that need the static build and run it under qemu-user.
fn cli(ctx: &Ctx) -> Counts {
    let python = crate::python::python(&ctx.root);
    let mut c = Counts::default();
    let static_bin = match cli_static(ctx) {
        Ok(bin) => {
            c.add(Counts::PASS);
            Some(bin)
        }
        Err(why) => {
            say(WHO, "cli static", Counts::FAIL, Took::default(), &why);
            c.add(Counts::FAIL);
            None
        }
    };
    let mut cmd = cli_tests(ctx);
    cmd.args(&ctx.test_args)
        .args(["--", "--include-ignored"])
        .env("SHMFUSION_PYTHON", &python);
    if let Some(bin) = &static_bin {
        cmd.env("SHMFUSION_CLI_STATIC", bin);
    }
    c.add(tests_ran(suites::cargo_test(WHO, "cli", &mut cmd), "cli"));
    c
}

/// `cargo test` of the tool, before its arguments.
fn cli_tests(ctx: &Ctx) -> Command {
    let mut cmd = host_cargo(ctx);
    cmd.args(["test", "-p", "shmfusion-cli", "--no-fail-fast"]);
    cmd
}

fn cli_prebuild(ctx: &Ctx) {
    prebuild("cli static", &mut cli_static_build(ctx));
    prebuild("cli tests", cli_tests(ctx).arg("--no-run"));
}

/// Builds the tool for `CLI_STATIC_TARGET`, linked by rust-lld against the toolchain's self-contained musl, and
/// proves the result static: an aarch64 executable without an interpreter or needed libraries.
fn cli_static(ctx: &Ctx) -> Result<PathBuf, String> {
    let t0 = proc::Stopwatch::start();
    let out = proc::run(&mut cli_static_build(ctx), CARGO_TIMEOUT).map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.success() {
        return Err(format!(
            "{}\ncargo build: {}",
            excerpt(&out.text),
            out.describe(CARGO_TIMEOUT)
        ));
    }
    let bin = host_target_dir(ctx).join(CLI_STATIC_TARGET).join("debug/shmfusion");
    let data = std::fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let e = crate::elf::parse(&data)?;
    let mut problems = Vec::new();
    if e.machine != crate::elf::EM_AARCH64 {
        problems.push(format!("ELF machine {} is not aarch64", e.machine));
    }
    if e.has_interp || !e.needed.is_empty() {
        problems.push(format!("dynamic: interpreter {}, needs {:?}", e.has_interp, e.needed));
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    println!(
        "[{WHO}] cli static: {} ({} KiB, static, {})",
        bin.display(),
        data.len() / 1024,
        t0.took()
    );
    Ok(bin)
}
fn cli_static_build(ctx: &Ctx) -> Command {
    let var = format!(
        "CARGO_TARGET_{}_LINKER",
        CLI_STATIC_TARGET.to_uppercase().replace('-', "_")
    );
    let mut cmd = host_cargo(ctx);
    cmd.args(["build", "-p", "shmfusion-cli", "--target", CLI_STATIC_TARGET])
        .env(var, "rust-lld");
    cmd
}

/// The Zenoh bridge (bridge/): its unit tests and the Python interop check (rosbags decodes the `ros2`
/// payloads; an eclipse-zenoh subscriber sees rmw_zenoh keys, attachments and liveliness tokens).
fn bridge(ctx: &Ctx) -> Counts {
    let mut cmd = bridge_tests(ctx);
    cmd.args(["--", "--include-ignored", "--test-threads=1"])
        .env("SHMFUSION_BRIDGE_PYTHON", crate::python::python(&ctx.root));
    tests_ran(suites::cargo_test(WHO, "bridge", &mut cmd), "bridge")
}

/// `cargo test` of the bridge's unit and interop tests, before the test binaries' arguments.
fn bridge_tests(ctx: &Ctx) -> Command {
    let mut cmd = host_cargo(ctx);
    cmd.args(["test", "-p", "shmfusion-bridge", "--lib", "--bins", "--test", "interop"]);
    cmd
}

fn bridge_prebuild(ctx: &Ctx) {
    prebuild("bridge tests", bridge_tests(ctx).arg("--no-run"));
}

/// The bridge across network namespaces (root, `ip`, `nft`): the fusion demo's IMU and attitude channels at
/// 1 kHz exported on one "machine" and imported on another, and link faults, among them an outage longer than the
/// Zenoh lease (`bridge/tests/netns.rs`). One test at a time: they run 1 kHz streams and faults on fixed addresses.
/// The tests mostly wait (streams, outages), so they cost little CPU beside the background lane's builds.
fn bridge_net(ctx: &Ctx) -> Counts {
    let suite = "bridge-net";
    let t0 = proc::Stopwatch::start();
    // The fusion demo the namespace tests run on machine A.
    let fusion = match suites::host_example(ctx, "fusion") {
        Ok(path) => path,
        Err(why) => {
            say(WHO, suite, Counts::FAIL, t0.took(), &why);
            return Counts::FAIL;
        }
    };
    let mut cmd = bridge_net_tests(ctx);
    cmd.args(["--", "--include-ignored", "--test-threads=1", "--nocapture"])
        .env("SHMFUSION_FUSION", fusion);
    tests_ran(suites::cargo_test(WHO, suite, &mut cmd), suite)
}

/// `cargo test` of the namespace tests, before the test binary's arguments.
fn bridge_net_tests(ctx: &Ctx) -> Command {
    let mut cmd = host_cargo(ctx);
    cmd.args(["test", "-p", "shmfusion-bridge", "--test", "netns"]);
    cmd
}

fn bridge_net_prebuild(ctx: &Ctx) {
    prebuild("bridge namespace tests", bridge_net_tests(ctx).arg("--no-run"));
}

/// The targets the bridge is cross-built for, each run under qemu-user by `bridge/tests/cross.rs`.
const CROSS_TRIPLES: [&str; 2] = ["aarch64-unknown-linux-gnu", "riscv64gc-unknown-linux-gnu"];

/// Builds the bridge program for `triple`: the dev profile of every `host_cargo` build, so that it shares their
/// proc macros and build scripts, and the per-target cost is zenoh's own (about 300 s of CPU each).
fn bridge_cross_build(ctx: &Ctx, triple: &str) -> Command {
    let mut cmd = host_cargo(ctx);
    cmd.args([
        "build",
        "-p",
        "shmfusion-bridge",
        "--bin",
        "shmfusion-bridge",
        "--target",
        triple,
    ]);
    cmd
}

/// `cargo test` of the cross exchange, before the test binary's arguments.
fn bridge_cross_tests(ctx: &Ctx) -> Command {
    let mut cmd = host_cargo(ctx);
    cmd.args(["test", "-p", "shmfusion-bridge", "--test", "cross"]);
    cmd
}

fn bridge_cross_prebuild(ctx: &Ctx) {
    for triple in CROSS_TRIPLES {
        prebuild(&format!("bridge {triple}"), &mut bridge_cross_build(ctx, triple));
    }
    prebuild("bridge cross tests", bridge_cross_tests(ctx).arg("--no-run"));
}

/// One exchange between a native bridge and copies cross-built for aarch64 and riscv64 running under qemu-user
/// (`bridge/tests/cross.rs`): a native exporter, a foreign importer, over loopback.
fn bridge_cross(ctx: &Ctx) -> Counts {
    let t0 = proc::Stopwatch::start();
    let mut cross = Vec::new();
    for triple in CROSS_TRIPLES {
        let why = match proc::run(&mut bridge_cross_build(ctx, triple), CARGO_TIMEOUT) {
            Ok(out) if out.success() => {
                let bin = host_target_dir(ctx).join(triple).join("debug/shmfusion-bridge");
                cross.push(format!("{triple}={}", bin.display()));
                continue;
            }
            Ok(out) => format!(
                "{}\ncargo build --target {triple}: {}",
                excerpt(&out.text),
                out.describe(CARGO_TIMEOUT)
            ),
            Err(e) => format!("cannot run cargo: {e}"),
        };
        say(WHO, "bridge-cross", Counts::FAIL, t0.took(), &why);
        return Counts::FAIL;
    }
    let mut cmd = bridge_cross_tests(ctx);
    cmd.args(["--", "--include-ignored", "--test-threads=1", "--nocapture"])
        .env("SHMFUSION_BRIDGE_CROSS", cross.join(";"));
    tests_ran(suites::cargo_test(WHO, "bridge-cross", &mut cmd), "bridge-cross")
}
