//! `cargo xtask bench`: the side-by-side benchmark (`bench/`, package `shmfusion-bench`) with the footprint of the
//! static programs; and the `bench` host suite of the test command, which keeps the benchmark from rotting: it
//! must build, and a smoke run of every case must pass the benchmark's own check of its output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proc;
use crate::report::Counts;
use crate::suites::{self, Ctx, HOST, excerpt, say};
use crate::targets::{PROGRAMS, Program, TARGETS, Target};

pub const USAGE: &str = "\
usage: cargo xtask bench [--rounds N] [--scale F] [--out DIR] [--all-targets]

Builds the static libc-free programs (for the host, or with --all-targets for every target) for the footprint,
then runs shmfusion-bench in release with iceoryx2: every case in N interleaved rounds (default 7), iteration
counts scaled by F (default 0.25). Writes DIR/bench.json and DIR/*.svg (default target/bench) and prints the table.
";

/// The static programs measured besides the tested ones: the smallest program and the smallest producer.
const EXTRA: &[Program] = &[
    Program {
        example: "hello_static",
        result_prefix: "",
        max_size: None,
    },
    Program {
        example: "producer_static",
        result_prefix: "",
        max_size: None,
    },
];

/// The smoke run prints this line when its output passed the check.
const CHECK_OK: &str = "check: ";
/// A smoke run takes well under a minute; this only guards against a hang.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(600);

fn static_dir(ctx: &Ctx, t: &Target) -> PathBuf {
    ctx.target_dir
        .join("xtask-static")
        .join(t.triple)
        .join("static/examples")
}

pub fn command(root: &Path, target_dir: PathBuf, args: &[String]) -> Result<(), String> {
    let t0 = Instant::now();
    let mut bench_args: Vec<String> = Vec::new();
    let mut out = target_dir.join("bench");
    let mut all_targets = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" | "--scale" => {
                bench_args.push(a.clone());
                bench_args.push(it.next().cloned().ok_or(format!("{a} needs a value"))?);
            }
            "--out" => out = root.join(it.next().ok_or("--out needs a value")?),
            "--all-targets" => all_targets = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    let ctx = Ctx {
        root: root.to_path_buf(),
        target_dir,
        cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        test_args: Vec::new(),
        program_args: Vec::new(),
        targets: Vec::new(),
    };
    let programs: Vec<&Program> = PROGRAMS.iter().chain(EXTRA).collect();
    let mut producer = None;
    for t in TARGETS.iter().filter(|t| all_targets || t.triple == HOST) {
        for (p, built) in programs.iter().zip(suites::build_static(&ctx, t, &programs)) {
            match built {
                Ok(b) if t.triple == HOST && p.example == "producer_static" => producer = Some(b.stripped),
                Ok(_) => {}
                Err(e) => println!(
                    "[{}] {}: not built, left out of the footprint: {e}",
                    t.triple, p.example
                ),
            }
        }
        bench_args.push("--static".into());
        bench_args.push(format!("{}={}", t.triple, static_dir(&ctx, t).display()));
    }
    if let Some(p) = producer {
        bench_args.push("--producer".into());
        bench_args.push(p.display().to_string());
    }
    let status = Command::new(&ctx.cargo)
        .current_dir(root)
        .args([
            "run",
            "--release",
            "-p",
            "shmfusion-bench",
            "--features",
            "iceoryx2",
            "--",
        ])
        .args(&bench_args)
        .arg("--out")
        .arg(&out)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    println!("cargo xtask bench: {:.0} s in all", t0.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("shmfusion-bench: {status}"))
    }
}

/// The smoke run's build (the same command in the prebuild and in the suite, so the suite finds it done).
fn build(ctx: &Ctx) -> Command {
    let mut cmd = crate::host::host_cargo(ctx);
    cmd.args(["build", "-p", "shmfusion-bench"]);
    cmd
}

/// The build, done in the background lane ahead of the suite.
pub fn prebuild(ctx: &Ctx) {
    crate::host::prebuild("bench", &mut build(ctx));
}

/// The test command's `bench` suite: the benchmark builds (without iceoryx2, whose build would cost more than the
/// suite's budget), and a smoke run of every case (a few thousand iterations) checks its JSON, its charts and that
/// every case produced numbers. Two counts: the build and the smoke run.
pub fn suite(ctx: &Ctx) -> Counts {
    const WHO: &str = "host";
    let t0 = proc::Stopwatch::start();
    let built = match proc::run(&mut build(ctx), suites::CARGO_TIMEOUT) {
        Ok(o) if o.success() => Ok(()),
        Ok(o) => Err(format!(
            "cargo build: {}\n{}",
            o.describe(suites::CARGO_TIMEOUT),
            excerpt(&o.text)
        )),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    };
    if let Err(e) = built {
        say(WHO, "bench", Counts { passed: 0, failed: 2 }, t0.took(), &e);
        return Counts { passed: 0, failed: 2 };
    }
    let out_dir = ctx.target_dir.join("bench-smoke");
    let _ = std::fs::remove_dir_all(&out_dir);
    let mut run = Command::new(crate::host::host_bin_dir(ctx).join("shmfusion-bench"));
    run.arg("--smoke").arg("--out").arg(&out_dir);
    let (c, details) = match proc::run(&mut run, SMOKE_TIMEOUT) {
        Ok(o) if o.success() && o.text.lines().any(|l| l.starts_with(CHECK_OK)) => {
            let line = o
                .text
                .lines()
                .find(|l| l.starts_with(CHECK_OK))
                .unwrap_or_default()
                .to_string();
            (Counts { passed: 2, failed: 0 }, line)
        }
        Ok(o) => (
            Counts { passed: 1, failed: 1 },
            format!("smoke run: {}\n{}", o.describe(SMOKE_TIMEOUT), excerpt(&o.text)),
        ),
        Err(e) => (
            Counts { passed: 1, failed: 1 },
            format!("cannot run the smoke run: {e}"),
        ),
    };
    say(WHO, "bench", c, t0.took(), &details);
    if c.failed == 0 {
        println!("    {details}");
    }
    c
}
