//! `record`: channels to MCAP with ROS 2 encodings; `play`: MCAP back into local broadcast rings.

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcap::records::MessageHeader;
use shmfusion::buffer::{BroadcastRing, BroadcastWriter};
use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, Stamped};
use shmfusion::object::{ObjectOptions, sysv};
use shmfusion::shm::Key;

use crate::objects::{self, Opened, Target, now_ns};
use crate::samples::{Element, SampleType};
use crate::{Failure, exit};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Stops the loop on SIGINT and SIGTERM instead of dying with the file unfinished.
fn catch_stop_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// `topic=target` or just `target` (the topic is then `/<sample type>` or `/<sample type>_<n>`).
fn parse_channel(spec: &str) -> Result<(Option<String>, Target), String> {
    match spec.split_once('=') {
        Some((topic, target)) => Ok((Some(topic.to_owned()), target.parse()?)),
        None => Ok((None, spec.parse()?)),
    }
}

struct Channel {
    opened: Opened,
    element: Element,
    topic: String,
    id: u16,
    next: u64,
    written: u64,
    lost: u64,
    /// The shmfusion channel id of the samples (their `SampleHeader::channel`), once one was recorded.
    channel: Option<u32>,
}

/// The MCAP metadata record that maps each topic to the shmfusion channel id of its samples, which ROS 2
/// messages have no field for; `play` gives the samples their id back from it.
const CHANNELS_METADATA: &str = "shmfusion.channels";

pub fn record(specs: &[String], output: &std::path::Path, duration: Option<f64>) -> Result<(), Failure> {
    let mut channels = Vec::new();
    let mut used = BTreeMap::<String, u32>::new();
    for spec in specs {
        let (topic, target) = parse_channel(spec).map_err(Failure::usage)?;
        let opened = objects::find(&target).ok_or_else(|| Failure::not_found(format!("no object {spec}")))?;
        let Some(element) = opened.element else {
            return Err(Failure::new(
                exit::REFUSED,
                format!("{spec}: not a buffer of a built-in sample type (imu, mag, gnss, quaternion)"),
            ));
        };
        let Some(view) = opened.view() else {
            return Err(Failure::new(exit::REFUSED, format!("{spec}: layout not recognised")));
        };
        let written = view.state().written;
        let topic = topic.unwrap_or_else(|| {
            let n = used.entry(element.sample.name().to_owned()).or_default();
            *n += 1;
            match *n {
                1 => format!("/{}", element.sample.name()),
                n => format!("/{}_{n}", element.sample.name()),
            }
        });
        channels.push(Channel {
            opened,
            element,
            topic,
            id: 0,
            next: written,
            written,
            lost: 0,
            channel: None,
        });
    }
    let file = std::fs::File::create(output).map_err(|e| Failure::runtime(format!("{}: {e}", output.display())))?;
    let mut writer = mcap::WriteOptions::new()
        .compression(None)
        .profile("ros2")
        .create(BufWriter::new(file))
        .map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
    for c in &mut channels {
        let (name, schema) = c.element.sample.ros_type();
        let schema_id = writer
            .add_schema(name, "ros2msg", schema.as_bytes())
            .map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
        let mut metadata = BTreeMap::new();
        metadata.insert("shmfusion.element".to_owned(), c.element.name());
        metadata.insert(
            "shmfusion.source".to_owned(),
            serde_json::to_string(&c.opened.object.location).unwrap_or_default(),
        );
        c.id = writer
            .add_channel(schema_id, &c.topic, "cdr", &metadata)
            .map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
        eprintln!(
            "recording {} ({}) as {} [{name}]",
            spec_name(&c.opened),
            c.element.name(),
            c.topic
        );
    }
    catch_stop_signals();
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut counts = vec![0u64; channels.len()];
    loop {
        let stopping = STOP.load(Ordering::Relaxed) || duration.is_some_and(|d| start.elapsed().as_secs_f64() >= d);
        let mut progress = false;
        for (i, c) in channels.iter_mut().enumerate() {
            let Some(view) = c.opened.view() else { continue };
            c.written = view.state().written;
            while c.next < c.written {
                buf.resize(c.element.size(), 0);
                match view.read(c.next, &mut buf) {
                    Ok(()) => {}
                    Err(shmfusion::buffer::Error::Lagged(n)) => {
                        c.lost += n;
                        c.next += n;
                        continue;
                    }
                    Err(_) => break, // being written: next round
                }
                let log_time = now_ns();
                let stamp = c.element.header(&buf).map_or(log_time, |h| h.stamp.as_nanos());
                let sequence = c.element.header(&buf).map_or(c.next, |h| h.seq) as u32;
                if let Some(h) = c.element.header(&buf) {
                    c.channel.get_or_insert(h.channel);
                }
                let frame = c.topic.trim_start_matches('/');
                let data = c.element.to_ros(&buf, frame, stamp);
                let header = MessageHeader {
                    channel_id: c.id,
                    sequence,
                    log_time,
                    publish_time: stamp,
                };
                writer
                    .write_to_known_channel(&header, &data)
                    .map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
                counts[i] += 1;
                c.next += 1;
                progress = true;
            }
        }
        if stopping {
            break;
        }
        if !progress {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let ids = channels
        .iter()
        .filter_map(|c| Some((c.topic.clone(), c.channel?.to_string())))
        .collect();
    writer
        .write_metadata(&mcap::records::Metadata {
            name: CHANNELS_METADATA.to_owned(),
            metadata: ids,
        })
        .map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
    writer.finish().map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
    for (c, n) in channels.iter().zip(&counts) {
        eprintln!(
            "{}: {n} messages, {} lost (overwritten before they were read)",
            c.topic, c.lost
        );
    }
    Ok(())
}

fn spec_name(o: &Opened) -> String {
    match &o.object.location {
        objects::Location::Sysv { id, key } => format!("sysv id {id} key {key}"),
        objects::Location::Posix { name } => format!("posix {name}"),
    }
}

/// Capacity of the rings `play` creates.
pub const PLAY_CAPACITY: usize = 8192;

enum PlayRing {
    Imu(sysv::SysvShared<BroadcastRing<Stamped<ImuSample>, PLAY_CAPACITY>>),
    Mag(sysv::SysvShared<BroadcastRing<Stamped<MagSample>, PLAY_CAPACITY>>),
    Gnss(sysv::SysvShared<BroadcastRing<Stamped<GnssFix>, PLAY_CAPACITY>>),
    Quaternion(sysv::SysvShared<BroadcastRing<Stamped<Quaternion>, PLAY_CAPACITY>>),
}

enum PlayWriter<'a> {
    Imu(BroadcastWriter<'a, Stamped<ImuSample>, PLAY_CAPACITY>),
    Mag(BroadcastWriter<'a, Stamped<MagSample>, PLAY_CAPACITY>),
    Gnss(BroadcastWriter<'a, Stamped<GnssFix>, PLAY_CAPACITY>),
    Quaternion(BroadcastWriter<'a, Stamped<Quaternion>, PLAY_CAPACITY>),
}

impl PlayRing {
    fn writer(&self) -> Result<PlayWriter<'_>, shmfusion::buffer::Error> {
        Ok(match self {
            PlayRing::Imu(r) => PlayWriter::Imu(r.get().writer()?),
            PlayRing::Mag(r) => PlayWriter::Mag(r.get().writer()?),
            PlayRing::Gnss(r) => PlayWriter::Gnss(r.get().writer()?),
            PlayRing::Quaternion(r) => PlayWriter::Quaternion(r.get().writer()?),
        })
    }
}

impl PlayWriter<'_> {
    /// Publishes a stamped sample given as bytes (its size checked by the caller's decoding).
    fn publish(&mut self, bytes: &[u8]) {
        match self {
            PlayWriter::Imu(w) => drop(w.publish_one(&bytemuck::pod_read_unaligned(bytes))),
            PlayWriter::Mag(w) => drop(w.publish_one(&bytemuck::pod_read_unaligned(bytes))),
            PlayWriter::Gnss(w) => drop(w.publish_one(&bytemuck::pod_read_unaligned(bytes))),
            PlayWriter::Quaternion(w) => drop(w.publish_one(&bytemuck::pod_read_unaligned(bytes))),
        }
    }
}

pub fn play(input: &std::path::Path, speed: f64, key_base: Option<u32>, linger: f64) -> Result<(), Failure> {
    if speed <= 0.0 || !speed.is_finite() {
        return Err(Failure::usage("--speed must be a positive number".into()));
    }
    let data = std::fs::read(input).map_err(|e| Failure::runtime(format!("{}: {e}", input.display())))?;
    let summary = mcap::Summary::read(&data)
        .map_err(|e| Failure::runtime(format!("mcap: {e}")))?
        .ok_or_else(|| Failure::runtime("mcap file has no summary".into()))?;
    // Channel ids by topic, where the recording has them (samples without become channel 0).
    let mut ids = BTreeMap::new();
    for index in summary.metadata_indexes.iter().filter(|i| i.name == CHANNELS_METADATA) {
        let m = mcap::read::metadata(&data, index).map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
        ids.extend(
            m.metadata
                .into_iter()
                .filter_map(|(t, id)| Some((t, id.parse::<u32>().ok()?))),
        );
    }
    let mut rings: BTreeMap<u16, (SampleType, PlayRing)> = BTreeMap::new();
    let options = ObjectOptions::new();
    for (i, (id, channel)) in summary.channels.iter().enumerate() {
        let schema = channel.schema.as_ref().map(|s| s.name.as_str()).unwrap_or("");
        let Some(sample) = [
            SampleType::Imu,
            SampleType::Mag,
            SampleType::Gnss,
            SampleType::Quaternion,
        ]
        .into_iter()
        .find(|s| s.ros_type().0 == schema) else {
            eprintln!("skipping {} ({schema}): not a type shmfusion plays", channel.topic);
            continue;
        };
        let key = key_base.map_or(Key::PRIVATE, |b| Key::from_raw(b.wrapping_add(i as u32) as i32));
        let err = |e: shmfusion::object::ObjectError| Failure::runtime(format!("{}: {e}", channel.topic));
        let ring = match sample {
            SampleType::Imu => PlayRing::Imu(sysv::create(key, &options).map_err(err)?),
            SampleType::Mag => PlayRing::Mag(sysv::create(key, &options).map_err(err)?),
            SampleType::Gnss => PlayRing::Gnss(sysv::create(key, &options).map_err(err)?),
            SampleType::Quaternion => PlayRing::Quaternion(sysv::create(key, &options).map_err(err)?),
        };
        let sid = match &ring {
            PlayRing::Imu(r) => r.region().id(),
            PlayRing::Mag(r) => r.region().id(),
            PlayRing::Gnss(r) => r.region().id(),
            PlayRing::Quaternion(r) => r.region().id(),
        };
        println!(
            "{} -> sysv id {} key 0x{:08x} ({}, capacity {PLAY_CAPACITY})",
            channel.topic,
            sid.as_raw(),
            key.as_raw() as u32,
            sample.name()
        );
        rings.insert(*id, (sample, ring));
    }
    let mut writers = BTreeMap::new();
    for (id, (sample, ring)) in &rings {
        let w = ring
            .writer()
            .map_err(|e| Failure::runtime(format!("writer role: {e}")))?;
        writers.insert(*id, (*sample, w));
    }
    println!("ready");
    catch_stop_signals();
    let start = Instant::now();
    let mut first: Option<u64> = None;
    let mut count = 0u64;
    for message in mcap::MessageStream::new(&data).map_err(|e| Failure::runtime(format!("mcap: {e}")))? {
        let message = message.map_err(|e| Failure::runtime(format!("mcap: {e}")))?;
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        let Some((sample, writer)) = writers.get_mut(&message.channel.id) else {
            continue;
        };
        let t0 = *first.get_or_insert(message.log_time);
        let due = Duration::from_nanos(((message.log_time.saturating_sub(t0)) as f64 / speed) as u64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let channel = ids.get(&message.channel.topic).copied().unwrap_or(0);
        let (_, bytes) = crate::samples::from_ros(*sample, &message.data, u64::from(message.sequence), channel)
            .map_err(|e| Failure::runtime(format!("{}: {e}", message.channel.topic)))?;
        writer.publish(&bytes);
        count += 1;
    }
    println!("played {count} messages in {:.2} s", start.elapsed().as_secs_f64());
    let end = Instant::now();
    while end.elapsed().as_secs_f64() < linger && !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
