//! The forwarding loops: one thread per channel, sharing one Zenoh session.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use shmfusion::buffer::{BroadcastRing, Error as BufferError, Latest};
use shmfusion::fusion::{GnssFix, ImuSample, MagSample, Quaternion, Stamped};
use shmfusion::object::{ObjectOptions, SharedState, sysv};
use shmfusion::shm::{Key, ShmId};
use zenoh::Wait;
use zenoh::handlers::FifoChannel;
use zenoh::qos::CongestionControl;

use crate::clock;
use crate::loss::{Arrival, SequenceTracker};
use crate::raw::RawCodec;
use crate::rmw::{self, Attachment};
use crate::ros2map::Ros2Sample;
use crate::session::SessionOptions;
use crate::spec::{Buffer, ChannelSpec, Direction, Format, Kind, Policy, Segment};
use crate::stats::{BridgeStats, ChannelStats, EXPORT, IMPORT, MAX_CHANNELS, StatsSlot};

/// How often the loops look at the stop flag when nothing arrives.
const POLL: Duration = Duration::from_millis(50);
/// How often a `block` export looks for a matching subscriber before it starts.
const MATCH_POLL: Duration = Duration::from_millis(5);

/// A whole bridge: its session and its channels.
#[derive(Clone, Debug, Default)]
pub struct BridgeConfig {
    /// How to join the network.
    pub session: SessionOptions,
    /// What to forward.
    pub channels: Vec<ChannelSpec>,
    /// Publish statistics in a `Latest<BridgeStats>` under this System V key.
    pub stats_key: Option<i32>,
    /// The ROS 2 node name the liveliness tokens announce.
    pub node: String,
}

/// Declares a liveliness token (what makes a ROS 2 node or publisher appear in `ros2 node list`/`topic list`).
fn declare_token(session: &zenoh::Session, token: String) -> Result<zenoh::liveliness::LivelinessToken, BridgeError> {
    session
        .liveliness()
        .declare_token(token)
        .wait()
        .map_err(|e| BridgeError(format!("liveliness: {e}")))
}

/// Why a bridge stopped.
#[derive(Debug)]
pub struct BridgeError(pub String);

impl core::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BridgeError {}

struct Shared {
    session: zenoh::Session,
    stats: Mutex<BridgeStats>,
    ready: AtomicUsize,
    node: String,
    /// Held across every put of a `block` channel, so that at most one of this session's puts waits in Zenoh at a
    /// time (see [`Outlet::send`]).
    blocking_put: Mutex<()>,
}

impl Shared {
    fn update(&self, index: usize, f: impl FnOnce(&mut ChannelStats)) {
        if index < MAX_CHANNELS {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut s.channels[index]);
        }
    }
}

/// Runs the bridge until `stop` is set; calls `on_ready` once every channel is declared on the network. Returns
/// the final statistics.
///
/// # Errors
/// A [`BridgeError`] if the session cannot be opened or a channel cannot start (for example an import whose
/// ring's writer role is held by another live process).
pub fn run(
    config: &BridgeConfig,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&BridgeStats),
) -> Result<BridgeStats, BridgeError> {
    if config.channels.len() > MAX_CHANNELS {
        return Err(BridgeError(format!("at most {MAX_CHANNELS} channels per bridge")));
    }
    let session = config.session.open().map_err(|e| BridgeError(e.to_string()))?;
    let mut initial = BridgeStats {
        pid: std::process::id(),
        count: config.channels.len() as u32,
        ..Default::default()
    };
    for (i, spec) in config.channels.iter().enumerate() {
        initial.channels[i].channel = spec.channel;
        initial.channels[i].direction = if spec.direction == Direction::Export {
            EXPORT
        } else {
            IMPORT
        };
    }
    let node = if config.node.is_empty() {
        "shmfusion_bridge".to_owned()
    } else {
        config.node.clone()
    };
    let shared = Arc::new(Shared {
        session: session.clone(),
        stats: Mutex::new(initial),
        ready: AtomicUsize::new(0),
        node,
        blocking_put: Mutex::new(()),
    });
    // rmw_zenoh announces the node before its publishers.
    let _node_token = if config
        .channels
        .iter()
        .any(|c| c.format == Format::Ros2 && c.direction == Direction::Export)
    {
        let domain = config
            .channels
            .iter()
            .find(|c| c.format == Format::Ros2)
            .map_or(0, |c| c.domain);
        let token = rmw::node_token(domain, &session.zid().to_string(), 0, "", &shared.node);
        Some(declare_token(&session, token)?)
    } else {
        None
    };
    let failure: Mutex<Option<BridgeError>> = Mutex::new(None);
    let result = thread::scope(|scope| {
        let mut handles = Vec::new();
        for (index, spec) in config.channels.iter().enumerate() {
            let shared = &shared;
            let failure = &failure;
            handles.push(scope.spawn(move || {
                if let Err(e) = dispatch(spec, index, shared, stop) {
                    eprintln!("shmfusion-bridge: channel {} ({}): {e}", spec.channel, spec.key);
                    failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    stop.store(true, Ordering::SeqCst);
                }
            }));
        }
        let stats_slot = match config.stats_key {
            Some(k) => match sysv::open_or_create::<StatsSlot>(Key::from_raw(k), &ObjectOptions::new()) {
                Ok((slot, _)) => Some(slot),
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(BridgeError(format!("stats slot {k:#x}: {e}")));
                    None
                }
            },
            None => None,
        };
        let mut writer = match stats_slot.as_ref().map(|s| s.get().writer()) {
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => {
                stop.store(true, Ordering::SeqCst);
                *failure.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(BridgeError(format!("stats slot writer: {e}")));
                None
            }
            None => None,
        };
        let mut on_ready = Some(on_ready);
        while !stop.load(Ordering::SeqCst) {
            let snapshot = {
                let mut s = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
                s.updates += 1;
                *s
            };
            if let Some(w) = writer.as_mut() {
                w.write(&snapshot);
            }
            if shared.ready.load(Ordering::SeqCst) == config.channels.len() {
                if let Some(f) = on_ready.take() {
                    f(&snapshot);
                }
            }
            thread::sleep(if on_ready.is_some() {
                Duration::from_millis(5)
            } else {
                Duration::from_millis(100)
            });
        }
        for h in handles {
            let _ = h.join();
        }
        let last = *shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writer.as_mut() {
            w.write(&last);
        }
        last
    });
    let _ = session.close().wait();
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(result),
    }
}

macro_rules! by_capacity {
    ($f:ident, $t:ty, $spec:expr, $($args:expr),*) => {
        match $spec.capacity {
            16 => $f::<$t, 16>($spec, $($args),*),
            64 => $f::<$t, 64>($spec, $($args),*),
            256 => $f::<$t, 256>($spec, $($args),*),
            512 => $f::<$t, 512>($spec, $($args),*),
            1024 => $f::<$t, 1024>($spec, $($args),*),
            4096 => $f::<$t, 4096>($spec, $($args),*),
            n => Err(BridgeError(format!("ring capacity {n} is not built in"))),
        }
    };
}

/// A latest-value slot has no capacity to dispatch on.
macro_rules! slot {
    ($f:ident, $t:ty, $spec:expr, $($args:expr),*) => {
        $f::<$t>($spec, $($args),*)
    };
}

fn dispatch(spec: &ChannelSpec, index: usize, shared: &Shared, stop: &AtomicBool) -> Result<(), BridgeError> {
    macro_rules! by_kind {
        ($by:ident, $f:ident) => {
            match spec.kind {
                Kind::Imu => $by!($f, ImuSample, spec, index, shared, stop),
                Kind::Mag => $by!($f, MagSample, spec, index, shared, stop),
                Kind::Gnss => $by!($f, GnssFix, spec, index, shared, stop),
                Kind::Attitude => $by!($f, Quaternion, spec, index, shared, stop),
            }
        };
    }
    match (spec.direction, spec.buffer) {
        (Direction::Export, Buffer::Ring) => by_kind!(by_capacity, export_ring),
        (Direction::Export, Buffer::Latest) => by_kind!(slot, export_latest),
        (Direction::Import, _) => by_kind!(by_capacity, import),
    }
}

fn congestion(policy: Policy) -> CongestionControl {
    match policy {
        Policy::Block => CongestionControl::Block,
        Policy::DropNewest => CongestionControl::Drop,
    }
}

/// The data key expression of a channel.
pub fn data_key<T: Ros2Sample>(spec: &ChannelSpec) -> String {
    match spec.format {
        Format::Raw => spec.key.clone(),
        Format::Ros2 => rmw::topic_key(spec.domain, &spec.key, &T::TYPE, spec.distro),
    }
}

type Ring<T, const N: usize> = BroadcastRing<Stamped<T>, N>;
type Slot<T> = Latest<Stamped<T>>;

/// Opens an export's local buffer; the producer may start after the bridge, so it looks again until the buffer
/// exists or `stop` is set (then `None`).
fn open_source<S: SharedState>(spec: &ChannelSpec, stop: &AtomicBool) -> Option<sysv::SysvShared<S>> {
    let options = spec.object_options();
    let mut last_error = String::new();
    while !stop.load(Ordering::SeqCst) {
        let opened = match spec.segment {
            Segment::Key(k) => sysv::open::<S>(Key::from_raw(k), &options),
            Segment::Id(id) => sysv::open_id::<S>(ShmId::from_raw(id), &options),
        };
        match opened {
            Ok(o) => return Some(o),
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    eprintln!(
                        "shmfusion-bridge: waiting for {:?} {:?}: {e}",
                        spec.buffer, spec.segment
                    );
                    last_error = e;
                }
                thread::sleep(POLL);
            }
        }
    }
    None
}

/// The network side of an export: its publisher (and, for ROS 2, its liveliness token and GID), and how it frames
/// and counts what it sends.
struct Outlet<'a, T: Ros2Sample> {
    spec: &'a ChannelSpec,
    index: usize,
    shared: &'a Shared,
    key: String,
    publisher: zenoh::pubsub::Publisher<'static>,
    gid: [u8; rmw::GID_SIZE],
    _token: Option<zenoh::liveliness::LivelinessToken>,
    codec: RawCodec<T>,
    frame: Vec<u8>,
}

impl<'a, T: Ros2Sample> Outlet<'a, T> {
    /// Declares the publisher (and token) and counts the channel as ready.
    fn declare(spec: &'a ChannelSpec, index: usize, shared: &'a Shared) -> Result<Self, BridgeError> {
        let key = data_key::<T>(spec);
        let publisher = shared
            .session
            .declare_publisher(key.clone())
            .congestion_control(congestion(spec.policy))
            .wait()
            .map_err(|e| BridgeError(format!("publisher {key}: {e}")))?;
        let mut gid = [0u8; rmw::GID_SIZE];
        let token = if spec.format == Format::Ros2 {
            let token = rmw::publisher_token(
                spec.domain,
                &shared.session.zid().to_string(),
                0,
                index as u32 + 1,
                "",
                &shared.node,
                &spec.key,
                &T::TYPE,
                spec.distro,
                &rmw::qos_chunk(spec.policy == Policy::Block, spec.capacity.min(1000) as u32),
            );
            gid = rmw::gid_for(&token);
            Some(declare_token(&shared.session, token)?)
        } else {
            None
        };
        shared.ready.fetch_add(1, Ordering::SeqCst);
        Ok(Self {
            spec,
            index,
            shared,
            key,
            publisher,
            gid,
            _token: token,
            codec: RawCodec::new(),
            frame: Vec::with_capacity(128),
        })
    }

    /// Publishes one sample.
    ///
    /// A `block` put runs under [`Shared::blocking_put`]. In Zenoh 1.10 a put that finds the link's queue full waits
    /// for a free batch for up to `wait_before_close` (5 s), holding the queue's lock all that time; if it gets none,
    /// Zenoh marks the queue disabled and closes the transport. A second blocking put that was already waiting for
    /// that lock has passed the "disabled" check, so it starts a new 5 s wait of its own when it gets the lock; and
    /// the closing link's teardown (`drain`, on Zenoh's one TX thread) waits for the same lock, so no link of the
    /// session transmits meanwhile, not even the new one after a repair: its queue fills, its puts time out, and it
    /// is closed too. Seen after an outage longer than the lease, with the IMU and attitude channels both blocked
    /// (3 of 12 loaded runs sent nothing for more than 3 s after the repair; gdb showed `tx-0` in `drain` and both
    /// channel threads waiting in `push_network_message`). One put at a time, the second finds the queue disabled
    /// and returns at once.
    fn send(&mut self, sample: &Stamped<T>) {
        let offset = clock::wall_offset_ns();
        let put = match self.spec.format {
            Format::Raw => {
                self.codec.encode(sample, offset, &mut self.frame);
                self.publisher.put(self.frame.as_slice())
            }
            Format::Ros2 => {
                let attachment = Attachment {
                    sequence_number: sample.header.seq.wrapping_add(1) as i64,
                    source_timestamp: clock::wall_now_ns(),
                    gid: self.gid,
                };
                self.publisher
                    .put(
                        sample
                            .payload
                            .to_cdr(clock::to_wall_ns(sample.header.stamp, offset), &self.spec.frame_id),
                    )
                    .attachment(attachment.encode().to_vec())
            }
        };
        let result = if self.spec.policy == Policy::Block {
            let _one_at_a_time = self.shared.blocking_put.lock().unwrap_or_else(|p| p.into_inner());
            put.wait()
        } else {
            put.wait()
        };
        match result {
            Ok(()) => self.shared.update(self.index, |c| {
                c.forwarded += 1;
                c.last_seq = sample.header.seq;
            }),
            Err(e) => {
                self.shared.update(self.index, |c| c.rejected += 1);
                eprintln!("shmfusion-bridge: put on {}: {e}", self.key);
            }
        }
    }

    /// With the blocking policy, waits until a subscriber matches this publisher (Zenoh's matching status), or
    /// until `stop`; returns at once with the drop policy.
    ///
    /// Zenoh 1.10 peers route a new session's first samples by start-up rules: everything goes to the new peer until
    /// it has answered the publisher's initial interest, then only what matches a subscriber it has declared. A
    /// subscriber declared in between gets nothing until its declaration arrives, and those samples are lost
    /// although each put succeeded (seen: up to 12 at 1 kHz between native peers, 348 with an importer under
    /// qemu-user). Once a subscriber is matched the route holds it, so a `block` channel forwards from then on and
    /// loses nothing; what its local buffer held before is not replayed, as after any start.
    fn wait_for_subscriber(&self, stop: &AtomicBool) {
        if self.spec.policy != Policy::Block {
            return;
        }
        while !stop.load(Ordering::SeqCst) {
            match self.publisher.matching_status().wait() {
                Ok(status) if status.matching() => return,
                Ok(_) => thread::sleep(MATCH_POLL),
                Err(e) => {
                    eprintln!("shmfusion-bridge: matching status of {}: {e}", self.key);
                    return;
                }
            }
        }
    }

    /// Counts `n` samples the local buffer overwrote before this export read them.
    fn lagged(&self, n: u64) {
        self.shared.update(self.index, |c| c.lagged += n);
    }

    /// Counts and reports a local read that failed on bad shared data, then backs off.
    fn refused(&self, e: BufferError) {
        self.shared.update(self.index, |c| c.rejected += 1);
        eprintln!("shmfusion-bridge: local buffer of channel {}: {e}", self.spec.channel);
        thread::sleep(POLL);
    }
}

fn export_ring<T: Ros2Sample, const N: usize>(
    spec: &ChannelSpec,
    index: usize,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    let mut outlet = Outlet::<T>::declare(spec, index, shared)?;
    let Some(object) = open_source::<Ring<T, N>>(spec, stop) else {
        return Ok(());
    };
    outlet.wait_for_subscriber(stop);
    // Only what is published from now on: a restarted bridge does not replay the ring.
    let mut reader = object.get().reader();
    while !stop.load(Ordering::SeqCst) {
        match reader.recv_wait(Some(POLL)) {
            Ok((s, _)) => outlet.send(&s),
            Err(BufferError::Lagged(n)) => outlet.lagged(n),
            Err(BufferError::Timeout | BufferError::Empty) => {}
            // The producer closed the ring or died; a new one carries on from the ring's tail.
            Err(BufferError::WriterGone | BufferError::Closed) => thread::sleep(POLL),
            Err(e) => {
                outlet.refused(e);
                // A peer that moved the tail far ahead and back leaves the cursor ahead of the writer's
                // publications: follow the writer again from its tail.
                reader.skip_to_latest();
            }
        }
    }
    Ok(())
}

fn export_latest<T: Ros2Sample>(
    spec: &ChannelSpec,
    index: usize,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    let mut outlet = Outlet::<T>::declare(spec, index, shared)?;
    let Some(object) = open_source::<Slot<T>>(spec, stop) else {
        return Ok(());
    };
    let slot = object.get();
    outlet.wait_for_subscriber(stop);
    // The slot's sequence number counts its writes: a jump of more than one is values it overwrote before this
    // export read them. Only what is written from now on is forwarded, as for rings.
    let mut seen = slot.sequence();
    while !stop.load(Ordering::SeqCst) {
        match slot.wait_newer(seen, Some(POLL)) {
            Ok((s, version)) => {
                let skipped = version.saturating_sub(seen).saturating_sub(1);
                if skipped > 0 {
                    outlet.lagged(skipped);
                }
                seen = version;
                outlet.send(&s);
            }
            Err(BufferError::Timeout | BufferError::Empty) => {
                // A count below the one seen: a peer wrote a count far ahead, and the writer has published from its
                // own since. Follow the writer again, from its current value.
                let now = slot.sequence();
                if now < seen {
                    seen = now.saturating_sub(1);
                }
            }
            // The writer closed the slot or died; a successor takes the role over and carries on.
            Err(BufferError::WriterGone | BufferError::Closed) => thread::sleep(POLL),
            Err(e) => outlet.refused(e),
        }
    }
    Ok(())
}

fn import<T: Ros2Sample, const N: usize>(
    spec: &ChannelSpec,
    index: usize,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    let Segment::Key(k) = spec.segment else {
        return Err(BridgeError("an import needs a System V key".into()));
    };
    let (object, _created) = sysv::open_or_create::<Ring<T, N>>(Key::from_raw(k), &spec.object_options())
        .map_err(|e| BridgeError(format!("ring {k:#x}: {e}")))?;
    let ring = object.get();
    let mut writer = ring
        .writer()
        .map_err(|e| BridgeError(format!("ring {k:#x} writer role: {e}")))?;
    // After a restart, resume counting from the newest sample the ring already holds.
    let mut tracker = match ring.tail().checked_sub(1).map(|p| ring.reader_at(p).try_recv()) {
        Some(Ok((last, _))) => SequenceTracker::resuming_after(last.header.seq),
        _ => SequenceTracker::new(),
    };
    let key = data_key::<T>(spec);
    let subscriber = shared
        .session
        .declare_subscriber(key.clone())
        .with(FifoChannel::new(4096))
        .wait()
        .map_err(|e| BridgeError(format!("subscriber {key}: {e}")))?;
    shared.ready.fetch_add(1, Ordering::SeqCst);
    let codec = RawCodec::<T>::new();
    let mut reported = false;
    while !stop.load(Ordering::SeqCst) {
        let sample = match subscriber.recv_timeout(POLL) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(_) => break,
        };
        let local_offset = clock::wall_offset_ns();
        let bytes = sample.payload().to_bytes();
        let decoded: Result<Stamped<T>, String> = match spec.format {
            Format::Raw => codec.decode(&bytes).map_err(|e| e.to_string()).map(|f| {
                let mut s = f.sample;
                s.header.stamp = clock::rebase(s.header.stamp, f.wall_offset_ns, local_offset);
                s
            }),
            Format::Ros2 => match sample
                .attachment()
                .map(|a| a.to_bytes())
                .as_deref()
                .and_then(Attachment::decode)
            {
                None => Err("sample without an rmw_zenoh attachment".into()),
                Some(a) => T::from_cdr(&bytes)
                    .map_err(|e| e.to_string())
                    .map(|(payload, wall_ns)| {
                        let mut s = Stamped::new(Default::default(), payload);
                        s.header.seq = (a.sequence_number as u64).wrapping_sub(1);
                        s.header.channel = spec.channel;
                        s.header.stamp = clock::from_wall_ns(wall_ns, local_offset);
                        s
                    }),
            },
        };
        let s = match decoded {
            Ok(s) => s,
            Err(e) => {
                shared.update(index, |c| c.rejected += 1);
                if !reported {
                    eprintln!("shmfusion-bridge: refused a frame on {key}: {e}");
                    reported = true;
                }
                continue;
            }
        };
        match tracker.observe(s.header.seq) {
            Arrival::Stale => {}
            _ => {
                writer.publish_one(&s);
            }
        }
        let t = tracker;
        shared.update(index, |c| {
            c.forwarded = t.received;
            c.gap = t.gap;
            c.stale = t.stale;
            c.restarts = t.restarts;
            c.last_seq = s.header.seq;
        });
    }
    Ok(())
}
