//! `shmfusion`: the operator's tool for shared memory on a robot. See `shmfusion --help` and the README.

mod objects;
mod reap;
mod record;
mod samples;
mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::json;

use objects::{Location, Opened, Target};

/// Exit codes scripts can rely on.
pub mod exit {
    /// Success (for `reap`: whatever was found, including nothing).
    pub const OK: u8 = 0;
    /// A system call or file operation failed.
    pub const RUNTIME: u8 = 1;
    /// Bad command line (clap's own usage errors also exit with 2).
    pub const USAGE: u8 = 2;
    /// The named object does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// Refused: the object is not provably abandoned, not the caller's, or not of a type the command handles.
    pub const REFUSED: u8 = 4;
}

/// The JSON documents' schema version (the `schema_version` field); bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// A command's failure: exit code and message.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub fn new(code: u8, message: String) -> Self {
        Self { code, message }
    }
    pub fn runtime(message: String) -> Self {
        Self::new(exit::RUNTIME, message)
    }
    pub fn usage(message: String) -> Self {
        Self::new(exit::USAGE, message)
    }
    pub fn not_found(message: String) -> Self {
        Self::new(exit::NOT_FOUND, message)
    }
}

const EXAMPLES: &str = "\
Examples:
  shmfusion list                       every SysV segment and /dev/shm object, decoded where it is shmfusion's
  shmfusion list --json | jq .         the same as JSON (schema: cli/schema/shmfusion.schema.json)
  shmfusion inspect 0x4a110001         one object by SysV key (0x..., key:N), id (N, id:N) or POSIX name (/imu)
  shmfusion watch                      live view; Up/Down select a channel, q quits
  shmfusion reap                       what would be removed, and why (dry run)
  shmfusion reap --yes                 remove the abandoned objects of your user
  shmfusion rm 32769                   remove one object if it is provably abandoned and yours
  shmfusion record 32769 gps=/gnss -o run.mcap --duration 10
  shmfusion play run.mcap --speed 2    into new broadcast rings, twice as fast
  shmfusion completions bash > /etc/bash_completion.d/shmfusion

Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 no such object, 4 refused (not provably abandoned,
not yours, or not a type the command handles).";

/// List, inspect, watch, reap, record and play shmfusion shared-memory objects.
///
/// Looks at System V segments and POSIX shared memory without changing them: segments are attached read-only
/// (SHM_RDONLY), objects mapped PROT_READ, and nothing is written to them.
#[derive(Parser, Debug)]
#[command(name = "shmfusion", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every SysV segment (like `ipcs -m`) and POSIX shm object, with decoded shmfusion headers.
    List {
        /// JSON output (see the schema file).
        #[arg(long)]
        json: bool,
    },
    /// One object in full, with its newest samples.
    Inspect {
        /// SysV key (0x..., key:N), SysV id (N, id:N), or POSIX shm name (/name).
        target: Target,
        /// How many of the newest samples to show.
        #[arg(long, default_value_t = 3)]
        samples: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Live view of all channels: rates, lag, writer liveness, sparklines.
    Watch {
        /// Refresh period in milliseconds.
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
    },
    /// Remove the caller's abandoned shmfusion objects (dry run unless --yes).
    Reap {
        /// Act: remove what the dry run lists as removable.
        #[arg(long)]
        yes: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove one object, only if it is provably abandoned and the caller's.
    Rm {
        /// As for `inspect`.
        target: Target,
    },
    /// Record channels to an MCAP file (ROS 2 messages, CDR).
    Record {
        /// Channels: `target` or `topic=target` (e.g. `/imu=0x4a110001`).
        #[arg(required = true)]
        channels: Vec<String>,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Stop after this many seconds (default: on Ctrl-C or SIGTERM).
        #[arg(long)]
        duration: Option<f64>,
    },
    /// Play an MCAP recording into new local broadcast rings.
    Play {
        /// The recording.
        input: PathBuf,
        /// Playback speed factor (1 = recorded speed).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// SysV key of the first ring (then +1 per channel); private segments when absent.
        #[arg(long, value_parser = parse_hex)]
        key_base: Option<u32>,
        /// Keep the rings this many seconds after the last message.
        #[arg(long, default_value_t = 0.0)]
        linger: f64,
    },
    /// Shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn parse_hex(s: &str) -> Result<u32, String> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    u32::from_str_radix(h, 16).map_err(|e| e.to_string())
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| Failure::runtime(e.to_string()))?;
    writeln!(out).map_err(|e| Failure::runtime(e.to_string()))
}

fn location_text(l: &Location) -> (String, String) {
    match l {
        Location::Sysv { id, key } => (key.clone(), id.to_string()),
        Location::Posix { name } => ("-".into(), name.clone()),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "alive" } else { "dead" }
}

fn list(json: bool) -> Result<(), Failure> {
    let all = objects::all().map_err(|e| Failure::runtime(format!("listing segments: {e}")))?;
    if json {
        let objects: Vec<_> = all.iter().map(|o| &o.object).collect();
        return print_json(&json!({"schema_version": SCHEMA_VERSION, "objects": objects}));
    }
    println!(
        "{:<10} {:<16} {:>6} {:>4} {:>9} {:>6} {:>14}  shmfusion",
        "key", "id/name", "owner", "mode", "bytes", "nattch", "cpid"
    );
    for o in &all {
        let ob = &o.object;
        let (key, id) = location_text(&ob.location);
        // The kernel's creator pid, and for shmfusion objects the creator's liveness as the core judges it.
        let creator = ob.shmfusion.as_ref().and_then(|s| s.creator);
        let cpid = match (ob.creator_pid, creator) {
            (Some(pid), Some(c)) => format!("{pid} {}", c.liveness),
            (Some(pid), None) => pid.to_string(),
            (None, Some(c)) => format!("{} {}", c.pid, c.liveness),
            (None, None) => "-".into(),
        };
        let nattch = ob.attach_count.map_or("-".into(), |n| n.to_string());
        let detail = match &ob.shmfusion {
            Some(s) => format!(
                "{} {} x{} [{}] writer {} fill {}/{} last {}",
                s.kind,
                s.element_type,
                s.capacity,
                s.lifecycle,
                s.writer
                    .map_or("none".into(), |p| format!("{} {}", p.pid, yes_no(p.alive))),
                s.fill.map_or("?".into(), |f| f.to_string()),
                s.capacity,
                s.last_write_age_ms.map_or("never".into(), |a| format!("{a:.0} ms ago")),
            ),
            None => format!("- ({})", ob.note.as_deref().unwrap_or("")),
        };
        println!(
            "{:<10} {:<16} {:>6} {:>4} {:>9} {:>6} {:>14}  {}",
            key, id, ob.owner_uid, ob.mode, ob.size, nattch, cpid, detail
        );
    }
    Ok(())
}

fn newest_samples(o: &Opened, n: u64) -> Vec<serde_json::Value> {
    let Some(view) = o.view() else { return Vec::new() };
    let written = view.state().written;
    let mut out = Vec::new();
    let mut buf = vec![0u8; view.element_size()];
    for pos in written.saturating_sub(n)..written {
        if view.read(pos, &mut buf).is_err() {
            continue;
        }
        let value = match o.element {
            Some(e) => e.to_json(&buf),
            None => json!({"hex": buf.iter().map(|b| format!("{b:02x}")).collect::<String>()}),
        };
        out.push(json!({"position": pos, "value": value}));
    }
    out
}

fn inspect(target: &Target, n: u64, json: bool) -> Result<(), Failure> {
    let o = objects::find(target).ok_or_else(|| Failure::not_found(format!("no object {target:?}")))?;
    let samples = newest_samples(&o, n);
    let header = o.header.map(|h| {
        let s = h.snapshot;
        json!({"version": s.version, "total_size": s.total_size, "payload_offset": s.payload_offset,
               "payload_size": s.payload_size, "payload_align": s.payload_align, "flags": s.flags,
               "kind_hash": format!("{:016x}", s.kind_hash), "type_id": format!("{:016x}", s.type_id),
               "creator_uid": s.creator_uid})
    });
    let doc = json!({"schema_version": SCHEMA_VERSION, "object": o.object, "header": header, "samples": samples});
    if json {
        return print_json(&doc);
    }
    let ob = &o.object;
    let (key, id) = location_text(&ob.location);
    let process = |p: Option<objects::Process>| p.map_or("none".into(), |p| format!("pid {} {}", p.pid, p.liveness));
    let mut lines = vec![match &ob.location {
        Location::Sysv { .. } => format!("object      SysV segment id {id}, key {key}"),
        Location::Posix { .. } => format!("object      POSIX shared memory {id}"),
    }];
    lines.push(format!(
        "owner       uid {} (creator uid {}), mode {}, {} bytes{}{}",
        ob.owner_uid,
        ob.creator_uid,
        ob.mode,
        ob.size,
        ob.attach_count.map_or(String::new(), |n| format!(", {n} attached")),
        if ob.marked_for_removal {
            ", marked for removal"
        } else {
            ""
        }
    ));
    if let Some(pid) = ob.creator_pid {
        lines.push(format!("kernel      creator pid {pid}"));
    }
    match (&ob.shmfusion, o.header) {
        (Some(s), Some(h)) => {
            let h = h.snapshot;
            lines.push(format!(
                "shmfusion   {} of {} ({} B) x{}, {}",
                s.kind, s.element_type, s.element_size, s.capacity, s.lifecycle
            ));
            lines.push(format!(
                "header      version {}, payload {} B at {} (align {}), flags {:#x}, kind {:016x}, type {:016x}",
                h.version, h.payload_size, h.payload_offset, h.payload_align, h.flags, h.kind_hash, h.type_id
            ));
            lines.push(format!("creator     {} (uid {})", process(s.creator), h.creator_uid));
            lines.push(format!("writer      {}", process(s.writer)));
            lines.push(format!("consumer    {}", process(s.consumer)));
            lines.push(format!(
                "written     {}, fill {}/{}, last write {}",
                s.written.map_or("?".into(), |w| w.to_string()),
                s.fill.map_or("?".into(), |f| f.to_string()),
                s.capacity,
                s.last_write_age_ms.map_or("never".into(), |a| format!("{a:.1} ms ago"))
            ));
        }
        _ => lines.push(format!(
            "contents    {}",
            ob.note.as_deref().unwrap_or("not a shmfusion object")
        )),
    }
    for sample in &samples {
        lines.push(format!(
            "sample {:<5} {}",
            format!("#{}", sample["position"]),
            fields_text(&sample["value"])
        ));
    }
    println!("{}", lines.join("\n"));
    Ok(())
}

/// A decoded sample as `name=value` pairs, nested objects flattened with dots: `accel=[0.1, 0, 9.81] seq=3`.
fn fields_text(value: &serde_json::Value) -> String {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, v, out);
                }
            }
            serde_json::Value::Array(a) => {
                let items: Vec<String> = a.iter().map(|x| x.to_string()).collect();
                out.push(format!("{prefix}=[{}]", items.join(", ")));
            }
            serde_json::Value::String(s) => out.push(format!("{prefix}={s}")),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out.join(" ")
}

fn reap_cmd(yes: bool, json: bool) -> Result<(), Failure> {
    let uid = rustix::process::geteuid().as_raw();
    let verdicts = reap::all(uid, yes).map_err(|e| Failure::runtime(format!("listing segments: {e}")))?;
    if json {
        return print_json(&json!({"schema_version": SCHEMA_VERSION, "dry_run": !yes, "verdicts": verdicts}));
    }
    for v in &verdicts {
        let (key, id) = location_text(&v.location);
        let action = match (v.remove, v.removed) {
            (true, Some(true)) => "removed",
            (_, Some(false)) => "FAILED",
            (true, None) => "would remove",
            (false, _) => "keep",
        };
        println!("{action:<13} {key:<10} {id:<16} {}: {}", v.rule, v.reason);
    }
    Ok(())
}

fn rm(target: &Target) -> Result<(), Failure> {
    let uid = rustix::process::geteuid().as_raw();
    let v = reap::one(target, uid, true).ok_or_else(|| Failure::not_found(format!("no object {target:?}")))?;
    match v.removed {
        Some(true) => {
            println!("removed: {}", v.reason);
            Ok(())
        }
        Some(false) => Err(Failure::new(exit::REFUSED, format!("not removed: {}", v.reason))),
        None => Err(Failure::new(exit::REFUSED, format!("refusing to remove: {}", v.reason))),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::List { json } => list(json),
        Command::Inspect { target, samples, json } => inspect(&target, samples, json),
        Command::Watch { interval_ms } => watch::run(interval_ms).map_err(|e| Failure::runtime(e.to_string())),
        Command::Reap { yes, json } => reap_cmd(yes, json),
        Command::Rm { target } => rm(&target),
        Command::Record {
            channels,
            output,
            duration,
        } => record::record(&channels, &output, duration),
        Command::Play {
            input,
            speed,
            key_base,
            linger,
        } => record::play(&input, speed, key_base, linger),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "shmfusion", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(f) => {
            eprintln!("shmfusion: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
