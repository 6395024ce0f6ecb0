/* The header's structs, as this target's C compiler lays them out, against the Rust core's layout (the SF_*_SIZE
 * and *_OFFSET constants, which the library asserts against the Rust types when it is built for the same target).
 * Compiling this file (freestanding, no C library needed) is the test. */
#include "shmfusion.h"
#include <stddef.h>

_Static_assert(sizeof(sf_sample_header) == SF_SAMPLE_HEADER_SIZE, "sample header size");
_Static_assert(offsetof(sf_sample_header, seq) == SF_SAMPLE_HEADER_SEQ_OFFSET, "header seq offset");
_Static_assert(offsetof(sf_sample_header, channel) == SF_SAMPLE_HEADER_CHANNEL_OFFSET, "header channel offset");
_Static_assert(sizeof(sf_stamped_imu) == SF_STAMPED_IMU_SIZE, "imu size");
_Static_assert(offsetof(sf_stamped_imu, payload.gyro) == SF_STAMPED_IMU_GYRO_OFFSET, "imu gyro offset");
_Static_assert(sizeof(sf_stamped_mag) == SF_STAMPED_MAG_SIZE, "mag size");
_Static_assert(sizeof(sf_stamped_gnss) == SF_STAMPED_GNSS_SIZE, "gnss size");
_Static_assert(offsetof(sf_stamped_gnss, payload.fix_type) == SF_STAMPED_GNSS_FIX_TYPE_OFFSET, "gnss fix_type offset");
_Static_assert(sizeof(sf_stamped_quaternion) == SF_STAMPED_QUATERNION_SIZE, "quaternion size");
/* Alignments differ between targets (a uint64_t member is 4-aligned on i386, as a u64 is in Rust there); the
 * library checks each struct's size and alignment against the Rust type when it is built for the target. */
_Static_assert(_Alignof(sf_object) == 8 && _Alignof(sf_spsc_producer) == 8, "handle storage alignment");
_Static_assert(offsetof(sf_desc, element_size) == 8 && offsetof(sf_desc, type_name) == 32, "descriptor layout");

int main(void) { return 0; }
