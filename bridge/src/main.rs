//! `shmfusion-bridge`: forwards shmfusion channels over Zenoh.
//!
//! ```text
//! shmfusion-bridge [--listen tcp/ADDR:PORT]... [--connect tcp/ADDR:PORT]... [--lease-ms MS] [--retry-ms MS]
//!                  [--stats-key KEY] [--node NAME] [--export SPEC]... [--import SPEC]...
//! SPEC: kind=imu|mag|gnss|attitude,shm=KEY|shmid=ID,key=ZENOH_KEY|topic=ROS_TOPIC[,cap=512][,buffer=ring|latest]
//!       [,type=NAME][,format=raw|ros2][,policy=block|drop][,channel=N][,frame=FRAME_ID][,domain=0]
//!       [,distro=jazzy|humble]
//! ```
//!
//! Runs until SIGINT or SIGTERM, then prints one summary line per channel.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use shmfusion_bridge::engine::{self, BridgeConfig};
use shmfusion_bridge::spec::{ChannelSpec, Direction};
use shmfusion_bridge::stats::EXPORT;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn usage() -> ExitCode {
    eprintln!("{}", include_str!("usage.txt"));
    ExitCode::from(2)
}

fn parse(args: &[String]) -> Result<BridgeConfig, String> {
    let mut c = BridgeConfig::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| -> Result<u64, String> {
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse(),
            }
            .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--listen" => c.session.listen.push(value()?),
            "--connect" => c.session.connect.push(value()?),
            "--lease-ms" => c.session.lease_ms = Some(number(value()?)?),
            "--retry-ms" => c.session.retry_ms = Some(number(value()?)?),
            "--stats-key" => c.stats_key = Some(number(value()?)? as i32),
            "--node" => c.node = value()?,
            "--export" => c
                .channels
                .push(ChannelSpec::parse(Direction::Export, &value()?).map_err(|e| e.to_string())?),
            "--import" => c
                .channels
                .push(ChannelSpec::parse(Direction::Import, &value()?).map_err(|e| e.to_string())?),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    if c.channels.is_empty() {
        return Err("nothing to forward: give --export or --import".into());
    }
    Ok(c)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return usage();
    }
    let config = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shmfusion-bridge: {e}");
            return usage();
        }
    };
    // Zenoh's own warnings and errors (a transport closed on congestion, a failed connection) on stderr; `RUST_LOG`
    // (e.g. `zenoh=debug`) shows more.
    zenoh::init_log_from_env_or("warn");
    // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let result = engine::run(&config, &STOP, |_| {
        println!(
            "shmfusion-bridge ready: pid {} channels {}",
            std::process::id(),
            config.channels.len()
        );
    });
    match result {
        Ok(stats) => {
            for c in &stats.channels[..stats.count as usize] {
                let dir = if c.direction == EXPORT { "export" } else { "import" };
                println!(
                    "shmfusion-bridge {dir} channel {}: forwarded {} gap {} lagged {} stale {} rejected {} last_seq {} restarts {}",
                    c.channel, c.forwarded, c.gap, c.lagged, c.stale, c.rejected, c.last_seq, c.restarts
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shmfusion-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
