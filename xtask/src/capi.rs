//! The C ABI (capi/): its generated header (`cargo xtask capi-header [--check]`) and the `capi` host suite, which
//! builds the static and shared library for every target and checks them from C with each target's gcc.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
        "i686-unknown-linux-musl" => ("gcc", &["-m32"]),
        "aarch64-unknown-linux-gnu" => ("aarch64-linux-gnu-gcc", &[]),
        "armv7-unknown-linux-gnueabihf" => ("arm-linux-gnueabihf-gcc", &[]),
        _ => ("riscv64-linux-gnu-gcc", &[]),
    }
}

/// Whether this target's gcc has a C library to link hosted programs against (the i686 build has only the
/// compiler: its checks are the freestanding ones).
fn has_libc(t: &Target) -> bool {
    t.triple != "i686-unknown-linux-musl"
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

/// Zig's name of a target (`-Dtarget`), for the targets the suite builds the Zig peer for.
fn zig_target(t: &Target) -> Option<&'static str> {
    match t.triple {
        "x86_64-unknown-linux-gnu" => Some("x86_64-linux"),
        "aarch64-unknown-linux-gnu" => Some("aarch64-linux"),
        _ => None,
    }
}

/// `zig build` of capi/zig (the Zig module and its `echo` peer) for a target, linked with `lib`; the program's
/// path.
fn zig_build(ctx: &Ctx, zig_target: &str, lib: &Path, key: i32, out: &Path) -> Result<PathBuf, String> {
    let python = crate::python::venv(&ctx.root).join("bin/python");
    let mut cmd = Command::new(python);
    cmd.current_dir(ctx.root.join("capi/zig"))
        .args(["-m", "ziglang", "build"])
        .arg(format!("-Dtarget={zig_target}"))
        .arg(format!("-Dlib={}", lib.display()))
        .arg(format!("-Dkey={key}"))
        .arg("--cache-dir")
        .arg(ctx.target_dir.join("zig-cache"))
        .arg("--prefix")
        .arg(out);
    succeeds(&mut cmd, CARGO_TIMEOUT)?;
    Ok(out.join("bin/echo"))
}

/// The `capi` suite: the header is up to date; per target, the libraries build, the header's layout is the Rust
/// layout (`_Static_assert`s), a libc-free `-nostdlib -static` program and a hosted one work with the static
/// library; the shared library exports exactly the header's functions.
pub fn suite(ctx: &Ctx) -> Counts {
    let t0 = Instant::now();
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
        if t.triple == "armv7-unknown-linux-gnueabihf" {
            // Known gap (issue 13 open): the armv7 static library does not link into C programs yet; the
            // precompiled compiler_builtins carries ARM EHABI unwind tables that reference
            // `__aeabi_unwind_cpp_pr0`/`rust_eh_personality`. Said, not counted.
            println!("[host] capi: armv7 skipped (static library does not link yet: ARM EHABI unwind references)");
            continue;
        }
        let mut build = Command::new(&ctx.cargo);
        build
            .current_dir(&capi)
            .args(["build", "--release", "--target", t.triple])
            .env("CARGO_TARGET_DIR", &target_dir);
        if let Err(e) = succeeds(&mut build, CARGO_TIMEOUT) {
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
            cmd.args(extra).arg(capi.join("tests").join(source));
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
            compile("abi.c", &["-ffreestanding"], &[], None),
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
        // libgcc gives the compiler's own helpers: not a C library. The i686 build has no 32-bit libgcc (no
        // multilib); the Rust library's compiler-builtins then provides what the program needs.
        let libgcc: &[&str] = if has_libc(t) { &["-lgcc"] } else { &[] };
        let result = compile("nostdlib.c", &freestanding, libgcc, Some(&nostdlib))
            .and_then(|()| succeeds(&mut run_program(t, &nostdlib), RUN_TIMEOUT).map(drop));
        check(
            &mut c,
            &mut details,
            &format!("{name} -nostdlib -static program"),
            result,
        );
        if has_libc(t) {
            let smoke = out_dir.join(format!("smoke-{name}"));
            let result = compile("smoke.c", &["-O1", "-static"], &[], Some(&smoke))
                .and_then(|()| succeeds(&mut run_program(t, &smoke), RUN_TIMEOUT))
                .and_then(|out| if out.contains("ok") { Ok(()) } else { Err(out) });
            check(&mut c, &mut details, &format!("{name} smoke.c"), result);
            let peer = out_dir.join(format!("peer-{name}"));
            let mut rust_peer = Command::new(&ctx.cargo);
            rust_peer
                .current_dir(&ctx.root)
                .args(["build", "--example", "capi_peer", "--target", t.triple]);
            crate::suites::quick_profile(&mut rust_peer);
            let built = compile("peer.c", &["-O1", "-static"], &[], Some(&peer))
                .and_then(|()| succeeds(&mut rust_peer, CARGO_TIMEOUT).map(drop));
            let rust = ctx.target_dir.join(t.triple).join("debug/examples/capi_peer");
            let base = 0x4800_0000 + (std::process::id() % 0x10_0000) as i32 * 16;
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
            if let Some(zt) = zig_target(t) {
                // The Zig peer's key is built in (the echo program takes no arguments).
                let key = base + 12;
                let result = built.clone().and_then(|()| {
                    let zig = zig_build(
                        ctx,
                        zt,
                        &lib_dir.join("libshmfusion.a"),
                        key,
                        &out_dir.join(format!("zig-{name}")),
                    )?;
                    exchange(t, &rust, &zig, ("serve", "echo"), key, None)
                });
                check(&mut c, &mut details, &format!("{name} Zig peer exchange"), result);
            }
        }
        if t.qemu_user.is_none() && has_libc(t) {
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
    say(WHO, "capi", c, t0.elapsed().as_secs_f64(), &details.join("\n"));
    c
}
