//! Idempotent machine setup: Rust targets, Debian packages, and the Debian 13 kernels booted
//! under qemu-system. Each step checks first and does nothing when everything is there.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::proc;
use crate::targets::Kernel;

const APT_TIMEOUT: Duration = Duration::from_secs(900);
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// The kernels come from Debian 13: they boot under qemu `virt` and have SysV IPC.
const KERNEL_SUITE: &str = "trixie";
const KERNEL_SERIES: &str = "linux-image-6.12.";

struct Pkg {
    name: &'static str,
    /// Taken from `<codename>-backports` and needed at least at `MIN_QEMU`: qemu-system 7.2 from
    /// bookworm conflicts with the preinstalled qemu-utils 10, and qemu-user before 8.2 tracks
    /// shm attaches differently from the 10.x whose behaviour the crate's notes describe.
    backports: bool,
}

const MIN_QEMU: &str = "1:8.2";

const PACKAGES: &[Pkg] = &[
    Pkg {
        name: "qemu-user-static",
        backports: true,
    },
    Pkg {
        name: "qemu-system-arm",
        backports: true,
    },
    Pkg {
        name: "qemu-system-misc",
        backports: true,
    },
    Pkg {
        name: "gcc-aarch64-linux-gnu",
        backports: false,
    },
    Pkg {
        name: "gcc-arm-linux-gnueabihf",
        backports: false,
    },
    Pkg {
        name: "gcc-riscv64-linux-gnu",
        backports: false,
    },
    Pkg {
        name: "libc6-dev-arm64-cross",
        backports: false,
    },
    Pkg {
        name: "libc6-dev-armhf-cross",
        backports: false,
    },
    Pkg {
        name: "libc6-dev-riscv64-cross",
        backports: false,
    },
    // The capi suite's i686 C programs (`gcc -m32`): the 32-bit C library and libgcc. Not `gcc-multilib`, which
    // conflicts with (removes) the cross compilers above.
    Pkg {
        name: "libc6-dev-i386",
        backports: false,
    },
    Pkg {
        name: "lib32gcc-12-dev",
        backports: false,
    },
    Pkg {
        name: "cpio",
        backports: false,
    },
    // The `cli` suite: `watch` runs in tmux, plain segments come from `ipcmk` and are compared with `ipcs -m`,
    // and Python readers check the tool's MCAP and JSON output (in the venv: see `python::setup`).
    Pkg {
        name: "tmux",
        backports: false,
    },
    Pkg {
        name: "util-linux",
        backports: false,
    },
    // The bridge suite: network namespaces and veth pairs, nft drops, the Python interop venv.
    Pkg {
        name: "iproute2",
        backports: false,
    },
    Pkg {
        name: "nftables",
        backports: false,
    },
    Pkg {
        name: "python3-venv",
        backports: false,
    },
];

/// Rust targets of the active toolchain.
pub fn rust_targets(triples: &[&str]) -> Result<String, String> {
    let installed = proc::query("rustup", &["target", "list", "--installed"]).ok_or("rustup failed")?;
    let missing: Vec<&str> = triples
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(format!("{} present", triples.len()));
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add"]).args(&missing);
    checked(&mut cmd, "rustup target add")?;
    Ok(format!("added {}", missing.join(" ")))
}

/// clippy and rustfmt on the active toolchain, for the lint suite.
pub fn lint_components() -> Result<String, String> {
    components(None, &["clippy", "rustfmt"])
}

/// A nightly toolchain with Miri and rust-src, for the Miri suite. On a fresh machine that is
/// a download of roughly 120 MB (rustc, cargo, rust-std, miri, rust-src); the step prints
/// its time.
pub fn nightly() -> Result<String, String> {
    let toolchains = proc::query("rustup", &["toolchain", "list"]).ok_or("rustup failed")?;
    if toolchains.lines().any(|l| l.starts_with("nightly")) {
        return components(Some("+nightly"), &["miri", "rust-src"]);
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["toolchain", "install", "nightly", "--profile", "minimal"])
        .args(["--component", "miri,rust-src"]);
    checked(&mut cmd, "rustup toolchain install nightly")?;
    Ok("installed nightly with miri, rust-src".into())
}

/// Adds the components that `rustup [toolchain] component list --installed` lacks.
fn components(toolchain: Option<&str>, wanted: &[&str]) -> Result<String, String> {
    let mut args: Vec<&str> = toolchain.into_iter().collect();
    args.extend(["component", "list", "--installed"]);
    let have = proc::query("rustup", &args).ok_or("rustup component list failed")?;
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| !have.lines().any(|l| l.starts_with(c)))
        .collect();
    if missing.is_empty() {
        return Ok(format!("{} present", wanted.join(", ")));
    }
    let mut cmd = Command::new("rustup");
    cmd.args(toolchain).args(["component", "add"]).args(&missing);
    checked(&mut cmd, "rustup component add")?;
    Ok(format!("added {}", missing.join(" ")))
}

/// Debian packages: cross linkers and sysroots, qemu-user, qemu-system, cpio.
pub fn apt_packages() -> Result<String, String> {
    let missing: Vec<&Pkg> = PACKAGES.iter().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(format!("{} present", PACKAGES.len()));
    }
    let codename = os_codename()?;
    let backports = format!("{codename}-backports");
    if missing.iter().any(|p| p.backports) && !has_source(&backports) {
        let uri = mirror_uri(&codename)?;
        let file = format!("/etc/apt/sources.list.d/{backports}.sources");
        let text = format!("Types: deb\nURIs: {uri}\nSuites: {backports}\nComponents: main\nSigned-By: {KEYRING}\n");
        fs::write(&file, text).map_err(|e| format!("{file}: {e}"))?;
    }
    checked(apt_get().args(["update", "-q"]), "apt-get update")?;
    let (from_backports, plain): (Vec<&Pkg>, Vec<&Pkg>) = missing.iter().partition(|p| p.backports);
    // Two commands: `-t` would also prefer backports for the dependencies of the plain ones.
    for (group, release) in [(plain, None), (from_backports, Some(&backports))] {
        if group.is_empty() {
            continue;
        }
        let mut cmd = apt_get();
        cmd.args(["install", "-y", "-q", "--no-install-recommends"]);
        if let Some(release) = release {
            cmd.args(["-t", release]);
        }
        cmd.args(group.iter().map(|p| p.name));
        checked(&mut cmd, "apt-get install")?;
    }
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    Ok(format!("installed {}", names.join(" ")))
}

fn installed(p: &Pkg) -> bool {
    let Some(out) = proc::query("dpkg-query", &["-W", "-f=${db:Status-Status} ${Version}", p.name]) else {
        return false;
    };
    let Some(version) = out.strip_prefix("installed ") else {
        return false;
    };
    !p.backports
        || Command::new("dpkg")
            .args(["--compare-versions", version, "ge", MIN_QEMU])
            .status()
            .is_ok_and(|s| s.success())
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    // Wait for, rather than fail on, another apt run (a fresh machine may be updating itself).
    cmd.env("DEBIAN_FRONTEND", "noninteractive")
        .arg("-oDPkg::Lock::Timeout=300");
    cmd
}

/// Runs a setup command quietly; on failure returns its output for the report.
fn checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = proc::run(cmd, APT_TIMEOUT).map_err(|e| format!("{what}: {e}"))?;
    if out.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}\n{}",
            out.describe(APT_TIMEOUT),
            tail(&out.text, 30)
        ))
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn os_codename() -> Result<String, String> {
    let text = fs::read_to_string("/etc/os-release").map_err(|e| format!("/etc/os-release: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_string())
        .ok_or_else(|| "no VERSION_CODENAME in /etc/os-release".into())
}

/// The machine's Debian mirror, read at run time so that no host name is written into the repo.
fn mirror_uri(codename: &str) -> Result<String, String> {
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    let one_line = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    mirror_in(&deb822, codename)
        .or_else(|| mirror_in_one_line(&one_line, codename))
        .ok_or_else(|| format!("no Debian mirror for {codename} in /etc/apt sources"))
}

/// The first URI of the deb822 stanza whose `Suites:` has `codename` itself (not -security).
fn mirror_in(deb822: &str, codename: &str) -> Option<String> {
    deb822.split("\n\n").find_map(|stanza| {
        let field = |key: &str| stanza.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
        field("Suites:")?
            .split_whitespace()
            .any(|s| s == codename)
            .then_some(())?;
        Some(field("URIs:")?.split_whitespace().next()?.to_string())
    })
}

/// The same from one-line style: `deb [options] URI suite components`.
fn mirror_in_one_line(text: &str, codename: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim().strip_prefix("deb ")?.trim_start();
        let line = match line.strip_prefix('[') {
            Some(rest) => rest.split_once(']')?.1,
            None => line,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        (words.len() >= 2 && words[1] == codename).then(|| words[0].to_string())
    })
}

fn has_source(suite: &str) -> bool {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources")),
        );
    }
    files
        .iter()
        .any(|f| fs::read_to_string(f).is_ok_and(|t| t.split_whitespace().any(|w| w == suite)))
}

/// Where kernels are cached: `$SHMFUSION_KERNEL_DIR`, or `.cache/kernels` in the repo.
pub fn kernel_cache(root: &Path) -> PathBuf {
    std::env::var_os("SHMFUSION_KERNEL_DIR").map_or_else(|| root.join(".cache/kernels"), PathBuf::from)
}

/// The cached kernel image for each Debian architecture, fetching the missing ones once.
pub fn kernels(cache: &Path, wanted: &[&Kernel]) -> HashMap<&'static str, Result<PathBuf, String>> {
    let missing: Vec<&Kernel> = wanted.iter().copied().filter(|k| cached(cache, k).is_none()).collect();
    let fetched = if missing.is_empty() {
        Ok(())
    } else {
        fetch_kernels(cache, &missing)
    };
    let _ = fs::remove_dir_all(cache.join("apt"));
    wanted
        .iter()
        .map(|k| {
            let found = cached(cache, k).ok_or_else(|| match &fetched {
                Err(e) => format!("no {} kernel: {e}", k.deb_arch),
                Ok(()) => format!("no {} kernel in {}", k.deb_arch, cache.display()),
            });
            (k.deb_arch, found)
        })
        .collect()
}

fn cached(cache: &Path, k: &Kernel) -> Option<PathBuf> {
    let dir = fs::read_dir(cache.join(k.deb_arch)).ok()?;
    dir.flatten().map(|e| e.path()).find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("vmlinu"))
    })
}

/// Downloads the kernel packages with a private apt configuration (its own sources, lists
/// and cache under `<cache>/apt`), so the machine's apt setup is neither used nor changed.
fn fetch_kernels(cache: &Path, kernels: &[&Kernel]) -> Result<(), String> {
    let apt_dir = cache.join("apt");
    let debs = apt_dir.join("debs");
    for d in ["lists/partial", "cache/archives/partial", "parts", "debs"] {
        fs::create_dir_all(apt_dir.join(d)).map_err(|e| format!("{}: {e}", apt_dir.display()))?;
    }
    let arches: Vec<&str> = kernels.iter().map(|k| k.deb_arch).collect();
    let uri = mirror_uri(&os_codename()?)?;
    let sources = apt_dir.join("sources.list");
    let line = format!(
        "deb [arch={} signed-by={KEYRING}] {uri} {KERNEL_SUITE} main\n",
        arches.join(",")
    );
    fs::write(&sources, line).map_err(|e| e.to_string())?;
    let p = |s: &Path| s.display().to_string();
    let opts = [
        format!("-oDir::Etc::SourceList={}", p(&sources)),
        format!("-oDir::Etc::SourceParts={}", p(&apt_dir.join("parts"))),
        format!("-oDir::State::Lists={}", p(&apt_dir.join("lists"))),
        format!("-oDir::Cache={}", p(&apt_dir.join("cache"))),
        format!("-oAPT::Architectures={}", arches.join(",")),
        // Skip the AppStream metadata that the machine's own configuration asks for.
        "-oAcquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
        "-oAcquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
        "-oAcquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false".into(),
        // Downloads land in our directory, which the unprivileged `_apt` user cannot write.
        "-oAPT::Sandbox::User=root".into(),
    ];
    checked(apt_get().args(&opts).args(["update", "-q"]), "kernel apt-get update")?;
    let mut query: Vec<&str> = opts.iter().map(String::as_str).collect();
    query.extend(["pkgnames", KERNEL_SERIES]);
    let names = proc::query("apt-cache", &query).ok_or("apt-cache pkgnames failed")?;
    for k in kernels {
        let name =
            newest_kernel(&names, k.flavour).ok_or_else(|| format!("no {KERNEL_SERIES}* {} package", k.flavour))?;
        let mut cmd = apt_get();
        cmd.args(&opts)
            .args(["download", "-q", &format!("{name}:{}", k.deb_arch)])
            .current_dir(&debs);
        checked(&mut cmd, "kernel download")?;
        let deb = fs::read_dir(&debs)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&name))
            })
            .ok_or("downloaded package not found")?;
        extract_kernel(&deb, &cache.join(k.deb_arch))?;
        fs::remove_file(&deb).map_err(|e| e.to_string())?;
        println!("setup: kernel {}: {name}", k.deb_arch);
    }
    Ok(())
}

/// `linux-image-6.12.<N>+deb13-<flavour>` with the highest N.
fn newest_kernel(names: &str, flavour: &str) -> Option<String> {
    let suffix = format!("+deb13-{flavour}");
    names
        .lines()
        .filter_map(|n| {
            let n = n.trim();
            let minor: u32 = n.strip_prefix(KERNEL_SERIES)?.strip_suffix(&suffix)?.parse().ok()?;
            Some((minor, n.to_string()))
        })
        .max()
        .map(|(_, n)| n)
}

/// Unpacks only `boot/vmlinu*` from the package (the modules are not needed) into `dest`.
fn extract_kernel(deb: &Path, dest: &Path) -> Result<(), String> {
    let tmp = dest.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    let tar = Command::new("tar")
        .args(["-x", "--wildcards", "-C"])
        .arg(&tmp)
        .arg("./boot/vmlinu*")
        .stdin(dpkg.stdout.take().unwrap())
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    let dpkg = dpkg.wait().map_err(|e| e.to_string())?;
    if !tar.success() || !dpkg.success() {
        return Err(format!("unpacking {} failed", deb.display()));
    }
    let image = fs::read_dir(tmp.join("boot"))
        .map_err(|e| e.to_string())?
        .flatten()
        .next()
        .ok_or("no boot/vmlinu* in the package")?;
    fs::create_dir_all(dest).map_err(|e| e.to_string())?;
    fs::rename(image.path(), dest.join(image.file_name())).map_err(|e| e.to_string())?;
    fs::remove_dir_all(&tmp).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mirror_from_either_source_style() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\n\
                      Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            super::mirror_in(deb822, "bookworm").unwrap(),
            "http://mirror.example/debian"
        );
        assert!(super::mirror_in(deb822, "trixie").is_none());
        let one = "# c\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n";
        assert_eq!(
            super::mirror_in_one_line(one, "bookworm").unwrap(),
            "http://m.example/debian"
        );
        assert_eq!(
            super::mirror_in_one_line("deb http://x/d bookworm main", "bookworm").unwrap(),
            "http://x/d"
        );
    }

    #[test]
    fn newest_kernel_of_a_flavour() {
        let names = "linux-image-6.12.9+deb13-arm64\nlinux-image-6.12.117+deb13-arm64-unsigned\n\
                     linux-image-6.12.107+deb13-arm64-unsigned\nlinux-image-6.12.200+deb13-arm64-16k-unsigned\n\
                     linux-image-6.12.117+deb13-armmp-lpae\nlinux-image-6.12.117+deb13-armmp\n";
        assert_eq!(
            super::newest_kernel(names, "arm64-unsigned").unwrap(),
            "linux-image-6.12.117+deb13-arm64-unsigned"
        );
        assert_eq!(
            super::newest_kernel(names, "armmp").unwrap(),
            "linux-image-6.12.117+deb13-armmp"
        );
        assert!(super::newest_kernel(names, "riscv64").is_none());
    }
}
