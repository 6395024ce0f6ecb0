//! Running child processes with a deadline and capturing what they print.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
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
            if Instant::now() > deadline || !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGKILL to the child itself (a crash the child cannot clean up after); `finish` then reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the child until `timeout` after its start, then kills its process group.
    pub fn finish(mut self, timeout: Duration) -> std::io::Result<Output> {
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break Some(status);
            }
            if self.start.elapsed() > timeout {
                kill_group(self.child.id());
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers {
            let _ = r.join();
        }
        let text = std::mem::take(&mut *self.text.lock().unwrap());
        Ok(Output {
            status,
            text,
            elapsed: self.start.elapsed(),
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
