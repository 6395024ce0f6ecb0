/* One process: create a SysV broadcast ring of stamped IMU samples, publish 10, lap a reader, read back. */
#include "shmfusion.h"
#include <stdio.h>
#include <unistd.h>

#define CHECK(x) do { int rc_ = (x); if (rc_ != SF_OK) { printf("FAIL %s: %s\n", #x, sf_strerror(rc_)); return 1; } } while (0)

int main(void) {
  sf_broadcast_desc desc = {sizeof(sf_stamped_imu), _Alignof(sf_stamped_imu), 8, "shmfusion.StampedImu", 0};
  sf_object obj = {0};
  sf_broadcast_writer w = {0};
  sf_broadcast_reader r = {0};
  int key = 0x5f130000 | (getpid() & 0xffff);
  CHECK(sf_broadcast_create_sysv(&obj, key, &desc));
  sf_broadcast_desc wrong = desc;
  wrong.capacity = 16;
  sf_object other = {0};
  if (sf_broadcast_open_sysv(&other, key, &wrong) != SF_EPROTOTYPE) { printf("FAIL layout mismatch accepted\n"); return 1; }
  CHECK(sf_broadcast_reader_open(&r, &obj, SF_FROM_NOW));
  CHECK(sf_broadcast_writer_open(&w, &obj));
  for (uint64_t i = 0; i < 10; i++) {
    sf_stamped_imu s = {0};
    CHECK(sf_sample_header_stamp(&s.header, i, 1));
    s.payload.accel.z = 9.81f;
    CHECK(sf_broadcast_publish(&w, &s, sizeof s, NULL));
  }
  sf_stamped_imu got;
  uint64_t pos = 0, lagged = 0;
  if (sf_broadcast_receive(&r, &got, sizeof got, 0, &pos, &lagged) != SF_EOVERFLOW || lagged != 3) {
    printf("FAIL expected lag of 3, got %llu\n", (unsigned long long)lagged); return 1;
  }
  CHECK(sf_broadcast_receive(&r, &got, sizeof got, 0, &pos, &lagged));
  if (pos != 3 || got.header.seq != 3 || got.payload.accel.z != 9.81f) { printf("FAIL wrong sample\n"); return 1; }
  if (sf_broadcast_publish(&w, &got, 3, NULL) != SF_EINVAL) { printf("FAIL bad length accepted\n"); return 1; }
  if (sf_broadcast_publish(NULL, &got, sizeof got, NULL) != SF_EINVAL) { printf("FAIL null accepted\n"); return 1; }
  CHECK(sf_broadcast_reader_close(&r));
  CHECK(sf_broadcast_writer_close(&w));
  CHECK(sf_object_close(&obj));
  if (sf_object_close(&obj) != SF_EINVAL) { printf("FAIL double close\n"); return 1; }
  printf("ok\n");
  return 0;
}
