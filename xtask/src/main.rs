//! `cargo xtask test`: sets the machine up, runs every suite on every target, and prints one
//! table and one `N passed, M failed` line. See `usage()`.

mod bench;
mod capi;
mod elf;
mod host;
mod layout;
mod leak;
mod proc;
mod python;
mod qemu;
mod report;
mod setup;
mod suites;
mod targets;

use std::collections::VecDeque;
use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use report::{Cell, Counts, Row, Table};
use targets::{PROGRAMS, Program, TARGETS, Target};

const USAGE: &str = "\
usage: cargo xtask test [options] [-- <cargo test arguments>]
       cargo xtask capi-header [--check]   (write, or check, capi/include/shmfusion.h)
       cargo xtask bench [--rounds N] [--scale F] [--out DIR] [--all-targets]   (see bench/)

Sets up the machine (Rust targets, Debian packages, kernels; idempotent), then runs on each
target: `lib` (cargo test), `user` (static programs natively or under qemu-user), `kernel`
(static programs as /init on a real Linux kernel under qemu-system) and `static` (ELF checks);
then, once on this machine, the host suites: `loom` (loom models, release), `miri` (buffer tests
under Miri, nightly), `abi-mix` (examples/object_peer: an x86_64 and an i686 build open each
other's object), `capi` (the C library on every target: header up to date, _Static_assert
layout, a -nostdlib -static C program, C and Rust peers on every buffer kind, exported
symbols), `lint` (cargo fmt --check, clippy -D warnings, also in capi/), `xtask` (its own tests),
`python` (the extension's wheel built with maturin, pytest against a Rust peer, in .cache/pyvenv), `cli`
(the shmfusion tool's tests with Python readers from the same venv, its static aarch64 musl build under qemu-user)
`bench` (the benchmark builds, and a smoke run of every case passes its output check), `bridge` and
`bridge-net` (the Zenoh bridge: unit and Python interop tests; two network namespaces with link faults) and
`bridge-cross` (the bridge cross-built for aarch64 and riscv64, each under qemu-user against a native one).

options:
  --target T     only targets whose triple starts with T (repeatable), e.g. --target armv7
  --suite S      only suite S (repeatable): lib, user, kernel, static, selftest (= user+kernel+
                 static), loom, miri, abi-mix, capi, lint, xtask, python, cli, bridge, bridge-net, bench,
                 bridge-cross; by default all, with the host suites left out when --target excludes
                 x86_64
  --arg A        pass A in argv to the static programs (repeatable; on the kernel command line after --)
  --no-setup     skip the setup steps
  --no-ipc-ns    run in the machine's IPC namespace instead of a private one
  --verbose      echo the output of every command
";

#[derive(Default)]
struct Options {
    targets: Vec<String>,
    lib: bool,
    user: bool,
    kernel: bool,
    static_check: bool,
    /// Names of the selected host suites (`host::SUITES`).
    host: Vec<&'static str>,
    setup: bool,
    ipc_ns: bool,
    /// `capi-header [--check]`: generate (or check) the C header instead of testing.
    capi_header: Option<bool>,
    program_args: Vec<String>,
    test_args: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        setup: true,
        ipc_ns: true,
        ..Options::default()
    };
    let mut suites = Vec::new();
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("test") => {}
        Some("capi-header") => {
            o.capi_header = Some(it.next().map(String::as_str) == Some("--check"));
            return Ok(o);
        }
        Some(other) => return Err(format!("unknown command `{other}`")),
        None => return Err("missing command".into()),
    }
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--target" => o.targets.push(value()?),
            "--suite" => suites.push(value()?),
            "--arg" => o.program_args.push(value()?),
            "--no-setup" => o.setup = false,
            "--no-ipc-ns" => o.ipc_ns = false,
            "--verbose" => proc::VERBOSE.store(true, Ordering::Relaxed),
            "--" => o.test_args.extend(it.by_ref().cloned()),
            _ => return Err(format!("unknown option `{a}`")),
        }
    }
    if suites.is_empty() {
        suites.push("all".into());
    }
    for s in &suites {
        match s.as_str() {
            "lib" => o.lib = true,
            "user" => o.user = true,
            "kernel" => o.kernel = true,
            "static" => o.static_check = true,
            "selftest" => (o.user, o.kernel, o.static_check) = (true, true, true),
            "all" => {
                (o.lib, o.user, o.kernel, o.static_check) = (true, true, true, true);
                if o.targets.is_empty() || o.targets.iter().any(|t| suites::HOST.starts_with(t.as_str())) {
                    o.host.extend(host::SUITES.iter().filter(|h| h.default).map(|h| h.name));
                }
            }
            _ => match host::SUITES.iter().find(|h| h.name == s) {
                Some(h) => o.host.push(h.name),
                None => return Err(format!("unknown suite `{s}`")),
            },
        }
    }
    if let Some(t) = o
        .targets
        .iter()
        .find(|t| !TARGETS.iter().any(|x| x.triple.starts_with(t.as_str())))
    {
        return Err(format!("unknown target `{t}`"));
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("bench") {
        let (root, target_dir) = repo_dirs();
        return match bench::command(&root, target_dir, &args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if env::var_os("CARGO_INCREMENTAL").is_none() {
        // A test run compiles each crate once, and on CI from nothing: incremental compilation only adds the
        // cost of writing its caches (a sixth of the CPU time of one target's cold test build here). A
        // developer's own setting wins.
        // SAFETY: no other thread exists yet (the lanes start in `run`), so nothing reads the environment
        // while it changes.
        unsafe { env::set_var("CARGO_INCREMENTAL", "0") };
    }
    if let Some(check) = o.capi_header {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
        return match capi::header_command(root, check) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if o.ipc_ns && env::var_os("XTASK_IN_IPC_NS").is_none() {
        if let Some(code) = rerun_in_ipc_namespace() {
            return code;
        }
        println!("note: no private IPC namespace (unshare --ipc failed); checking leaks machine-wide");
    }
    if run(&o) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Runs this same command again inside `unshare --ipc`, so that tests see only their own
/// segments and keys (other runs may be testing on this machine at the same time), and where it
/// can, also in a mount namespace of its own with a fresh tmpfs on `/dev/shm`, so that they see
/// only their own POSIX shm objects too (the leak check counts what is left there).
fn rerun_in_ipc_namespace() -> Option<ExitCode> {
    let works = |args: &[&str]| Command::new("unshare").args(args).status().is_ok_and(|s| s.success());
    let exe = env::current_exe().ok()?;
    if !works(&["--ipc", "true"]) {
        return None;
    }
    // A private mount namespace with a fresh tmpfs on /dev/shm; probed first, since the mount needs privileges.
    let mount_ns = ["--ipc", "--mount", "--propagation", "private", "--", "sh", "-c"];
    let mount_shm = "mount -t tmpfs -o mode=1777,nosuid,nodev shmfusion-test /dev/shm";
    let mut cmd = Command::new("unshare");
    if works(&[&mount_ns[..], &[mount_shm]].concat()) {
        cmd.args(mount_ns).arg(format!("{mount_shm} && exec \"$0\" \"$@\""));
    } else {
        println!("note: no private /dev/shm (the mount namespace was refused); POSIX shm leaks checked machine-wide");
        cmd.args(["--ipc", "--"]);
    }
    let status = cmd
        .arg(exe)
        .args(env::args_os().skip(1))
        .env("XTASK_IN_IPC_NS", "1")
        .status();
    Some(match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(_) => ExitCode::FAILURE,
    })
}

/// Runs one setup step and prints one line about it.
fn step(name: &str, problems: &mut Vec<String>, f: impl FnOnce() -> Result<String, String>) {
    let t0 = Instant::now();
    match f() {
        Ok(what) => println!("setup: {name}: {what} ({:.1} s)", t0.elapsed().as_secs_f64()),
        Err(e) => {
            println!("setup: {name}: FAILED\n    {}", e.replace('\n', "\n    "));
            problems.push(format!("setup: {name} failed"));
        }
    }
}

/// The repository's root, and cargo's target dir (`CARGO_TARGET_DIR`, relative to the root, or `target`).
fn repo_dirs() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repo")
        .to_path_buf();
    let target_dir = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    (root, target_dir)
}

/// Everything after argument parsing; returns whether all passed.
fn run(o: &Options) -> bool {
    let start = Instant::now();
    let (root, target_dir) = repo_dirs();
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| o.targets.is_empty() || o.targets.iter().any(|p| t.triple.starts_with(p.as_str())))
        .collect();
    let programs: Vec<&Program> = PROGRAMS.iter().collect();
    // Problems outside the table (setup, leaks): each counts as one failure.
    let mut problems: Vec<String> = Vec::new();

    let segments_before = leak::segments().unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    });
    let posix_dir = Path::new(leak::POSIX_SHM_DIR);
    let posix_before = leak::posix_objects(posix_dir).unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    });

    if o.setup {
        let triples: Vec<&str> = targets.iter().map(|t| t.triple).collect();
        step("rust targets", &mut problems, || setup::rust_targets(&triples));
        // Not in the background lane: it changes the toolchain the foreground's builds use.
        if o.host.contains(&"lint") {
            step("rust components", &mut problems, setup::lint_components);
        }
        step("debian packages", &mut problems, setup::apt_packages);
        if o.host.contains(&"cli") {
            step("cli target", &mut problems, || {
                setup::rust_targets(&[host::CLI_STATIC_TARGET])
            });
        }
    }
    // What only the host suites need (the Python venv with its pip downloads, the Zig compiler among them;
    // the nightly toolchain for Miri) is set up at the start of the background lane, and the kernels
    // are fetched by a thread of their own: none of it delays the first targets' builds.
    type SetupStep = (&'static str, Box<dyn FnOnce() -> Result<String, String> + Send>);
    let mut host_setup: Vec<SetupStep> = Vec::new();
    if o.setup {
        if o.host
            .iter()
            .any(|h| ["python", "cli", "capi"].contains(h) || h.starts_with("bridge"))
        {
            let (root, hosts) = (root.clone(), o.host.clone());
            host_setup.push(("python venv", Box::new(move || python::setup(&root, &hosts))));
        }
        if o.host.contains(&"miri") {
            host_setup.push(("nightly toolchain", Box::new(setup::nightly)));
        }
    }
    let kernel_fetch = o.kernel.then(|| {
        let cache = setup::kernel_cache(&root);
        let wanted: Vec<&'static targets::Kernel> = targets.iter().filter_map(|t| t.kernel.as_ref()).collect();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let kernels = setup::kernels(&cache, &wanted);
            let mut found: Vec<&str> = kernels.iter().filter(|(_, k)| k.is_ok()).map(|(a, _)| *a).collect();
            found.sort();
            println!(
                "setup: kernels: {} in {} ({:.1} s)",
                found.join(" "),
                cache.display(),
                t0.elapsed().as_secs_f64()
            );
            kernels
        })
    });

    let ctx = suites::Ctx {
        root: root.clone(),
        target_dir,
        cargo: env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        test_args: o.test_args.clone(),
        program_args: o.program_args.clone(),
        targets: targets.clone(),
    };
    // The background lane: the companion crates' builds, then the suites that touch nothing
    // system-wide, beside the targets' suites. On two cores it fills what they leave idle (kernel boots,
    // single-threaded links, tests that wait); niced, so that the foreground's tests keep their pace.
    // Its suites wait in a queue that the foreground also takes from once its own work is done.
    let selected: Vec<&'static host::Suite> = host::SUITES
        .iter()
        .filter(|h| o.host.contains(&h.name) && host::applicable(h))
        .collect();
    let queue = Arc::new(Mutex::new(
        selected
            .iter()
            .copied()
            .filter(|h| h.background)
            .collect::<VecDeque<_>>(),
    ));
    let (setup_ready, setup_done) = std::sync::mpsc::channel::<Vec<String>>();
    // The suites whose prebuilds the background lane has finished.
    let prebuilt = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let background = {
        let (ctx, queue, prebuilt) = (ctx.clone(), Arc::clone(&queue), Arc::clone(&prebuilt));
        std::thread::spawn(move || {
            lower_priority();
            let mut problems = Vec::new();
            for (name, f) in host_setup {
                step(name, &mut problems, f);
            }
            // Told before any prebuild: the foreground's host suites need the setup, not the prebuilds.
            let _ = setup_ready.send(problems);
            // Prebuilds first: the foreground's host suites wait for them, while nothing waits for the
            // background suites until the very end.
            for h in &selected {
                if let Some(prebuild) = h.prebuild {
                    prebuild(&ctx);
                    prebuilt.lock().unwrap_or_else(|e| e.into_inner()).push(h.name);
                }
            }
            run_queued(&queue, &ctx, || false)
        })
    };

    let mut columns = vec!["lib".to_string()];
    for p in &programs {
        columns.push(p.example.to_string());
        columns.push(format!("{}-kernel", p.example));
    }
    columns.push("static".into());
    let mut table = Table {
        title: "Results",
        columns,
        sized: programs.iter().map(|p| p.example.to_string()).collect(),
        rows: Vec::new(),
    };

    let mut kernel_fetch = kernel_fetch;
    let mut kernels = std::collections::HashMap::new();
    for t in &targets {
        if t.kernel.is_some()
            && let Some(fetch) = kernel_fetch.take()
        {
            kernels = fetch.join().unwrap_or_else(|_| {
                problems.push("setup: kernels: the fetching thread panicked".into());
                std::collections::HashMap::new()
            });
        }
        let pick = |selected: bool| {
            if selected {
                Cell::Ran(Counts::default())
            } else {
                Cell::Skipped
            }
        };
        let mut row = Row {
            target: t.triple,
            cells: Vec::new(),
            sizes: vec![None; programs.len()],
        };
        row.cells.push(if o.lib {
            Cell::Ran(suites::lib(&ctx, t))
        } else {
            Cell::Skipped
        });
        // `None`: no static suite selected, so nothing to build.
        let wanted = o.user || o.static_check || (o.kernel && t.kernel.is_some());
        let built = wanted.then(|| suites::build_static(&ctx, t, &programs));
        let mut static_cell = pick(o.static_check);
        for (i, p) in programs.iter().enumerate() {
            let kernel = t.kernel.as_ref();
            let mut user = pick(o.user);
            let mut boot = if kernel.is_none() {
                Cell::NotApplicable
            } else {
                pick(o.kernel)
            };
            match built.as_ref().map(|b| &b[i]) {
                None => {}
                Some(Ok(b)) => {
                    row.sizes[i] = Some(b.size);
                    if o.user {
                        user.add(suites::run_user(&ctx, t, p, b));
                    }
                    if let (true, Some(k)) = (o.kernel, kernel) {
                        boot.add(match kernels.get(k.deb_arch) {
                            Some(Ok(image)) => suites::run_kernel(&ctx, t, k, image, p, b),
                            Some(Err(e)) => suites::not_built(t, p, "-kernel", e),
                            None => suites::not_built(t, p, "-kernel", "no kernel fetched"),
                        });
                    }
                    if o.static_check {
                        static_cell.add(suites::static_check(t, p, b));
                    }
                }
                Some(Err(why)) => {
                    // Said once; then one failure in each selected cell.
                    suites::not_built(t, p, " build", why);
                    for cell in [&mut user, &mut boot, &mut static_cell] {
                        if let Cell::Ran(_) = cell {
                            cell.add(Counts::FAIL);
                        }
                    }
                }
            }
            row.cells.push(user);
            row.cells.push(boot);
        }
        row.cells.push(static_cell);
        table.rows.push(row);
    }

    let mut host_table = Table {
        title: "Host suites",
        columns: host::SUITES.iter().map(|h| h.name.to_string()).collect(),
        sized: Vec::new(),
        rows: Vec::new(),
    };
    // The foreground's host suites first (once their setup is done), then the background lane's results.
    match setup_done.recv() {
        Ok(setup_problems) => problems.extend(setup_problems),
        Err(_) => problems.push("setup: the background lane stopped before the host suites' setup".into()),
    }
    // A suite whose prebuild is still running would wait for cargo's lock and leave a core idle: the foreground
    // takes the background lane's queued suites meanwhile.
    let mut background_results = Vec::new();
    let foreground: Vec<Option<Counts>> = host::SUITES
        .iter()
        .map(|h| {
            (o.host.contains(&h.name) && host::applicable(h) && !h.background).then(|| {
                if h.prebuild.is_some() {
                    let prebuilt = || prebuilt.lock().unwrap_or_else(|e| e.into_inner()).contains(&h.name);
                    background_results.extend(run_queued(&queue, &ctx, prebuilt));
                }
                (h.run)(&ctx)
            })
        })
        .collect();
    background_results.extend(run_queued(&queue, &ctx, || false));
    background_results.extend(background.join().unwrap_or_else(|_| {
        problems.push("the background lane panicked".into());
        Vec::new()
    }));
    if !o.host.is_empty() {
        let cells = host::SUITES.iter().zip(foreground).map(|(h, ran)| {
            if !o.host.contains(&h.name) {
                Cell::Skipped
            } else if !host::applicable(h) {
                Cell::NotApplicable
            } else if let Some(c) = ran {
                Cell::Ran(c)
            } else {
                let c = background_results
                    .iter()
                    .find(|(name, _)| *name == h.name)
                    .map(|(_, c)| *c);
                Cell::Ran(c.unwrap_or(Counts::FAIL))
            }
        });
        host_table.rows.push(Row {
            target: "host",
            cells: cells.collect(),
            sizes: Vec::new(),
        });
    }

    // The layout reports the lib runs wrote, compared across targets (one count per type).
    let reports: Vec<(&str, String)> = targets
        .iter()
        .filter(|_| o.lib)
        .filter_map(|t| {
            let text = std::fs::read_to_string(layout::report_path(&ctx.target_dir, t.triple)).ok()?;
            Some((t.triple, text))
        })
        .collect();
    let layout = (reports.len() >= 2).then(|| layout::compare(&reports));

    let leak = leak::new_since(&segments_before);
    let posix_leak = leak::posix_new_since(posix_dir, &posix_before);
    if o.lib || o.user || o.kernel || o.static_check {
        table.print();
    }
    let mut total = table.total();
    if !host_table.rows.is_empty() {
        host_table.print();
        total.add(host_table.total());
    }
    match &layout {
        Some((c, mismatches)) => {
            println!(
                "\nlayout check: {} types compared across {} targets: {} passed, {} failed",
                c.passed + c.failed,
                reports.len(),
                c.passed,
                c.failed
            );
            for m in mismatches {
                println!("  {m}");
            }
            total.add(*c);
        }
        None if o.lib => println!("\nlayout check: fewer than two targets wrote a layout report, not compared"),
        None => {}
    }
    if !problems.is_empty() {
        println!("\nProblems:");
        for p in &problems {
            println!("  {p}");
        }
    }
    total.failed += problems.len() as u32;
    match leak {
        Ok(left) if left.is_empty() => {
            println!("\nleak check: no SysV segment left behind");
            total.add(Counts::PASS);
        }
        Ok(left) => {
            println!("\nleak check: FAILED, {} SysV segment(s) left behind:", left.len());
            for s in &left {
                println!("  {}", s.line);
            }
            total.add(Counts::FAIL);
        }
        Err(e) => {
            println!("\nleak check: FAILED, {e}");
            total.add(Counts::FAIL);
        }
    }
    match &posix_leak {
        Ok(found) => {
            if found.left.is_empty() {
                println!("leak check: no POSIX shm object left behind ({})", leak::POSIX_SHM_DIR);
                total.add(Counts::PASS);
            } else {
                println!(
                    "leak check: FAILED, {} POSIX shm object(s) made during the run left behind:",
                    found.left.len()
                );
                for o in &found.left {
                    println!("  {}", o.line);
                }
                total.add(Counts::FAIL);
            }
            for (o, pid) in &found.held {
                println!(
                    "  made during the run, still held by pid {pid} (not counted): {}",
                    o.line
                );
            }
        }
        Err(e) => {
            println!("leak check: FAILED, {e}");
            total.add(Counts::FAIL);
        }
    }
    println!(
        "time: {:.0} s, cpu {:.0} s in all commands",
        start.elapsed().as_secs_f64(),
        proc::all_children_cpu().as_secs_f64()
    );
    println!("{} passed, {} failed", total.passed, total.failed);
    total.failed == 0
}

/// Runs the queued suites one at a time (both lanes call this) until the queue is empty or `enough` says so
/// (asked before each).
fn run_queued(
    queue: &Mutex<VecDeque<&'static host::Suite>>,
    ctx: &suites::Ctx,
    enough: impl Fn() -> bool,
) -> Vec<(&'static str, Counts)> {
    let mut results = Vec::new();
    // The lock is released before the suite runs: `while let` would hold it throughout.
    while !enough() {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        let Some(h) = next else { break };
        results.push((h.name, (h.run)(ctx)));
    }
    results
}

/// Lowers the calling thread's scheduling priority (nice 10); the processes it starts inherit it.
fn lower_priority() {
    // SAFETY: setpriority on this thread's own id changes nothing but its niceness.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &str) -> Options {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        parse(&args).unwrap()
    }

    #[test]
    fn host_suites_run_by_default_unless_the_targets_leave_out_the_host() {
        assert_eq!(
            parsed("test").host,
            [
                "miri",
                "loom",
                "abi-mix",
                "capi",
                "lint",
                "xtask",
                "python",
                "cli",
                "bridge",
                "bridge-net",
                "bench",
                "bridge-cross"
            ]
        );
        assert_eq!(parsed("test --target x86").host.len(), 12);
        assert_eq!(parsed("test --suite bridge-cross").host, ["bridge-cross"]);
        assert!(parsed("test --target armv7").host.is_empty());
        let o = parsed("test --target armv7 --suite miri");
        assert_eq!((o.host, o.lib), (vec!["miri"], false));
        let args: Vec<String> = ["test", "--suite", "mir"].map(String::from).into();
        assert!(parse(&args).is_err());
    }
}
