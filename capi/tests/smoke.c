/* One process, every buffer kind: create, mismatched opens refused, publish/receive with a lap, push/pop with
 * reserve/commit and a full ring, latest write/read, argument checks. Prints "ok" and exits 0 on success. */
#include "shmfusion.h"
#include <stdio.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#define CHECK(x) do { int rc_ = (x); if (rc_ != SF_OK) { printf("FAIL %s: %s\n", #x, sf_strerror(rc_)); return 1; } } while (0)
#define EXPECT(x, code) do { int rc_ = (x); if (rc_ != (code)) { printf("FAIL %s: %d (%s), expected %s\n", #x, rc_, sf_strerror(rc_), #code); return 1; } } while (0)

static int broadcast(int key) {
  sf_desc desc;
  CHECK(sf_desc_sample(&desc, SF_KIND_BROADCAST, SF_SAMPLE_IMU, 8));
  sf_object obj = {0}, other = {0};
  sf_broadcast_writer w = {0};
  sf_broadcast_reader r = {0};
  CHECK(sf_object_create_sysv(&obj, key, &desc));
  sf_desc wrong = desc;
  wrong.capacity = 16;
  EXPECT(sf_object_open_sysv(&other, key, &wrong), SF_EPROTOTYPE);
  wrong = desc;
  wrong.type_name = "shmfusion.StampedMag";
  EXPECT(sf_object_open_sysv(&other, key, &wrong), SF_EPROTOTYPE);
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
  EXPECT(sf_broadcast_receive(&r, &got, sizeof got, 0, &pos, &lagged), SF_EOVERFLOW);
  if (lagged != 3) { printf("FAIL expected a lag of 3, got %llu\n", (unsigned long long)lagged); return 1; }
  CHECK(sf_broadcast_receive(&r, &got, sizeof got, 0, &pos, &lagged));
  if (pos != 3 || got.header.seq != 3 || got.payload.accel.z != 9.81f) { printf("FAIL wrong sample\n"); return 1; }
  EXPECT(sf_broadcast_publish(&w, &got, 3, NULL), SF_EINVAL);
  EXPECT(sf_broadcast_publish(NULL, &got, sizeof got, NULL), SF_EINVAL);
  sf_spsc_producer wrong_kind = {0};
  EXPECT(sf_spsc_producer_open(&wrong_kind, &obj), SF_EPROTOTYPE);
  CHECK(sf_broadcast_reader_close(&r));
  CHECK(sf_broadcast_writer_close(&w));
  CHECK(sf_object_close(&obj));
  EXPECT(sf_object_close(&obj), SF_EINVAL);
  return 0;
}

static int spsc(const char *name) {
  sf_desc desc;
  CHECK(sf_desc_sample(&desc, SF_KIND_SPSC, SF_SAMPLE_GNSS, 4));
  sf_object obj = {0};
  sf_spsc_producer p = {0};
  sf_spsc_consumer c = {0};
  CHECK(sf_object_create_posix(&obj, name, &desc));
  CHECK(sf_spsc_producer_open(&p, &obj));
  EXPECT(sf_spsc_producer_open(&p, &obj), SF_EBUSY);
  CHECK(sf_spsc_consumer_open(&c, &obj));
  for (uint64_t i = 0; i < 3; i++) {
    sf_stamped_gnss s = {0};
    CHECK(sf_sample_header_stamp(&s.header, i, 2));
    s.payload.latitude_deg = 48.0 + (double)i;
    CHECK(sf_spsc_push(&p, &s, sizeof s, 0));
  }
  void *slot = NULL;
  EXPECT(sf_spsc_commit(&p), SF_EINVAL);
  CHECK(sf_spsc_reserve(&p, &slot));
  ((sf_stamped_gnss *)slot)->header.seq = 3;
  ((sf_stamped_gnss *)slot)->payload.satellites = 12;
  CHECK(sf_spsc_commit(&p));
  sf_stamped_gnss s = {0};
  EXPECT(sf_spsc_push(&p, &s, sizeof s, 0), SF_ENOSPC);
  EXPECT(sf_spsc_push(&p, &s, sizeof s, 1000000), SF_ETIMEDOUT);
  for (uint64_t i = 0; i < 4; i++) {
    CHECK(sf_spsc_pop(&c, &s, sizeof s, 0));
    if (s.header.seq != i) { printf("FAIL spsc order\n"); return 1; }
  }
  if (s.payload.satellites != 12) { printf("FAIL reserved slot content\n"); return 1; }
  EXPECT(sf_spsc_pop(&c, &s, sizeof s, 0), SF_EAGAIN);
  EXPECT(sf_spsc_pop(&c, &s, sizeof s, 1000000), SF_ETIMEDOUT);
  EXPECT(sf_spsc_pop(&c, &s, 7, 0), SF_EINVAL);
  CHECK(sf_spsc_consumer_close(&c));
  CHECK(sf_spsc_producer_close(&p));
  CHECK(sf_object_close(&obj));
  return 0;
}

static int latest(void) {
  sf_desc desc;
  CHECK(sf_desc_sample(&desc, SF_KIND_LATEST, SF_SAMPLE_QUATERNION, 1));
  sf_object obj = {0};
  sf_latest_writer w = {0};
  int fd = -1;
  CHECK(sf_object_create_memfd(&obj, "attitude", &desc, &fd));
  sf_stamped_quaternion q = {0};
  uint64_t seq = 0;
  EXPECT(sf_latest_read(&obj, &q, sizeof q, 0, 0, &seq), SF_EAGAIN);
  CHECK(sf_latest_writer_open(&w, &obj));
  for (uint64_t i = 1; i <= 5; i++) {
    q.header.seq = i;
    q.payload.w = 1.0f;
    q.payload.z = (float)i;
    CHECK(sf_latest_write(&w, &q, sizeof q, &seq));
    if (seq != i) { printf("FAIL latest sequence\n"); return 1; }
  }
  sf_stamped_quaternion got = {0};
  CHECK(sf_latest_read(&obj, &got, sizeof got, 0, 0, &seq));
  if (seq != 5 || got.payload.z != 5.0f) { printf("FAIL latest value\n"); return 1; }
  EXPECT(sf_latest_read(&obj, &got, sizeof got, 5, 0, &seq), SF_EAGAIN);
  EXPECT(sf_latest_read(&obj, &got, sizeof got, 5, 1000000, &seq), SF_ETIMEDOUT);
  sf_object again = {0};
  CHECK(sf_object_open_memfd(&again, fd, &desc));
  CHECK(sf_latest_read(&again, &got, sizeof got, 4, -1, &seq));
  CHECK(sf_object_close(&again));
  CHECK(sf_latest_writer_close(&w));
  CHECK(sf_object_close(&obj));
  return 0;
}

int main(void) {
  int pid = (int)getpid();
  char name[32];
  snprintf(name, sizeof name, "/sf-smoke-%d", pid);
  int key = 0x5f130000 | (pid & 0xffff);
  if (broadcast(key) || spsc(name) || latest()) {
    /* A failed check returns before its closes: remove what it may have left (no leak on failure). */
    int id = shmget(key, 0, 0);
    if (id >= 0) shmctl(id, IPC_RMID, NULL);
    shm_unlink(name);
    return 1;
  }
  printf("ok\n");
  return 0;
}
