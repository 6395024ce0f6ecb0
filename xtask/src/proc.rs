//! Running child processes with a deadline and capturing what they print.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// `--verbose`: echo every captured line as it arrives.
pub static VERBOSE: AtomicBool = AtomicBool::new(false);

pub struct Output {
    /// `None` when the process was killed at its deadline.
    pub status: Option<ExitStatus>,
    /// stdout and stderr interleaved line by line, as they arrived.
    pub text: String,
    pub elapsed: Duration,
    /// CPU time (user and system) of the child and every descendant it waited for: compilers, test
    /// binaries, qemu. Unlike `elapsed`, it hardly changes with what else the machine is doing.
    pub cpu: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "exit status 1", "killed after 120 s", ... for messages.
    pub fn describe(&self, timeout: Duration) -> String {
        match self.status {
            None => format!("killed after {} s (timeout)", timeout.as_secs()),
            Some(s) => s.to_string(),
        }
    }

    /// Wall and CPU time, for result lines.
    pub fn took(&self) -> Took {
        Took {
            wall: self.elapsed,
            cpu: self.cpu,
        }
    }
}

thread_local! {
    /// CPU time of the children this thread has reaped (each lane of the test command is one thread).
    static CHILDREN_CPU: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Wall time, and the CPU time of the commands this thread ran meanwhile.
#[derive(Clone, Copy, Default)]
pub struct Took {
    pub wall: Duration,
    pub cpu: Duration,
}

impl fmt::Display for Took {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} s", self.wall.as_secs_f64())?;
        if !self.cpu.is_zero() {
            write!(f, ", cpu {:.0} s", self.cpu.as_secs_f64())?;
        }
        Ok(())
    }
}

/// CPU time of every child this process has reaped, on every thread (`getrusage(RUSAGE_CHILDREN)`).
pub fn all_children_cpu() -> Duration {
    // SAFETY: all-zero bytes are a valid `rusage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a live, writable `rusage` for the kernel to fill.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    cpu_time(&usage)
}

fn cpu_time(usage: &libc::rusage) -> Duration {
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Measures a suite made of several commands run by this thread.
pub struct Stopwatch {
    start: Instant,
    cpu: Duration,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch {
            start: Instant::now(),
            cpu: CHILDREN_CPU.get(),
        }
    }

    pub fn took(&self) -> Took {
        Took {
            wall: self.start.elapsed(),
            cpu: CHILDREN_CPU.get().saturating_sub(self.cpu),
        }
    }
}

/// Runs `cmd` with stdin closed, collecting stdout and stderr into one text.
///
/// The child leads a new process group, so at the deadline we can kill it together with
/// whatever it started (test binaries, qemu) and nothing that belongs to anyone else.
pub fn run(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    start(cmd)?.finish(timeout)
}

/// A child started by `start` whose output is being collected.
pub struct Running {
    child: Child,
    text: Arc<Mutex<String>>,
    readers: [thread::JoinHandle<()>; 2],
    start: Instant,
    /// Set once `poll` has reaped the child: its status and CPU time.
    reaped: Option<(ExitStatus, Duration)>,
}

/// Starts `cmd` as `run` does, for callers that act while it runs (see `Running`).
pub fn start(cmd: &mut Command) -> std::io::Result<Running> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let text = Arc::new(Mutex::new(String::new()));
    let readers = [
        collect(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>), &text),
        collect(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>), &text),
    ];
    Ok(Running {
        child,
        text,
        readers,
        start,
        reaped: None,
    })
}

impl Running {
    /// Waits until the child has printed `s`; false if it exits or `timeout` passes first.
    pub fn wait_for(&mut self, s: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.text.lock().unwrap().contains(s) {
                return true;
            }
            if Instant::now() > deadline || !matches!(self.poll(), Ok(false)) {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGKILL to the child itself (a crash the child cannot clean up after); `finish` then reaps it.
    pub fn kill(&mut self) {
        // Once reaped, the pid may belong to another process.
        if self.reaped.is_none() {
            let _ = self.child.kill();
        }
    }

    /// Reaps the child if it has exited (`wait4`, for its resource usage, which `Child::try_wait` drops).
    fn poll(&mut self) -> std::io::Result<bool> {
        if self.reaped.is_none() {
            let pid = self.child.id() as libc::pid_t;
            let mut status = 0;
            // SAFETY: all-zero bytes are a valid `rusage` (integers and timevals only).
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: `pid` is our own unreaped child (nothing else waits for it: `Child::try_wait` and
            // `wait` are not used), and both pointers are to live locals.
            match unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) } {
                0 => {}
                r if r == pid => {
                    let cpu = cpu_time(&usage);
                    CHILDREN_CPU.set(CHILDREN_CPU.get() + cpu);
                    self.reaped = Some((ExitStatus::from_raw(status), cpu));
                }
                _ => return Err(std::io::Error::last_os_error()),
            }
        }
        Ok(self.reaped.is_some())
    }

    /// Waits for the child until `timeout` after its start, then kills its process group.
    pub fn finish(mut self, timeout: Duration) -> std::io::Result<Output> {
        let mut timed_out = false;
        while !self.poll()? {
            if self.start.elapsed() > timeout && !timed_out {
                // Not reaped yet, so the pid is still ours: the group and the child get SIGKILL.
                kill_group(self.child.id());
                let _ = self.child.kill();
                timed_out = true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let (status, cpu) = self.reaped.expect("poll returned true");
        let status = (!timed_out).then_some(status);
        for r in self.readers {
            let _ = r.join();
        }
        let text = std::mem::take(&mut *self.text.lock().unwrap());
        Ok(Output {
            status,
            text,
            elapsed: self.start.elapsed(),
            cpu,
        })
    }
}

/// Runs a short command and returns its stdout if it succeeded (for queries such as dpkg-query).
pub fn query(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        _ => None,
    }
}

fn collect(pipe: Option<Box<dyn Read + Send>>, text: &Arc<Mutex<String>>) -> thread::JoinHandle<()> {
    let text = Arc::clone(text);
    thread::spawn(move || {
        let Some(pipe) = pipe else { return };
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        // Bytes, not `lines()`: a console may print invalid UTF-8 and we still want the rest.
        while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
            let s = String::from_utf8_lossy(&line);
            if VERBOSE.load(Ordering::Relaxed) {
                eprint!("    | {s}");
            }
            text.lock().unwrap().push_str(&s);
            line.clear();
        }
    })
}

/// Kills the process group led by `pid`: only processes this run started are in it.
fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_kills_the_whole_group() {
        // The background sleep holds the output pipe open: unless it dies too, this would hang.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30 & sleep 30"]);
        let out = run(&mut cmd, Duration::from_millis(500)).unwrap();
        assert!(out.status.is_none());
        assert!(out.elapsed < Duration::from_secs(10));
        assert_eq!(out.text, "started\n");
    }

    #[test]
    fn the_cpu_time_of_a_child_and_its_waited_for_children_is_counted() {
        let watch = Stopwatch::start();
        // The work happens in a grandchild that the child waits for.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'"]);
        let out = run(&mut cmd, Duration::from_secs(60)).unwrap();
        assert!(out.success());
        assert!(out.cpu > Duration::ZERO);
        assert!(watch.took().cpu >= out.cpu);
        assert!(all_children_cpu() >= out.cpu);
    }

    #[test]
    fn stdout_and_stderr_are_both_captured() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = run(&mut cmd, Duration::from_secs(10)).unwrap();
        assert_eq!(out.status.and_then(|s| s.code()), Some(3));
        assert!(out.text.contains("out\n") && out.text.contains("err\n"));
    }

    #[test]
    fn waiting_for_a_line_while_the_child_runs() {
        let mut child = start(Command::new("sh").args(["-c", "echo ready; sleep 0.2; echo done"])).unwrap();
        assert!(child.wait_for("ready", Duration::from_secs(10)));
        let out = child.finish(Duration::from_secs(10)).unwrap();
        assert!(out.success() && out.text == "ready\ndone\n", "{}", out.text);
        let mut quits = start(&mut Command::new("true")).unwrap();
        assert!(!quits.wait_for("ready", Duration::from_secs(10)));
    }
}
