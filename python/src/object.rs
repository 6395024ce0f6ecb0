//! Where an object lives (SysV key or id, POSIX shared-memory name) and a type-erased owner of its mapping.

use std::ffi::CString;
use std::ptr::NonNull;

use shmfusion::object::{Fingerprint, Lifecycle, ObjectError, ObjectOptions, SharedState, fd, sysv};
use shmfusion::shm::{Key, ShmId};

/// How a Python caller names an object.
#[derive(Clone, Debug)]
pub enum Location {
    /// A System V key (`Key::PRIVATE` creates an object reachable only by its id).
    Key(Key),
    /// An existing System V segment by id (open only).
    Id(ShmId),
    /// A POSIX shared-memory name such as `/imu`.
    Name(CString),
}

/// A mapped object of payload `S`, whatever kind of region holds it. The payload stays at one address for the
/// object's life (the mapping does not move when the owner moves), so handles may borrow it for as long as they
/// keep the `Object` alive.
pub struct Object<S: SharedState> {
    state: NonNull<S>,
    id: Option<i32>,
    // Dropped after everything above: it owns the mapping `state` points into.
    _owner: Box<dyn Send + Sync>,
}

// SAFETY: `S: SharedState` is Sync and all its shared bytes are atomics; the owner (a `Shared`) is Send + Sync.
unsafe impl<S: SharedState> Send for Object<S> {}
// SAFETY: as above.
unsafe impl<S: SharedState> Sync for Object<S> {}

impl<S: SharedState + Send + 'static> Object<S> {
    fn new<R: shmfusion::object::Region + Send + Sync + 'static>(
        shared: shmfusion::object::Shared<S, R>,
        id: Option<i32>,
    ) -> Self {
        let state = NonNull::from(shared.get());
        Self {
            state,
            id,
            _owner: Box::new(shared),
        }
    }
}

impl<S: SharedState> Object<S> {
    /// The payload.
    pub fn get(&self) -> &S {
        // SAFETY: `state` points into the mapping owned by `_owner`, which lives as long as `self` and does not
        // move the mapping; `Shared` validated bounds and alignment when it was opened or created.
        unsafe { self.state.as_ref() }
    }

    /// The System V segment id (`None` for POSIX objects).
    pub fn id(&self) -> Option<i32> {
        self.id
    }
}

/// Creates an object of payload `S` at `at`.
pub fn create<S: SharedState + Send + 'static>(
    at: &Location,
    options: &ObjectOptions,
) -> Result<Object<S>, ObjectError> {
    match at {
        Location::Key(key) => {
            let shared = sysv::create::<S>(*key, options)?;
            let id = shared.region().id().as_raw();
            Ok(Object::new(shared, Some(id)))
        }
        Location::Name(name) => Ok(Object::new(fd::posix::create::<S>(name, options)?, None)),
        Location::Id(_) => Err(ObjectError::Os(shmfusion::Errno::INVAL)),
    }
}

/// Opens the object of payload `S` at `at`.
pub fn open<S: SharedState + Send + 'static>(at: &Location, options: &ObjectOptions) -> Result<Object<S>, ObjectError> {
    match at {
        Location::Key(key) => {
            let shared = sysv::open::<S>(*key, options)?;
            let id = shared.region().id().as_raw();
            Ok(Object::new(shared, Some(id)))
        }
        Location::Id(id) => Ok(Object::new(sysv::open_id::<S>(*id, options)?, Some(id.as_raw()))),
        Location::Name(name) => Ok(Object::new(fd::posix::open::<S>(name, options)?, None)),
    }
}

/// Parses a lifecycle name as Python callers give it.
pub fn lifecycle(name: &str) -> Option<Lifecycle> {
    match name {
        "creator" => Some(Lifecycle::UntilCreatorGone),
        "last-detach" => Some(Lifecycle::RemoveOnLastDetach),
        "persist" => Some(Lifecycle::Persist),
        _ => None,
    }
}

/// A mapped object whose payload is described at run time, whatever kind of region holds it.
pub enum RawObject {
    /// In a System V segment.
    Sysv(shmfusion::object::RawShared<shmfusion::shm::Attachment>),
    /// In an `mmap`ed POSIX shared-memory object.
    Fd(shmfusion::object::RawShared<shmfusion::object::Mapping>),
}

impl RawObject {
    /// The System V segment id (`None` for POSIX objects).
    pub fn id(&self) -> Option<i32> {
        match self {
            RawObject::Sysv(o) => Some(o.region().id().as_raw()),
            RawObject::Fd(_) => None,
        }
    }
}

/// Creates an object with fingerprint `fp` at `at`.
pub fn create_raw(at: &Location, fp: &Fingerprint, options: &ObjectOptions) -> Result<RawObject, ObjectError> {
    match at {
        Location::Key(key) => Ok(RawObject::Sysv(sysv::create_raw(*key, fp, options)?)),
        Location::Name(name) => Ok(RawObject::Fd(fd::posix::create_raw(name, fp, options)?)),
        Location::Id(_) => Err(ObjectError::Os(shmfusion::Errno::INVAL)),
    }
}

/// Opens the object with fingerprint `fp` at `at`.
pub fn open_raw(at: &Location, fp: &Fingerprint, options: &ObjectOptions) -> Result<RawObject, ObjectError> {
    match at {
        Location::Key(key) => Ok(RawObject::Sysv(sysv::open_raw(*key, fp, options)?)),
        Location::Id(id) => Ok(RawObject::Sysv(sysv::open_id_raw(*id, fp, options)?)),
        Location::Name(name) => Ok(RawObject::Fd(fd::posix::open_raw(name, fp, options)?)),
    }
}
