/* shmfusion C ABI (capi/src/lib.rs). Hand-written to match the Rust declarations; see README "C and Zig".
 * Every function returns 0 or a negative errno-style code; sf_strerror() describes it.
 * Thread safety: one handle must not be used by two threads at once; distinct handles may be used concurrently.
 * Close readers and writers before their object. */
#ifndef SHMFUSION_H
#define SHMFUSION_H
#include <stddef.h>
#include <stdint.h>

#define SF_OK 0
#define SF_EINVAL (-22)
#define SF_EAGAIN (-11)
#define SF_EOVERFLOW (-75)
#define SF_EBUSY (-16)
#define SF_ETIMEDOUT (-110)
#define SF_EPIPE (-32)
#define SF_EPROTO (-71)
#define SF_EPROTOTYPE (-91)
#define SF_EBADMSG (-74)
#define SF_EPROTONOSUPPORT (-93)
#define SF_ENODATA (-61)
#define SF_EACCES (-13)
#define SF_EFBIG (-27)
#define SF_FROM_NOW 0
#define SF_FROM_OLDEST 1

typedef struct sf_broadcast_desc {
  uint64_t element_size;
  uint64_t element_align;
  uint64_t capacity;
  const char *type_name;
  uint32_t mode;
} sf_broadcast_desc;

typedef struct sf_object { _Alignas(8) uint64_t opaque[96]; } sf_object;
typedef struct sf_broadcast_writer { _Alignas(8) uint64_t opaque[16]; } sf_broadcast_writer;
typedef struct sf_broadcast_reader { _Alignas(8) uint64_t opaque[16]; } sf_broadcast_reader;

typedef struct sf_vector3 { float x, y, z; } sf_vector3;
typedef struct sf_sample_header { uint64_t stamp_ns; uint64_t seq; uint32_t channel; uint32_t flags; } sf_sample_header;
typedef struct sf_imu_sample { sf_vector3 accel; sf_vector3 gyro; } sf_imu_sample;
typedef struct sf_stamped_imu { sf_sample_header header; sf_imu_sample payload; } sf_stamped_imu;
typedef struct sf_mag_sample { sf_vector3 field; float reserved; } sf_mag_sample;
typedef struct sf_stamped_mag { sf_sample_header header; sf_mag_sample payload; } sf_stamped_mag;

_Static_assert(sizeof(sf_stamped_imu) == 48, "Stamped<ImuSample> is 48 bytes");
_Static_assert(offsetof(sf_stamped_imu, payload) == 24, "payload after the 24-byte header");
_Static_assert(sizeof(sf_stamped_mag) == 40, "Stamped<MagSample> is 40 bytes");

int sf_broadcast_create_sysv(sf_object *obj, int32_t key, const sf_broadcast_desc *desc);
int sf_broadcast_open_sysv(sf_object *obj, int32_t key, const sf_broadcast_desc *desc);
int sf_broadcast_create_posix(sf_object *obj, const char *name, const sf_broadcast_desc *desc);
int sf_broadcast_open_posix(sf_object *obj, const char *name, const sf_broadcast_desc *desc);
int sf_broadcast_create_memfd(sf_object *obj, const char *name, const sf_broadcast_desc *desc, int *fd_out);
int sf_broadcast_open_memfd(sf_object *obj, int memfd, const sf_broadcast_desc *desc);
int sf_object_close(sf_object *obj);
int sf_broadcast_writer_open(sf_broadcast_writer *w, sf_object *obj);
int sf_broadcast_publish(sf_broadcast_writer *w, const void *sample, size_t len, uint64_t *position);
int sf_broadcast_writer_close(sf_broadcast_writer *w);
int sf_broadcast_reader_open(sf_broadcast_reader *r, sf_object *obj, int from);
int sf_broadcast_receive(sf_broadcast_reader *r, void *out, size_t len, int64_t timeout_ns, uint64_t *position,
                         uint64_t *lagged);
int sf_broadcast_reader_close(sf_broadcast_reader *r);
uint64_t sf_clock_ns(void);
int sf_sample_header_stamp(sf_sample_header *header, uint64_t seq, uint32_t channel);
const char *sf_strerror(int code);
#endif
