//! The `python` host suite: the extension module built into a wheel with maturin, installed into a virtual
//! environment with numpy, gymnasium and pytest, and `python/tests` run against a Rust peer process
//! (`examples/py_peer.rs`). The venv lives in `.cache/pyvenv` and is made once (setup step `python venv`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::proc;
use crate::report::Counts;
use crate::suites::{self, CARGO_TIMEOUT, Ctx, say};

const WHO: &str = "host";
/// The one venv of the test command and what each host suite needs in it: pip requirements, and the imports
/// that prove them installed. `python`: maturin builds the wheel, pytest runs the tests; `cli`: readers nobody
/// here wrote for the tool's MCAP recordings and its JSON Schema; `capi`: the Zig compiler.
const SUITE_PACKAGES: &[(&str, &[&str], &str)] = &[
    (
        "python",
        &["maturin>=1.5,<2", "numpy", "gymnasium>=1.0", "pytest"],
        "import maturin, numpy, gymnasium, pytest",
    ),
    (
        "cli",
        &["mcap", "mcap-ros2-support", "jsonschema"],
        "import mcap, mcap_ros2, jsonschema",
    ),
    (
        "bridge",
        &["rosbags==0.11.9", "eclipse-zenoh==1.10.2", "zenoh-ros2-sdk==0.1.8"],
        "import rosbags, zenoh, zenoh_ros2_sdk",
    ),
    ("capi", &["ziglang"], "import ziglang"),
];
const PYTEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The venv: `.cache/pyvenv` in the repository.
pub fn venv(root: &Path) -> PathBuf {
    root.join(".cache/pyvenv")
}

/// The venv's interpreter.
pub fn python(root: &Path) -> PathBuf {
    venv(root).join("bin/python")
}

/// Setup: creates the venv if it has none, and installs the packages of the selected `suites` that it cannot
/// import yet.
pub fn setup(root: &Path, suites: &[&str]) -> Result<String, String> {
    let dir = venv(root);
    let python = python(root);
    let imports = |probe: &str| proc::query(python.to_str().unwrap_or_default(), &["-c", probe]).is_some();
    let mut done = Vec::new();
    if !imports("import sys") {
        let system = ["python3", "python"]
            .into_iter()
            .find(|p| proc::query(p, &["-c", "import sys; assert sys.version_info >= (3, 11)"]).is_some())
            .ok_or("no python3 >= 3.11 on PATH")?;
        checked(
            Command::new(system).args(["-m", "venv", "--clear"]).arg(&dir),
            "python -m venv",
        )?;
        done.push(format!("{} created", dir.display()));
    }
    for (suite, packages, probe) in SUITE_PACKAGES {
        if !suites.contains(suite) || imports(probe) {
            continue;
        }
        checked(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .args(*packages),
            "pip install",
        )?;
        done.push(format!("installed {} for {suite}", packages.join(" ")));
    }
    if done.is_empty() {
        return Ok(format!("{} ready", dir.display()));
    }
    Ok(done.join(", "))
}

fn checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    match proc::run(cmd, CARGO_TIMEOUT) {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => Err(format!(
            "{what}: {}\n{}",
            out.describe(CARGO_TIMEOUT),
            suites::last_lines(&out.text, 20).join("\n")
        )),
        Err(e) => Err(format!("cannot run {what}: {e}")),
    }
}

/// Builds the peer and the wheel, installs the wheel, runs pytest and counts its results.
pub fn run(ctx: &Ctx) -> Counts {
    let t0 = proc::Stopwatch::start();
    let fail = |why: String| {
        say(WHO, "python", Counts::FAIL, t0.took(), &why);
        Counts::FAIL
    };
    let python = python(&ctx.root);
    if !python.exists() {
        return fail(format!("no venv at {} (the setup step makes it)", python.display()));
    }
    let peer = match suites::host_example(ctx, "py_peer") {
        Ok(path) => path,
        Err(e) => return fail(e),
    };
    // The test build is unoptimised (a release build takes minutes on 2 cores); the README's benchmark uses
    // `maturin build --release`.
    let wheels = ctx.target_dir.join("wheels-test");
    let _ = std::fs::remove_dir_all(&wheels);
    let mut build = Command::new(&python);
    build
        .current_dir(ctx.root.join("python"))
        .args(["-m", "maturin", "build", "--quiet", "-o"])
        .arg(&wheels)
        .env("CARGO_TARGET_DIR", &ctx.target_dir);
    if let Err(e) = checked(&mut build, "maturin build") {
        return fail(e);
    }
    let wheel = std::fs::read_dir(&wheels).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
    });
    let Some(wheel) = wheel else {
        return fail(format!("maturin left no wheel in {}", wheels.display()));
    };
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--force-reinstall",
            "--no-deps",
        ])
        .arg(&wheel);
    if let Err(e) = checked(&mut install, "pip install <wheel>") {
        return fail(e);
    }
    // `-P`: the installed wheel is imported, not the source directory next to the tests.
    let mut pytest = Command::new(&python);
    pytest
        .current_dir(ctx.root.join("python"))
        .args(["-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .env("SHMFUSION_PY_PEER", &peer);
    let out = match proc::run(&mut pytest, PYTEST_TIMEOUT) {
        Ok(out) => out,
        Err(e) => return fail(format!("cannot run pytest: {e}")),
    };
    let mut c = pytest_counts(&out.text);
    if !out.success() && c.failed == 0 {
        c.failed += 1;
    }
    if c.passed + c.failed == 0 {
        c.failed = 1;
    }
    let details = format!(
        "{}\npytest: {}",
        suites::last_lines(&out.text, 60).join("\n"),
        out.describe(PYTEST_TIMEOUT)
    );
    say(WHO, "python", c, t0.took(), &details);
    c
}

/// The counts of pytest's closing line (`3 failed, 12 passed, 1 error in 20.1s`); errors count as failures.
fn pytest_counts(text: &str) -> Counts {
    let mut c = Counts::default();
    let Some(line) = text
        .lines()
        .rev()
        .find(|l| l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
    else {
        return c;
    };
    let words: Vec<&str> = line.split([' ', ',', '=']).filter(|w| !w.is_empty()).collect();
    for w in words.windows(2) {
        match (w[0].parse::<u32>(), w[1]) {
            (Ok(n), "passed") => c.passed += n,
            (Ok(n), "failed" | "error" | "errors") => c.failed += n,
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_closing_lines() {
        let c = pytest_counts("..F\nFAILED x\n1 failed, 14 passed, 2 errors in 21.14s\n");
        assert_eq!((c.passed, c.failed), (14, 3));
        let c = pytest_counts("....\n===== 15 passed in 3.2s =====\n");
        assert_eq!((c.passed, c.failed), (15, 0));
        assert_eq!(pytest_counts("no tests ran in 0.01s").passed, 0);
    }
}
