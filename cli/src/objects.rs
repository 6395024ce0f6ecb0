//! Finding shared memory objects and reading them without changing them.
//!
//! SysV segments come from the kernel's table (`shmfusion::shm::segments`, like `ipcs -m`); their status is
//! taken before anything else, then the segment is attached read-only (`SHM_RDONLY`) to read a header. POSIX
//! objects come from `/dev/shm`, opened read-only and mapped `PROT_READ`. Headers and buffers are read with the
//! core's read-only inspection API, which only loads.

use std::sync::atomic::AtomicU8;

use serde::Serialize;
use shmfusion::buffer::inspect::{BufferState, BufferView};
use shmfusion::liveness::{Holder, Liveness, RoleRecord};
use shmfusion::object::view::{HeaderView, ReadOnlyMapping, read_header};
use shmfusion::shm::{AttachOptions, Attachment, Key, ShmId, Stat, segments};

use crate::samples::{self, Element};

/// Where an object lives and how it is named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum Location {
    Sysv { id: i32, key: String },
    Posix { name: String },
}

/// A role holder (or an object's creator) as the tool reports it: what it recorded about itself, and its
/// liveness as the core judges it (`shmfusion::liveness`; never a pid check here).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Process {
    /// Its pid in this tool's PID namespace; in another PID namespace, its pid there (see `same_pid_namespace`).
    pub pid: u32,
    /// Whether `pid` is a pid of this tool's PID namespace.
    pub same_pid_namespace: bool,
    /// `alive`, `dead` or `unknown` (another IPC namespace: never taken over).
    pub liveness: &'static str,
    /// Not known to be dead.
    pub alive: bool,
    /// When it claimed the role, `CLOCK_REALTIME` ns (0: not recorded).
    pub since_unix_ns: u64,
}

impl Process {
    pub fn of(holder: Holder) -> Self {
        Self {
            pid: holder.pid.unwrap_or(holder.own_pid),
            same_pid_namespace: holder.pid.is_some(),
            liveness: match holder.liveness {
                Liveness::Alive => "alive",
                Liveness::Dead => "dead",
                Liveness::Unknown => "unknown",
            },
            alive: holder.liveness != Liveness::Dead,
            since_unix_ns: holder.since_unix_ns,
        }
    }

    /// The holder of a role read out of a mapping, judged now; `None` when the role is free.
    pub fn holding(role: &RoleRecord) -> Option<Self> {
        role.holder().map(Self::of)
    }
}

/// One object: what the kernel or the file system says, and for shmfusion objects the decoded header.
#[derive(Clone, Debug, Serialize)]
pub struct Object {
    #[serde(flatten)]
    pub location: Location,
    pub owner_uid: u32,
    pub creator_uid: u32,
    /// Permission bits, octal.
    pub mode: String,
    pub size: u64,
    /// SysV only.
    pub attach_count: Option<u64>,
    /// SysV only: the kernel's record of the creating pid, in this tool's PID namespace (0: not visible here).
    pub creator_pid: Option<u32>,
    pub marked_for_removal: bool,
    pub shmfusion: Option<Shmfusion>,
    /// Why the header was not decoded (a plain segment, not readable, ...); `None` for shmfusion objects.
    pub note: Option<String>,
}

/// The decoded header and buffer state of a shmfusion object.
#[derive(Clone, Debug, Serialize)]
pub struct Shmfusion {
    /// `spsc-ring`, `latest`, `broadcast-ring`, or `unknown`.
    pub kind: String,
    /// `stamped-imu`, `imu`, ..., or `unknown`.
    pub element_type: String,
    pub element_size: u64,
    pub capacity: u64,
    /// `persist`, `remove-on-last-detach` or `until-creator-gone`.
    pub lifecycle: String,
    /// The creator as the header records it (`None`: it never stamped the header).
    pub creator: Option<Process>,
    pub writer: Option<Process>,
    pub consumer: Option<Process>,
    pub written: Option<u64>,
    pub fill: Option<u64>,
    /// `CLOCK_MONOTONIC` ns of the last write: the newest sample's stamp (stamped element types only).
    pub last_write_ns: Option<u64>,
    /// Milliseconds from `last_write_ns` to now.
    pub last_write_age_ms: Option<f64>,
}

/// An object's mapping, kept for reading samples.
pub enum Mapped {
    Sysv(Attachment),
    Posix(ReadOnlyMapping),
}

impl Mapped {
    pub fn bytes(&self) -> &[AtomicU8] {
        match self {
            Mapped::Sysv(a) => a.bytes(),
            Mapped::Posix(m) => m.bytes(),
        }
    }
}

/// An object with its read-only mapping and decoded header, for commands that read samples.
pub struct Opened {
    pub object: Object,
    pub map: Option<Mapped>,
    pub header: Option<HeaderView>,
    pub element: Option<Element>,
}

impl Opened {
    /// The buffer view of a shmfusion object.
    pub fn view(&self) -> Option<BufferView<'_>> {
        let (map, header) = (self.map.as_ref()?, self.header.as_ref()?);
        let payload = map.bytes().get(header.snapshot.payload_offset as usize..)?;
        BufferView::new(payload, &header.snapshot).ok()
    }

    /// Re-reads the buffer state and refreshes the decoded fields.
    pub fn refresh(&mut self) {
        if let (Some(map), Some(_)) = (&self.map, &self.header) {
            self.header = read_header(map.bytes()).ok();
        }
        let Some(header) = self.header else { return };
        let state = self.view().map(|v| (v.state(), self.newest_stamp(&v)));
        self.object.shmfusion = Some(describe(&self.object, &header, state, self.element));
    }

    fn newest_stamp(&self, view: &BufferView<'_>) -> Option<u64> {
        let element = self.element.filter(|e| e.stamped)?;
        let written = view.state().written;
        let mut bytes = vec![0u8; element.size()];
        view.read(written.checked_sub(1)?, &mut bytes).ok()?;
        element.header(&bytes).map(|h| h.stamp.as_nanos())
    }
}

pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn describe(
    object: &Object,
    header: &HeaderView,
    state: Option<(BufferState, Option<u64>)>,
    element: Option<Element>,
) -> Shmfusion {
    let s = &header.snapshot;
    let kind = shmfusion::buffer::inspect::BufferKind::from_kind_hash(s.kind_hash);
    let lifecycle = if header.persistent() {
        "persist"
    } else if object.marked_for_removal {
        "remove-on-last-detach"
    } else {
        "until-creator-gone"
    };
    let last_write_ns = state.and_then(|(_, stamp)| stamp);
    let now = now_ns();
    Shmfusion {
        kind: kind.map_or("unknown", |k| k.name()).to_owned(),
        element_type: element.map_or_else(|| "unknown".to_owned(), |e| e.name()),
        element_size: s.element_size,
        capacity: s.capacity,
        lifecycle: lifecycle.to_owned(),
        creator: header.creator().map(Process::of),
        writer: state.and_then(|(b, _)| Process::holding(&b.writer)),
        consumer: state.and_then(|(b, _)| Process::holding(&b.consumer)),
        written: state.map(|(b, _)| b.written),
        fill: state.map(|(b, _)| b.fill),
        last_write_ns,
        last_write_age_ms: last_write_ns.map(|t| now.saturating_sub(t) as f64 / 1e6),
    }
}

fn decode(object: Object, map: Option<Mapped>) -> Opened {
    let mut opened = Opened {
        object,
        map: None,
        header: None,
        element: None,
    };
    let Some(map) = map else { return opened };
    match read_header(map.bytes()) {
        Ok(header) => {
            let s = header.snapshot;
            opened.element = shmfusion::buffer::inspect::BufferKind::from_kind_hash(s.kind_hash)
                .and_then(|k| samples::recognise(k, s.capacity, s.type_id));
            opened.header = Some(header);
            opened.map = Some(map);
            opened.object.note = None;
            opened.refresh();
        }
        Err(e) => opened.object.note = Some(format!("not a shmfusion object: {e}")),
    }
    opened
}

fn sysv_object(id: ShmId, stat: &Stat) -> Object {
    Object {
        location: Location::Sysv {
            id: id.as_raw(),
            key: format!("0x{:08x}", stat.key.as_raw() as u32),
        },
        owner_uid: stat.ownership.uid,
        creator_uid: stat.ownership.creator_uid,
        mode: format!("{:o}", stat.mode.bits() & 0o777),
        size: stat.size as u64,
        attach_count: Some(stat.attach_count),
        creator_pid: Some(stat.creator_pid as u32),
        marked_for_removal: stat.marked_for_removal,
        shmfusion: None,
        note: Some("smaller than a header".into()),
    }
}

/// Opens a SysV segment for looking: status first, then a read-only attachment if it can hold a header.
pub fn open_sysv(id: ShmId, stat: &Stat) -> Opened {
    let mut object = sysv_object(id, stat);
    if shmfusion::liveness::is_anchor(stat) {
        // A process's liveness anchor (one per process holding a role or having created an object): not data.
        object.note = Some(
            if stat.marked_for_removal {
                "liveness anchor of a live process"
            } else if stat.attach_count == 0 {
                "leaked liveness anchor (reap removes it)"
            } else {
                "liveness anchor being created"
            }
            .into(),
        );
        return decode(object, None);
    }
    if stat.size < 256 {
        return decode(object, None);
    }
    match id.attach(AttachOptions::new().read_only()) {
        Ok(map) => decode(object, Some(Mapped::Sysv(map))),
        Err(e) => {
            object.note = Some(format!("cannot attach read-only: {e}"));
            decode(object, None)
        }
    }
}

/// Opens `/dev/shm/<name>` for looking.
pub fn open_posix(name: &str) -> Option<Opened> {
    use std::os::unix::fs::MetadataExt;
    let path = std::path::Path::new("/dev/shm").join(name);
    let meta = std::fs::symlink_metadata(&path).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let mut object = Object {
        location: Location::Posix {
            name: format!("/{name}"),
        },
        owner_uid: meta.uid(),
        creator_uid: meta.uid(),
        mode: format!("{:o}", meta.mode() & 0o777),
        size: meta.size(),
        attach_count: None,
        creator_pid: None,
        marked_for_removal: false,
        shmfusion: None,
        note: Some("smaller than a header".into()),
    };
    if meta.size() < 256 {
        return Some(decode(object, None));
    }
    let map = std::fs::File::open(&path)
        .map_err(|e| e.to_string())
        .and_then(|f| ReadOnlyMapping::new(&f, meta.size() as usize).map_err(|e| e.to_string()));
    Some(match map {
        Ok(map) => decode(object, Some(Mapped::Posix(map))),
        Err(e) => {
            object.note = Some(format!("cannot map read-only: {e}"));
            decode(object, None)
        }
    })
}

/// Every object: SysV segments in kernel order, then `/dev/shm` in name order.
pub fn all() -> std::io::Result<Vec<Opened>> {
    let mut out: Vec<Opened> = segments()
        .map_err(std::io::Error::from)?
        .map(|(id, stat)| open_sysv(id, &stat))
        .collect();
    out.extend(posix_names().iter().filter_map(|n| open_posix(n)));
    Ok(out)
}

/// The names in `/dev/shm`, sorted, without the leading `/`.
pub fn posix_names() -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir("/dev/shm") {
        Ok(dir) => dir
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// How a command names an object: `0x<hex>` or `key:<n>` is a SysV key, a decimal number or `id:<n>` a SysV id,
/// anything else (with or without a leading `/`) a POSIX shared memory name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Key(i32),
    Id(i32),
    Name(String),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hex = |h: &str| {
            u32::from_str_radix(h, 16)
                .map(|k| k as i32)
                .map_err(|e| format!("bad key `{s}`: {e}"))
        };
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            return hex(h).map(Target::Key);
        }
        if let Some(k) = s.strip_prefix("key:") {
            return match k.strip_prefix("0x") {
                Some(h) => hex(h).map(Target::Key),
                None => k.parse().map(Target::Key).map_err(|e| format!("bad key `{s}`: {e}")),
            };
        }
        if let Some(i) = s.strip_prefix("id:") {
            return i.parse().map(Target::Id).map_err(|e| format!("bad id `{s}`: {e}"));
        }
        if let Ok(id) = s.parse::<i32>() {
            return Ok(Target::Id(id));
        }
        let name = s.trim_start_matches('/');
        if name.is_empty() || name.contains('/') {
            return Err(format!("`{s}` is neither a key, an id nor a shared memory name"));
        }
        Ok(Target::Name(name.to_owned()))
    }
}

/// Opens the object a target names.
pub fn find(target: &Target) -> Option<Opened> {
    match target {
        Target::Name(name) => open_posix(name),
        Target::Id(id) => {
            let id = ShmId::from_raw(*id);
            id.stat().ok().map(|stat| open_sysv(id, &stat))
        }
        Target::Key(key) => {
            // The table, not shmget: shmget would need permission, and the key may be shared by nobody else.
            let (id, stat) = segments()
                .ok()?
                .find(|(_, s)| s.key == Key::from_raw(*key) && !s.key.is_private())?;
            Some(open_sysv(id, &stat))
        }
    }
}
