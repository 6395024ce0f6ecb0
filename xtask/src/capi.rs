//! The C ABI (capi/): its generated header (`cargo xtask capi-header [--check]`) and the `capi` host suite, which
//! builds the static and shared library for every target and checks them from C with each target's gcc.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc;
use crate::report::Counts;
use crate::suites::{CARGO_TIMEOUT, Ctx, excerpt, say};
use crate::targets::Target;

const WHO: &str = "host";
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The header's path in the repository.
pub fn header_path(root: &Path) -> PathBuf {
    root.join("capi/include/shmfusion.h")
}

/// The header cbindgen generates from capi/src.
pub fn generate_header(root: &Path) -> Result<Vec<u8>, String> {
    let config = cbindgen::Config {
        language: cbindgen::Language::C,
        header: Some(
            "/* shmfusion C ABI: generated from capi/src by `cargo xtask capi-header`; do not edit.\n \
             * Every function returns 0 or a negative errno-style code (SF_E*); sf_strerror() describes it.\n \
             * Handles live in caller-provided storage; close them before their object. Thread safety is\n \
             * documented per function. See README \"C and Zig\". */"
                .into(),
        ),
        include_guard: Some("SHMFUSION_H".into()),
        cpp_compat: true,
        no_includes: true,
        sys_includes: vec!["stddef.h".into(), "stdint.h".into()],
        usize_is_size_t: true,
        style: cbindgen::Style::Both,
        documentation_style: cbindgen::DocumentationStyle::C99,
        ..Default::default()
    };
    let mut config = config;
    // Handle storage is 8-byte aligned on every target (a `uint64_t` alone is 4-byte aligned on i386).
    config.layout.aligned_n = Some("SF_ALIGNED".into());
    config.after_includes = Some("#define SF_ALIGNED(n) __attribute__((aligned(n)))".into());
    // The sample structs are only passed as `void *`: name them so they are declared.
    config.export.include = [
        "sf_vector3",
        "sf_quaternion",
        "sf_imu_sample",
        "sf_mag_sample",
        "sf_gnss_fix",
        "sf_stamped_imu",
        "sf_stamped_mag",
        "sf_stamped_gnss",
        "sf_stamped_quaternion",
    ]
    .map(String::from)
    .into();
    let bindings = cbindgen::Builder::new()
        .with_crate(root.join("capi"))
        .with_config(config)
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    Ok(out)
}

/// `cargo xtask capi-header [--check]`: writes the header, or with `--check` fails if it is not up to date.
pub fn header_command(root: &Path, check: bool) -> Result<String, String> {
    let generated = generate_header(root)?;
    let path = header_path(root);
    if check {
        let current = fs::read(&path).unwrap_or_default();
        if current == generated {
            Ok(format!("{} is up to date", path.display()))
        } else {
            Err(format!(
                "{} is out of date: run `cargo xtask capi-header`",
                path.display()
            ))
        }
    } else {
        fs::write(&path, generated).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(format!("wrote {}", path.display()))
    }
}

/// The C compiler of a target, with the flags that select it.
fn c_compiler(t: &Target) -> (&'static str, &'static [&'static str]) {
    match t.triple {
        "x86_64-unknown-linux-gnu" => ("gcc", &[]),
        // Rust's i686 targets compute floats in SSE registers; x87 excess precision would make a float read
        // back from the ring compare unequal to the same constant.
        "i686-unknown-linux-musl" => ("gcc", &["-m32", "-msse2", "-mfpmath=sse"]),
        "aarch64-unknown-linux-gnu" => ("aarch64-linux-gnu-gcc", &[]),
        "armv7-unknown-linux-gnueabihf" => ("arm-linux-gnueabihf-gcc", &[]),
        _ => ("riscv64-linux-gnu-gcc", &[]),
    }
}

/// Extra `cargo build` arguments of a target's libraries: a musl target links statically by default and then
/// cannot produce a shared library, so i686 builds without `crt-static` (the static library is the same code).
fn library_build_args(t: &Target) -> &'static [&'static str] {
    match t.triple {
        "i686-unknown-linux-musl" => &[
            "--config",
            r#"target.i686-unknown-linux-musl.rustflags=["-C","target-feature=-crt-static"]"#,
        ],
        _ => &[],
    }
}

/// Linker flags a `-nostdlib` program needs on a target: on armv7 the ARM EHABI personality routines that the
/// library's unwind tables name, mapped onto the library's refusing one (capi/src/arm_unwind.rs says why this is
/// sound and why the library does not define them itself). Also `nostdlib_ldflags` in capi/shmfusion.pc.
fn nostdlib_ldflags(t: &Target) -> &'static [&'static str] {
    match t.triple {
        "armv7-unknown-linux-gnueabihf" => &[
            "-Wl,--defsym=__aeabi_unwind_cpp_pr0=shmfusion_refuse_unwind",
            "-Wl,--defsym=__aeabi_unwind_cpp_pr1=shmfusion_refuse_unwind",
        ],
        _ => &[],
    }
}

/// Runs a built program natively or under the target's qemu-user (with the cross sysroot, for the dynamically
/// linked Rust peer).
fn run_program(t: &Target, program: &Path) -> Command {
    match t.qemu_user {
        None => Command::new(program),
        Some(qemu) => {
            let mut cmd = Command::new(qemu);
            let (cc, _) = c_compiler(t);
            let sysroot = format!("/usr/{}", cc.trim_end_matches("-gcc"));
            cmd.arg("-L").arg(sysroot).arg(program);
            cmd
        }
    }
}

/// One check: `Ok` passes, `Err` fails with its explanation.
fn check(c: &mut Counts, details: &mut Vec<String>, what: &str, result: Result<(), String>) {
    match result {
        Ok(()) => c.add(Counts::PASS),
        Err(e) => {
            c.add(Counts::FAIL);
            details.push(format!("{what}: {e}"));
        }
    }
}

/// Runs `cmd`; `Ok` if it exits with status 0.
fn succeeds(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    match proc::run(cmd, timeout) {
        Ok(out) if out.success() => Ok(out.text),
        Ok(out) => Err(format!("{}\n{}", out.describe(timeout), excerpt(&out.text))),
        Err(e) => Err(format!("cannot run {:?}: {e}", cmd.get_program())),
    }
}

/// The `sf_` functions the header declares.
fn documented_functions(header: &str) -> Vec<String> {
    let mut names: Vec<String> = header
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && l.contains('('))
        .filter_map(|l| {
            let open = l.find('(')?;
            let name = l[..open]
                .rsplit(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .next()?;
            name.starts_with("sf_").then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The symbols a shared library exports.
fn exported_functions(so: &Path) -> Result<Vec<String>, String> {
    let text = succeeds(Command::new("nm").args(["-D", "--defined-only"]).arg(so), RUN_TIMEOUT)?;
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            // Every defined dynamic symbol, whatever its kind: data would be exported as much as code.
            let (_, _kind, name) = (f.next()?, f.next()?, f.next()?);
            Some(name.to_string())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// One exchange between the Rust peer (examples/capi_peer.rs) and the C peer (capi/tests/peer.c): the Rust side
/// creates the objects and says `ready`, then the C side runs (`kill_after`: it is SIGKILLed once it prints that);
/// both must end with status 0 (the C side: unless killed).
fn exchange(
    t: &Target,
    rust: &Path,
    c: &Path,
    mode: (&str, &str),
    key: i32,
    kill_after: Option<&str>,
) -> Result<(), String> {
    let key = key.to_string();
    let mut server =
        proc::start(run_program(t, rust).args([mode.0, key.as_str()])).map_err(|e| format!("rust peer: {e}"))?;
    let peer = if server.wait_for("ready", RUN_TIMEOUT) {
        let mut cmd = run_program(t, c);
        cmd.args([mode.1, key.as_str()]);
        Some(match kill_after {
            None => proc::run(&mut cmd, RUN_TIMEOUT),
            Some(line) => proc::start(&mut cmd)
                .map(|mut p| {
                    let said = p.wait_for(line, RUN_TIMEOUT);
                    p.kill();
                    (said, p.finish(RUN_TIMEOUT))
                })
                .and_then(|(said, out)| {
                    let mut out = out?;
                    if !said {
                        out.text.push_str(&format!("\n(never printed `{line}`)"));
                        out.status = None;
                    } else if out.status.is_some_and(|s| s.success()) {
                        out.text.push_str("\n(exited by itself instead of being killed)");
                        out.status = None;
                    } else {
                        // Killed as planned: count it as a success.
                        out.status = Command::new("true").status().ok();
                    }
                    Ok(out)
                }),
        })
    } else {
        None
    };
    let served = server.finish(RUN_TIMEOUT).map_err(|e| format!("rust peer: {e}"))?;
    let mut problems = Vec::new();
    for (who, out) in [("rust peer", Some(Ok(served))), ("C peer", peer)] {
        match out {
            Some(Ok(out)) if out.success() => {}
            Some(Ok(out)) => problems.push(format!("{who}: {}\n{}", out.describe(RUN_TIMEOUT), excerpt(&out.text))),
            Some(Err(e)) => problems.push(format!("{who}: {e}")),
            None => problems.push(format!("{who}: not started (the Rust peer never said `ready`)")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Seconds the demo pipeline's C driver publishes.
const PIPELINE_SECONDS: &str = "3";

/// The demo pipeline of README "C and Zig": the C IMU driver (capi/examples/imu_driver.c) creates the IMU ring at
/// `imu_key` and publishes for `PIPELINE_SECONDS`, the Rust fusion process (examples/fusion.rs) fuses it into the
/// attitude slot at `attitude_key`, and the Zig reader (capi/zig/attitude.zig) prints the attitude. Each stage
/// ends by itself once the driver closes its ring; every printed attitude must be the driver's motion at that
/// sample, and no segment of either key may be left.
fn pipeline(
    t: &Target,
    driver: &Path,
    fusion: &Path,
    attitude: &Path,
    imu_key: i32,
    attitude_key: i32,
) -> Result<(), String> {
    let mut stages = Vec::new();
    let mut problems = Vec::new();
    let mut cmd = run_program(t, driver);
    cmd.args([imu_key.to_string().as_str(), PIPELINE_SECONDS]);
    let mut zig = None;
    match proc::start(&mut cmd) {
        Ok(mut d) => {
            let ready = d.wait_for("ready", RUN_TIMEOUT);
            stages.push(("C driver", d));
            if ready {
                let mut cmd = run_program(t, fusion);
                cmd.args([
                    "--imu-key",
                    &imu_key.to_string(),
                    "--attitude-key",
                    &attitude_key.to_string(),
                ]);
                match proc::start(&mut cmd) {
                    Ok(mut f) => {
                        let ready = f.wait_for("ready", RUN_TIMEOUT);
                        stages.push(("Rust fusion", f));
                        if ready {
                            zig = Some(proc::run(&mut run_program(t, attitude), RUN_TIMEOUT));
                        }
                    }
                    Err(e) => problems.push(format!("Rust fusion: {e}")),
                }
            }
        }
        Err(e) => problems.push(format!("C driver: {e}")),
    }
    for (who, stage) in stages {
        match stage.finish(RUN_TIMEOUT) {
            Ok(out) if out.success() => {}
            Ok(out) => problems.push(format!("{who}: {}\n{}", out.describe(RUN_TIMEOUT), excerpt(&out.text))),
            Err(e) => problems.push(format!("{who}: {e}")),
        }
    }
    match zig {
        Some(Ok(out)) if out.success() => {
            if let Err(e) = attitudes_follow_driver(&out.text) {
                problems.push(format!("Zig attitude: {e}\n{}", excerpt(&out.text)));
            }
        }
        Some(Ok(out)) => problems.push(format!(
            "Zig attitude: {}\n{}",
            out.describe(RUN_TIMEOUT),
            excerpt(&out.text)
        )),
        Some(Err(e)) => problems.push(format!("Zig attitude: {e}")),
        None => problems.push("Zig attitude: not started (a stage before it never said `ready`)".into()),
    }
    for key in [imu_key, attitude_key] {
        if segment_exists(key) {
            problems.push(format!("segment with key {key:#010x} left behind"));
            let _ = Command::new("ipcrm").arg("-M").arg(key.to_string()).status();
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Whether `ipcs -m` lists a segment with `key`.
fn segment_exists(key: i32) -> bool {
    let wanted = format!("{:#010x}", key as u32);
    proc::query("ipcs", &["-m"]).is_some_and(|out| out.lines().any(|l| l.split_whitespace().next() == Some(&wanted)))
}

/// Checks the Zig reader's `attitude t=... imu_seq=N roll=R pitch=P yaw=Y deg` lines against the motion
/// capi/examples/imu_driver.c synthesises (sample N is at N ms): yaw 0.5 rad/s from 0, roll 0.15 rad at 0.25 Hz,
/// pitch 0. At least 5 lines (one second at 5 a second), each within 2° on every axis (an ideal sensor, so the
/// only error is the filter's integration and its accelerometer correction).
fn attitudes_follow_driver(text: &str) -> Result<(), String> {
    const TOLERANCE_DEG: f64 = 2.0;
    let mut lines = 0;
    for line in text.lines().filter(|l| l.starts_with("attitude ")) {
        let field = |name: &str| -> Result<f64, String> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {name} in `{line}`"))
        };
        let t = field("imu_seq")? * 1e-3;
        let expected = [
            (
                "roll",
                (0.15 * (2.0 * std::f64::consts::PI * 0.25 * t).sin()).to_degrees(),
            ),
            ("pitch", 0.0),
            ("yaw", (0.5 * t).to_degrees()),
        ];
        for (name, want) in expected {
            let got = field(name)?;
            // Angles compared on the circle: yaw wraps at ±180°.
            let diff = (got - want + 540.0).rem_euclid(360.0) - 180.0;
            if diff.abs() > TOLERANCE_DEG {
                return Err(format!(
                    "{name} {got:.2}° where the driver's motion is {want:.2}° (`{line}`)"
                ));
            }
        }
        lines += 1;
    }
    if lines < 5 {
        return Err(format!("{lines} attitude lines, expected at least 5"));
    }
    Ok(())
}

/// How Zig names a target: `-Dtarget`, and `-Dcpu` where its default is not the Rust target's. The glibc ABIs link
/// against Zig's glibc stubs (nothing to compile; the qemu-user runs find the cross sysroot's glibc), where a musl
/// target would compile musl first (minutes on two cores).
fn zig_target(t: &Target) -> (&'static str, Option<&'static str>) {
    match t.triple {
        // `-gnu` everywhere: Zig then links against its glibc stubs, where a `-linux` (musl) target would compile
        // musl from source first, minutes of CPU on a fresh machine for nothing the exchange tests.
        "x86_64-unknown-linux-gnu" => ("x86_64-linux-gnu", None),
        "i686-unknown-linux-musl" => ("x86-linux-gnu", None),
        "aarch64-unknown-linux-gnu" => ("aarch64-linux-gnu", None),
        // ARMv7-A with VFPv3-D16, hard-float calls: the Rust target's baseline (its objects' ABI attributes).
        "armv7-unknown-linux-gnueabihf" => ("arm-linux-gnueabihf", Some("generic+v7a+vfp3d16")),
        _ => ("riscv64-linux-gnu", None),
    }
}

/// Whether the demo pipeline (it needs the fusion example built for the target too) runs on this target: one native
/// target and one under qemu-user.
fn runs_pipeline(t: &Target) -> bool {
    matches!(t.triple, "x86_64-unknown-linux-gnu" | "aarch64-unknown-linux-gnu")
}

/// `zig build` of capi/zig (the Zig module, its `echo` peer and the demo's `attitude` reader) for a target, linked
/// with `lib`, with `key` built in; the directory of the programs.
fn zig_build(ctx: &Ctx, t: &Target, lib: &Path, key: i32, out: &Path) -> Result<PathBuf, String> {
    let (zig_target, cpu) = zig_target(t);
    let python = crate::python::venv(&ctx.root).join("bin/python");
    let mut cmd = Command::new(python);
    cmd.current_dir(ctx.root.join("capi/zig"))
        .args(["-m", "ziglang", "build"])
        .arg(format!("-Dtarget={zig_target}"))
        .args(cpu.map(|c| format!("-Dcpu={c}")))
        .arg(format!("-Dlib={}", lib.display()))
        .arg(format!("-Dkey={key}"))
        .arg("--cache-dir")
        .arg(ctx.target_dir.join("zig-cache"))
        .arg("--prefix")
        .arg(out);
    succeeds(&mut cmd, CARGO_TIMEOUT)?;
    Ok(out.join("bin"))
}

/// The static and shared library of a target (the same command in the prebuild and in the suite).
fn library_build(ctx: &Ctx, t: &Target) -> Command {
    let mut build = Command::new(&ctx.cargo);
    build
        .current_dir(ctx.root.join("capi"))
        .args(["build", "--release", "--target", t.triple])
        .args(library_build_args(t))
        .env("CARGO_TARGET_DIR", ctx.target_dir.join("capi"));
    build
}

/// The first SysV key of this run's exchanges (fresh per run; four per exchange).
fn key_base() -> i32 {
    0x4800_0000 + (std::process::id() % 0x10_0000) as i32 * 16
}

/// The Zig programs' key, built in (they take no arguments): the echo peer's first object, then the demo's
/// attitude slot. Part of their build, so the prebuild and the suite agree on it.
fn zig_key() -> i32 {
    key_base() + 12
}

/// The libraries and the Zig programs of every target, built in the background lane ahead of the suite (whose own
/// builds then find them done; a failure shows there, with its details).
pub fn prebuild(ctx: &Ctx) {
    for &t in &ctx.targets {
        let name = t.triple.split('-').next().unwrap_or(t.triple);
        let lib = ctx
            .target_dir
            .join("capi")
            .join(t.triple)
            .join("release/libshmfusion.a");
        let out = ctx.target_dir.join("capi-c").join(format!("zig-{name}"));
        crate::host::prebuild(&format!("capi {name}"), &mut library_build(ctx, t));
        if lib.exists() && zig_build(ctx, t, &lib, zig_key(), &out).is_err() {
            crate::host::prebuild_failed(&format!("capi {name} Zig programs"));
        }
    }
}

/// The `capi` suite: the header is up to date; per target, the libraries build, the header's layout is the Rust
/// layout (`_Static_assert`s), a libc-free `-nostdlib -static` program and a hosted one work with the static
/// library; the shared library exports exactly the header's functions.
pub fn suite(ctx: &Ctx) -> Counts {
    let t0 = proc::Stopwatch::start();
    let mut c = Counts::default();
    let mut details = Vec::new();
    check(
        &mut c,
        &mut details,
        "header",
        header_command(&ctx.root, true).map(drop),
    );
    let header = fs::read_to_string(header_path(&ctx.root)).unwrap_or_default();
    let capi = ctx.root.join("capi");
    let target_dir = ctx.target_dir.join("capi");
    let out_dir = ctx.target_dir.join("capi-c");
    let _ = fs::create_dir_all(&out_dir);
    for &t in &ctx.targets {
        let name = t.triple.split('-').next().unwrap_or(t.triple);
        if let Err(e) = succeeds(&mut library_build(ctx, t), CARGO_TIMEOUT) {
            check(&mut c, &mut details, &format!("{name} build"), Err(e));
            continue;
        }
        let lib_dir = target_dir.join(t.triple).join("release");
        let (cc, cc_flags) = c_compiler(t);
        let compile = |source: &str, extra: &[&str], libs: &[&str], output: Option<&Path>| {
            let mut cmd = Command::new(cc);
            cmd.args(cc_flags)
                .arg("-std=c11")
                .arg("-Wall")
                .arg("-Werror")
                .arg("-I")
                .arg(capi.join("include"));
            cmd.args(extra).arg(capi.join(source));
            match output {
                Some(o) => cmd.arg(lib_dir.join("libshmfusion.a")).args(libs).arg("-o").arg(o),
                None => cmd.arg("-fsyntax-only"),
            };
            succeeds(&mut cmd, RUN_TIMEOUT).map(drop)
        };
        check(
            &mut c,
            &mut details,
            &format!("{name} abi.c static asserts"),
            compile("tests/abi.c", &["-ffreestanding"], &[], None),
        );
        let nostdlib = out_dir.join(format!("nostdlib-{name}"));
        let freestanding = [
            "-O1",
            "-ffreestanding",
            "-fno-builtin",
            "-fno-stack-protector",
            "-fno-tree-loop-distribute-patterns",
            "-nostdlib",
            "-static",
            "-no-pie",
        ];
        // libgcc gives the compiler's own helpers: not a C library.
        let libs = [&["-lgcc"], nostdlib_ldflags(t)].concat();
        let result = compile("tests/nostdlib.c", &freestanding, &libs, Some(&nostdlib))
            .and_then(|()| succeeds(&mut run_program(t, &nostdlib), RUN_TIMEOUT).map(drop));
        check(
            &mut c,
            &mut details,
            &format!("{name} -nostdlib -static program"),
            result,
        );
        let smoke = out_dir.join(format!("smoke-{name}"));
        let result = compile("tests/smoke.c", &["-O1", "-static"], &[], Some(&smoke))
            .and_then(|()| succeeds(&mut run_program(t, &smoke), RUN_TIMEOUT))
            .and_then(|out| if out.contains("ok") { Ok(()) } else { Err(out) });
        check(&mut c, &mut details, &format!("{name} smoke.c"), result);
        let peer = out_dir.join(format!("peer-{name}"));
        let mut rust_peer = Command::new(&ctx.cargo);
        rust_peer
            .current_dir(&ctx.root)
            .args(["build", "--example", "capi_peer", "--target", t.triple]);
        if runs_pipeline(t) {
            // The demo pipeline's fusion process.
            rust_peer.args(["--example", "fusion"]);
        }
        crate::suites::quick_profile(&mut rust_peer);
        let built = compile("tests/peer.c", &["-O1", "-static"], &[], Some(&peer))
            .and_then(|()| succeeds(&mut rust_peer, CARGO_TIMEOUT).map(drop));
        let rust = ctx.target_dir.join(t.triple).join("debug/examples/capi_peer");
        let base = key_base();
        for (i, (what, mode, kill_after)) in [
            ("broadcast, spsc and latest exchange", ("serve", "echo"), None),
            ("SIGKILLed C producer", ("killed", "spin"), Some("pushing")),
            ("hostile C scribbler", ("hostile", "scribble"), None),
        ]
        .into_iter()
        .enumerate()
        {
            let result = built
                .clone()
                .and_then(|()| exchange(t, &rust, &peer, mode, base + 4 * i as i32, kill_after));
            check(&mut c, &mut details, &format!("{name} {what}"), result);
        }
        // The Zig programs' key is built in (they take no arguments): the echo peer's first object, then the
        // demo's attitude slot.
        let key = zig_key();
        let zig_bin = built.clone().and_then(|()| {
            zig_build(
                ctx,
                t,
                &lib_dir.join("libshmfusion.a"),
                key,
                &out_dir.join(format!("zig-{name}")),
            )
        });
        let result = zig_bin
            .clone()
            .and_then(|bin| exchange(t, &rust, &bin.join("echo"), ("serve", "echo"), key, None));
        check(&mut c, &mut details, &format!("{name} Zig peer exchange"), result);
        if runs_pipeline(t) {
            let driver = out_dir.join(format!("imu_driver-{name}"));
            let result = zig_bin.and_then(|bin| {
                compile("examples/imu_driver.c", &["-O1", "-static"], &["-lm"], Some(&driver))?;
                let fusion = ctx.target_dir.join(t.triple).join("debug/examples/fusion");
                pipeline(t, &driver, &fusion, &bin.join("attitude"), base + 15, key)
            });
            check(
                &mut c,
                &mut details,
                &format!("{name} demo pipeline: C IMU driver -> Rust fusion -> Zig attitude"),
                result,
            );
        }
        if t.qemu_user.is_none() {
            let so = lib_dir.join("libshmfusion.so");
            let result = exported_functions(&so).and_then(|exported| {
                let documented = documented_functions(&header);
                if exported == documented && !exported.is_empty() {
                    Ok(())
                } else {
                    Err(format!("exported {exported:?}\ndocumented {documented:?}"))
                }
            });
            check(&mut c, &mut details, &format!("{name} exported symbols"), result);
        }
    }
    say(WHO, "capi", c, t0.took(), &details.join("\n"));
    c
}

#[cfg(test)]
mod tests {
    use super::attitudes_follow_driver;

    /// Lines the Zig reader printed in a real run (README "C and Zig").
    const RUN: &str = "attitude t=14262.423 s imu_seq=819 roll=8.25 pitch=0.00 yaw=23.49 deg
attitude t=14262.623 s imu_seq=1019 roll=8.59 pitch=0.00 yaw=29.22 deg
attitude t=14262.823 s imu_seq=1219 roll=8.08 pitch=0.00 yaw=34.95 deg
attitude t=14263.023 s imu_seq=1419 roll=6.79 pitch=0.00 yaw=40.68 deg
attitude t=14263.223 s imu_seq=1619 roll=4.83 pitch=0.00 yaw=46.41 deg
printed 5 attitudes";

    #[test]
    fn a_real_run_follows_the_driver() {
        assert_eq!(attitudes_follow_driver(RUN), Ok(()));
    }

    #[test]
    fn yaw_wraps_at_180_degrees() {
        // Sample 8000 (8 s): yaw 229.2°, printed as -130.8°; roll back at 0.
        let lines = "attitude t=1 s imu_seq=8000 roll=-0.00 pitch=0.00 yaw=-130.82 deg\n".repeat(5);
        assert_eq!(attitudes_follow_driver(&lines), Ok(()));
    }

    #[test]
    fn a_wrong_turn_or_too_few_lines_fail() {
        let reversed = RUN.replace("yaw=", "yaw=-");
        assert!(attitudes_follow_driver(&reversed).unwrap_err().contains("yaw"));
        let flipped_roll = RUN.replace("roll=8.59", "roll=-8.59");
        assert!(attitudes_follow_driver(&flipped_roll).unwrap_err().contains("roll"));
        let short: String = RUN.lines().take(4).map(|l| format!("{l}\n")).collect();
        assert!(
            attitudes_follow_driver(&short)
                .unwrap_err()
                .contains("4 attitude lines")
        );
    }
}
