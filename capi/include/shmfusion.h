/* shmfusion C ABI: generated from capi/src by `cargo xtask capi-header`; do not edit.
 * Every function returns 0 or a negative errno-style code (SF_E*); sf_strerror() describes it.
 * Handles live in caller-provided storage; close them before their object. Thread safety is
 * documented per function. See README "C and Zig". */

#ifndef SHMFUSION_H
#define SHMFUSION_H

#include <stddef.h>
#include <stdint.h>
#define SF_ALIGNED(n) __attribute__((aligned(n)))

// Success.
#define SF_OK 0

// Invalid argument: a null or misaligned pointer, a length that is not the element size, a bad layout, or a
// handle that is not open.
#define SF_EINVAL -22

// Nothing new to receive.
#define SF_EAGAIN -11

// The reader was lapped: samples were overwritten before it read them (their number is reported separately).
#define SF_EOVERFLOW -75

// The writer role is held by a live process (or the handle storage is already open).
#define SF_EBUSY -16

// The wait timed out.
#define SF_ETIMEDOUT -110

// The writer process is gone.
#define SF_EPIPE -32

// Positions found in shared memory are inconsistent (a buggy or hostile peer).
#define SF_EPROTO -71

// The object has another kind, type name or layout (element size, alignment, capacity).
#define SF_EPROTOTYPE -91

// Not a shmfusion object, or its header is corrupt.
#define SF_EBADMSG -74

// The object was written by another format version.
#define SF_EPROTONOSUPPORT -93

// The object's creator has not finished initialising it (or died doing so).
#define SF_ENODATA -61

// The segment belongs to another user or its mode is more permissive than asked.
#define SF_EACCES -13

// The object is too large for this platform.
#define SF_EFBIG -27

// The SPSC ring is full.
#define SF_ENOSPC -28

// The SPSC consumer process is gone.
#define SF_ECONNRESET -104

// A latest-value read found the value changing under it on every one of its bounded attempts.
#define SF_EDEADLK -35

// A named object is not a regular file (a symbolic link, FIFO, device, directory or socket).
#define SF_ENODEV -19

// A named object was replaced by another file while it was being opened.
#define SF_ESTALE -116

// The peer closed its end cleanly (released its role): nothing more will come, or nothing more is taken.
#define SF_ESHUTDOWN -108

// A broadcast ring: one writer, any number of readers; the writer overwrites the oldest sample.
#define SF_KIND_BROADCAST 1

// A single-producer single-consumer ring: the producer waits (or fails) when it is full.
#define SF_KIND_SPSC 2

// A latest-value slot: one writer, any number of readers of the newest value (`capacity` must be 1).
#define SF_KIND_LATEST 3

// Where a new reader starts: at the next sample published.
#define SF_FROM_NOW 0

// Where a new reader starts: at the oldest sample still in the ring.
#define SF_FROM_OLDEST 1

// `sizeof(sf_sample_header)`: what the Rust core lays out (checked at build time on every target); C programs
// check their compiler agrees with `_Static_assert` (see `capi/tests/abi.c`).
#define SF_SAMPLE_HEADER_SIZE 24

// `offsetof(sf_sample_header, seq)` in the Rust core.
#define SF_SAMPLE_HEADER_SEQ_OFFSET 8

// `offsetof(sf_sample_header, channel)` in the Rust core.
#define SF_SAMPLE_HEADER_CHANNEL_OFFSET 16

// `sizeof(sf_stamped_imu)` in the Rust core.
#define SF_STAMPED_IMU_SIZE 48

// `offsetof(sf_stamped_imu, payload.gyro)` in the Rust core.
#define SF_STAMPED_IMU_GYRO_OFFSET 36

// `sizeof(sf_stamped_mag)` in the Rust core.
#define SF_STAMPED_MAG_SIZE 40

// `sizeof(sf_stamped_gnss)` in the Rust core.
#define SF_STAMPED_GNSS_SIZE 64

// `offsetof(sf_stamped_gnss, payload.fix_type)` in the Rust core.
#define SF_STAMPED_GNSS_FIX_TYPE_OFFSET 56

// `sizeof(sf_stamped_quaternion)` in the Rust core.
#define SF_STAMPED_QUATERNION_SIZE 40

// A stamped IMU sample (`sf_stamped_imu`).
#define SF_SAMPLE_IMU 1

// A stamped magnetometer sample (`sf_stamped_mag`).
#define SF_SAMPLE_MAG 2

// A stamped GNSS fix (`sf_stamped_gnss`).
#define SF_SAMPLE_GNSS 3

// A stamped orientation (`sf_stamped_quaternion`).
#define SF_SAMPLE_QUATERNION 4

// Storage for an open object (caller-provided, any 8-byte-aligned memory; contents private).
typedef struct SF_ALIGNED(8) sf_object {
  // Private to the library: zero it before the first open, never change it.
  uint64_t opaque[96];
} sf_object;

// What an object holds, given by the caller and checked against the object's header.
typedef struct sf_desc {
  // The buffer kind: `SF_KIND_BROADCAST`, `SF_KIND_SPSC` or `SF_KIND_LATEST`.
  uint32_t kind;
  // Permission bits of a new object, and the most an opened one may grant (0: `0600`).
  uint32_t mode;
  // Element size in bytes (> 0).
  uint64_t element_size;
  // Element alignment: 1, 2, 4 or 8.
  uint64_t element_align;
  // Number of samples the buffer holds: a power of two (1 for a latest-value slot).
  uint64_t capacity;
  // The type name both sides agree on (a NUL-terminated string, e.g. `"shmfusion.StampedImu"`).
  const char *type_name;
} sf_desc;

// Storage for a broadcast writer (caller-provided; contents private).
typedef struct SF_ALIGNED(8) sf_broadcast_writer {
  // Private to the library: zero it before the first open, never change it.
  uint64_t opaque[16];
} sf_broadcast_writer;

// Storage for a broadcast reader (caller-provided; contents private).
typedef struct SF_ALIGNED(8) sf_broadcast_reader {
  // Private to the library: zero it before the first open, never change it.
  uint64_t opaque[16];
} sf_broadcast_reader;

// Storage for a latest-value writer (caller-provided; contents private).
typedef struct SF_ALIGNED(8) sf_latest_writer {
  // Private to the library: zero it before the first open, never change it.
  uint64_t opaque[16];
} sf_latest_writer;

// The header of a stamped sample (the core's `SampleHeader`).
typedef struct sf_sample_header {
  // `CLOCK_MONOTONIC` nanoseconds when the measurement was taken.
  uint64_t stamp_ns;
  // The producer's sequence number for this channel.
  uint64_t seq;
  // The sensor channel.
  uint32_t channel;
  // Free for the producer.
  uint32_t flags;
} sf_sample_header;

// Storage for an SPSC producer (caller-provided; contents private).
typedef struct SF_ALIGNED(8) sf_spsc_producer {
  // Private to the library: zero it before the first open, never change it.
  uint64_t opaque[24];
} sf_spsc_producer;

// Storage for an SPSC consumer (caller-provided; contents private).
typedef struct SF_ALIGNED(8) sf_spsc_consumer {
  // Private to the library: zero it before the first open, never change it.
  uint64_t opaque[24];
} sf_spsc_consumer;

// A 3-vector of `f32` (the core's `Vector3`).
typedef struct sf_vector3 {
  // x component.
  float x;
  // y component.
  float y;
  // z component.
  float z;
} sf_vector3;

// A unit quaternion, scalar first (the core's `Quaternion`).
typedef struct sf_quaternion {
  // Scalar part.
  float w;
  // i component.
  float x;
  // j component.
  float y;
  // k component.
  float z;
} sf_quaternion;

// One IMU measurement (the core's `ImuSample`).
typedef struct sf_imu_sample {
  // Specific force (accelerometer), m/s².
  struct sf_vector3 accel;
  // Angular rate (gyroscope), rad/s.
  struct sf_vector3 gyro;
} sf_imu_sample;

// One magnetometer measurement (the core's `MagSample`).
typedef struct sf_mag_sample {
  // Magnetic flux density.
  struct sf_vector3 field;
  // Padding to 16 bytes, zero.
  uint32_t reserved;
} sf_mag_sample;

// A GNSS position fix (the core's `GnssFix`).
typedef struct sf_gnss_fix {
  // Latitude in degrees (WGS-84), positive north.
  double latitude_deg;
  // Longitude in degrees (WGS-84), positive east.
  double longitude_deg;
  // Height above the ellipsoid in metres.
  double altitude_m;
  // Horizontal accuracy estimate (1σ) in metres.
  float horizontal_accuracy_m;
  // Vertical accuracy estimate (1σ) in metres.
  float vertical_accuracy_m;
  // Fix type: 0 none, 2 horizontal, 3 full.
  uint32_t fix_type;
  // Number of satellites used.
  uint32_t satellites;
} sf_gnss_fix;

// A stamped IMU sample (the core's `Stamped<ImuSample>`).
typedef struct sf_stamped_imu {
  // Stamp, sequence number, channel.
  struct sf_sample_header header;
  // The measurement.
  struct sf_imu_sample payload;
} sf_stamped_imu;

// A stamped magnetometer sample (the core's `Stamped<MagSample>`).
typedef struct sf_stamped_mag {
  // Stamp, sequence number, channel.
  struct sf_sample_header header;
  // The measurement.
  struct sf_mag_sample payload;
} sf_stamped_mag;

// A stamped GNSS fix (the core's `Stamped<GnssFix>`).
typedef struct sf_stamped_gnss {
  // Stamp, sequence number, channel.
  struct sf_sample_header header;
  // The fix.
  struct sf_gnss_fix payload;
} sf_stamped_gnss;

// A stamped orientation (the core's `Stamped<Quaternion>`).
typedef struct sf_stamped_quaternion {
  // Stamp, sequence number, channel.
  struct sf_sample_header header;
  // The orientation.
  struct sf_quaternion payload;
} sf_stamped_quaternion;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// Creates a System V object under `key` (exclusively: `-EEXIST` if taken) holding an empty buffer of `desc`'s
// kind and layout. It is removed when closed by its creator.
//
// Thread safety: `obj` must not be used by another thread during the call.
//
// # Safety
// `obj` points to writable `sf_object` storage that is not open, `desc` to a readable descriptor (null pointers
// are reported as `SF_EINVAL`).
int sf_object_create_sysv(struct sf_object *obj,
                          int32_t key,
                          const struct sf_desc *desc);

// Opens the System V object under `key`, checking owner, mode and that its header matches `desc`.
//
// Thread safety: as [`sf_object_create_sysv`].
//
// # Safety
// As [`sf_object_create_sysv`].
int sf_object_open_sysv(struct sf_object *obj, int32_t key, const struct sf_desc *desc);

// Creates a POSIX shared memory object `name` (like `"/imu"`; exclusively) holding an empty broadcast ring. The
// name is unlinked when its creator closes it.
//
// Thread safety: as [`sf_object_create_sysv`].
//
// # Safety
// As [`sf_object_create_sysv`]; `name` NUL-terminated.
int sf_object_create_posix(struct sf_object *obj,
                           const char *name,
                           const struct sf_desc *desc);

// Opens the POSIX shared memory object `name`, with the checks of [`sf_object_open_sysv`].
//
// Thread safety: as [`sf_object_create_sysv`].
//
// # Safety
// As [`sf_object_create_posix`].
int sf_object_open_posix(struct sf_object *obj, const char *name, const struct sf_desc *desc);

// Creates a memfd object holding an empty broadcast ring; `*fd_out` receives its descriptor (close-on-exec; it
// stays owned by the object and is closed with it: `dup` it to pass it on).
//
// Thread safety: as [`sf_object_create_sysv`].
//
// # Safety
// As [`sf_object_create_posix`]; `fd_out` writable.
int sf_object_create_memfd(struct sf_object *obj,
                           const char *name,
                           const struct sf_desc *desc,
                           int *fd_out);

// Opens the memfd object behind descriptor `memfd` (inherited or received), with the header checks of
// [`sf_object_open_sysv`]. The object keeps its own duplicate of the descriptor.
//
// Thread safety: as [`sf_object_create_sysv`].
//
// # Safety
// As [`sf_object_create_sysv`].
int sf_object_open_memfd(struct sf_object *obj,
                         int memfd,
                         const struct sf_desc *desc);

// Closes an object (a creator's close removes it from the namespace, as in Rust). Close its readers and
// writers first.
//
// Thread safety: `obj` must not be used by another thread during or after the call.
//
// # Safety
// `obj` points to `sf_object` storage (null: `SF_EINVAL`).
int sf_object_close(struct sf_object *obj);

// Claims the writer role of the object's broadcast ring (`SF_EBUSY` if a live process holds it; a dead
// holder's role is taken over).
//
// Thread safety: `obj` may be used concurrently by other calls that only read it (opening readers and
// writers); `w` must not be used by another thread during the call.
//
// # Safety
// `w` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
int sf_broadcast_writer_open(struct sf_broadcast_writer *w,
                             struct sf_object *obj);

// Publishes one sample of exactly the element size (`SF_EINVAL` otherwise), overwriting the oldest; writes
// its position to `*position` if not null. Never waits.
//
// Thread safety: `w` must not be used by another thread during the call.
//
// # Safety
// `w` points to writer storage, `sample` to `len` readable bytes, `position` is null or writable.
int sf_broadcast_publish(struct sf_broadcast_writer *w,
                         const void *sample,
                         size_t len,
                         uint64_t *position);

// Releases the writer role.
//
// Thread safety: `w` must not be used by another thread during or after the call.
//
// # Safety
// `w` points to writer storage (null: `SF_EINVAL`).
int sf_broadcast_writer_close(struct sf_broadcast_writer *w);

// Opens a reader of the object's broadcast ring, starting at `SF_FROM_NOW` or `SF_FROM_OLDEST`. Readers never
// write shared memory; any number may exist.
//
// Thread safety: as [`sf_broadcast_writer_open`].
//
// # Safety
// `r` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
int sf_broadcast_reader_open(struct sf_broadcast_reader *r,
                             struct sf_object *obj,
                             int from);

// Receives the next sample into `out` (`len` must be the element size), waiting up to `timeout_ns`
// nanoseconds (0: don't wait; negative: no limit). Returns `SF_OK` and the sample's position in `*position`
// (if not null); `SF_EAGAIN` if nothing new (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_EPIPE` (writer dead),
// `SF_EOVERFLOW` if the reader was lapped (the number of samples lost in `*lagged` if not null; the reader
// has moved on: call again), `SF_EPROTO` for inconsistent shared positions.
//
// Thread safety: `r` must not be used by another thread during the call.
//
// # Safety
// `r` points to reader storage, `out` to `len` writable bytes, `position` and `lagged` are null or writable.
int sf_broadcast_receive(struct sf_broadcast_reader *r,
                         void *out,
                         size_t len,
                         int64_t timeout_ns,
                         uint64_t *position,
                         uint64_t *lagged);

// Closes a reader.
//
// Thread safety: `r` must not be used by another thread during or after the call.
//
// # Safety
// `r` points to reader storage (null: `SF_EINVAL`).
int sf_broadcast_reader_close(struct sf_broadcast_reader *r);

// A static, NUL-terminated description of a code returned by this library (or of any negative errno).
//
// Thread safety: any thread, any time.
const char *sf_strerror(int code);

// Claims the writer role of the object's latest-value slot (`SF_EBUSY` if a live process holds it; a dead
// holder's role is taken over).
//
// Thread safety: `obj` may be used concurrently by other calls that only read it; `w` must not be used by another
// thread during the call.
//
// # Safety
// `w` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
int sf_latest_writer_open(struct sf_latest_writer *w,
                          struct sf_object *obj);

// Publishes a value of exactly the element size; its sequence number (1 for the first) goes to `*seq` if not
// null. Never waits.
//
// Thread safety: `w` must not be used by another thread during the call.
//
// # Safety
// `w` points to writer storage, `value` to `len` readable bytes, `seq` is null or writable.
int sf_latest_write(struct sf_latest_writer *w,
                    const void *value,
                    size_t len,
                    uint64_t *seq);

// Releases the writer role.
//
// Thread safety: `w` must not be used by another thread during or after the call.
//
// # Safety
// `w` points to writer storage (null: `SF_EINVAL`).
int sf_latest_writer_close(struct sf_latest_writer *w);

// Reads the newest value of the object's latest-value slot into `out` (`len` must be the element size) once
// its sequence number is greater than `after` (0: any value), waiting up to `timeout_ns` nanoseconds for that
// (0: don't wait; negative: no limit). Its sequence number goes to `*seq` if not null. `SF_EAGAIN` if there is
// no such value yet (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_EPIPE` if the writer role is held by a dead
// process, `SF_EDEADLK` if the value kept changing during every one of a bounded number of attempts.
//
// Readers write no shared memory (except a waiter count while sleeping) and hold no role: any number may read.
//
// Thread safety: any number of threads may call this concurrently on one object (they only read it).
//
// # Safety
// `obj` points to an open object, `out` to `len` writable bytes, `seq` is null or writable.
int sf_latest_read(struct sf_object *obj,
                   void *out,
                   size_t len,
                   uint64_t after,
                   int64_t timeout_ns,
                   uint64_t *seq);

// Fills `desc` for a buffer of `kind` holding `capacity` built-in samples `sample` (`SF_SAMPLE_*`), under the
// sample's conventional type name (`"shmfusion.StampedImu"`, `"shmfusion.StampedMag"`, `"shmfusion.StampedGnss"`,
// `"shmfusion.StampedQuaternion"`) and mode 0 (`0600`). A Rust peer uses the same name with
// `ObjectOptions::type_name`.
//
// Thread safety: `desc` must not be used by another thread during the call.
//
// # Safety
// `desc` is null (`SF_EINVAL`) or writable.
int sf_desc_sample(struct sf_desc *desc,
                   uint32_t kind,
                   uint32_t sample,
                   uint64_t capacity);

// `CLOCK_MONOTONIC` in nanoseconds, the clock of sample stamps.
//
// Thread safety: any thread, any time.
uint64_t sf_clock_ns(void);

// Fills a sample header: stamp now, sequence `seq`, channel `channel`, flags 0.
//
// Thread safety: `header` must not be used by another thread during the call.
//
// # Safety
// `header` is null (`SF_EINVAL`) or writable.
int sf_sample_header_stamp(struct sf_sample_header *header, uint64_t seq, uint32_t channel);

// Claims the producer role of the object's SPSC ring (`SF_EBUSY` if a live process holds it; a dead holder's
// role is taken over; `SF_EPROTO` if the shared positions are inconsistent).
//
// Thread safety: `obj` may be used concurrently by other calls that only read it (opening handles); `p` must not
// be used by another thread during the call.
//
// # Safety
// `p` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
int sf_spsc_producer_open(struct sf_spsc_producer *p,
                          struct sf_object *obj);

// Pushes one sample of exactly the element size, waiting for space up to `timeout_ns` nanoseconds (0: don't
// wait; negative: no limit). `SF_ENOSPC` if full (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_ECONNRESET` if the
// consumer role is held by a dead process, `SF_EPROTO` for inconsistent shared positions, `SF_EINVAL` while a
// reserved slot is not committed.
//
// Thread safety: `p` must not be used by another thread during the call.
//
// # Safety
// `p` points to producer storage, `sample` to `len` readable bytes.
int sf_spsc_push(struct sf_spsc_producer *p,
                 const void *sample,
                 size_t len,
                 int64_t timeout_ns);

// Reserves the next slot for writing in place: `*slot` receives its address (8-byte aligned, element size
// rounded up to 8 bytes). Nothing is visible to the consumer until [`sf_spsc_commit`]; reserving again before
// that gives the same slot. `SF_ENOSPC` if full.
//
// The slot is shared memory: write it with plain stores, and do not read back what a hostile consumer might
// have changed.
//
// Thread safety: `p` must not be used by another thread during the call.
//
// # Safety
// `p` points to producer storage, `slot` is writable.
int sf_spsc_reserve(struct sf_spsc_producer *p,
                    void **slot);

// Publishes the slot reserved by [`sf_spsc_reserve`] (`SF_EINVAL` if none is).
//
// Thread safety: `p` must not be used by another thread during the call.
//
// # Safety
// `p` points to producer storage.
int sf_spsc_commit(struct sf_spsc_producer *p);

// Releases the producer role (an uncommitted reserved slot is dropped).
//
// Thread safety: `p` must not be used by another thread during or after the call.
//
// # Safety
// `p` points to producer storage (null: `SF_EINVAL`).
int sf_spsc_producer_close(struct sf_spsc_producer *p);

// Claims the consumer role of the object's SPSC ring (as [`sf_spsc_producer_open`]).
//
// Thread safety: as [`sf_spsc_producer_open`].
//
// # Safety
// `c` points to writable storage, `obj` to an open object (null: `SF_EINVAL`).
int sf_spsc_consumer_open(struct sf_spsc_consumer *c, struct sf_object *obj);

// Pops the oldest sample into `out` (`len` must be the element size), waiting up to `timeout_ns` nanoseconds
// (0: don't wait; negative: no limit). `SF_EAGAIN` if empty (with `timeout_ns == 0`), `SF_ETIMEDOUT`, `SF_EPIPE`
// if the ring is empty and the producer role is held by a dead process, `SF_EPROTO` for inconsistent shared
// positions.
//
// Thread safety: `c` must not be used by another thread during the call.
//
// # Safety
// `c` points to consumer storage, `out` to `len` writable bytes.
int sf_spsc_pop(struct sf_spsc_consumer *c,
                void *out,
                size_t len,
                int64_t timeout_ns);

// Releases the consumer role.
//
// Thread safety: `c` must not be used by another thread during or after the call.
//
// # Safety
// `c` points to consumer storage (null: `SF_EINVAL`).
int sf_spsc_consumer_close(struct sf_spsc_consumer *c);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* SHMFUSION_H */
