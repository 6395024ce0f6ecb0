//! `shmfusion-bench`: shmfusion's buffers side by side with the cache-line floor, kernel IPC and peers.
//!
//! Every case runs its two sides in two forked processes pinned to two different CPUs (threads, for `rtrb`). The
//! cases run interleaved in rounds (A, B, C, A, B, C, ...), so that the load of a shared machine hits them alike;
//! ratios are taken within each round and reported as the median over rounds with their spread.
//!
//! ```text
//! shmfusion-bench [--rounds N] [--scale F] [--out DIR] [--static TRIPLE=DIR]... [--producer PATH] [--only SUBSTR]... [--smoke]
//! ```
//!
//! `--smoke` runs every case for a few thousand iterations and checks the output (the test command's use);
//! `cargo xtask bench` runs the full comparison with iceoryx2 and the footprint.

mod cases;
#[cfg(feature = "iceoryx2")]
mod iox;
mod plot;
mod report;
mod sys;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;

struct Args {
    rounds: usize,
    scale: f64,
    out: PathBuf,
    /// (target triple, directory of its stripped static programs).
    static_dirs: Vec<(String, PathBuf)>,
    producer: Option<PathBuf>,
    smoke: bool,
    /// Only the cases whose key (`mode/transport/size`) contains one of these.
    only: Vec<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        rounds: 7,
        scale: 0.25,
        out: PathBuf::from("target/bench"),
        static_dirs: Vec::new(),
        producer: None,
        smoke: false,
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => a.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--scale" => a.scale = value()?.parse().map_err(|e| format!("--scale: {e}"))?,
            "--out" => a.out = value()?.into(),
            "--static" => {
                let v = value()?;
                let (triple, dir) = v.split_once('=').ok_or("--static takes TRIPLE=DIR")?;
                a.static_dirs.push((triple.into(), dir.into()));
            }
            "--producer" => a.producer = Some(value()?.into()),
            "--only" => a.only.push(value()?),
            "--smoke" => {
                a.smoke = true;
                a.rounds = 2;
                a.scale = 0.03;
            }
            "-h" | "--help" => {
                println!(
                    "shmfusion-bench [--rounds N] [--scale F] [--out DIR] [--static TRIPLE=DIR]... [--producer PATH] [--only SUBSTR]... [--smoke]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.rounds == 0 || a.scale <= 0.0 {
        return Err("--rounds and --scale must be positive".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shmfusion-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let mut plan = cases::plan(args.scale);
    if !args.only.is_empty() {
        plan.retain(|c| args.only.iter().any(|o| c.key().contains(o.as_str())));
    }
    #[cfg(feature = "iceoryx2")]
    let iox_before = iox::shm_objects();
    let results = cases::run(&plan, args.rounds);
    #[cfg(feature = "iceoryx2")]
    iox::remove_new_objects(&iox_before);
    let footprint = report::footprint(&args.static_dirs, args.producer.as_deref());
    let doc = report::build(&plan, &results, &footprint, args.rounds, args.scale, started.elapsed());
    report::print(&doc);
    if let Err(e) = report::write(&args.out, &doc) {
        eprintln!("shmfusion-bench: writing {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} (JSON and SVG charts) in {:.1} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    match report::check(&args.out, &plan) {
        Ok(summary) => {
            println!("check: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("check failed: {e}");
            if args.smoke {
                ExitCode::FAILURE
            } else {
                ExitCode::from(3)
            }
        }
    }
}
