/* The C side of the exchanges with examples/capi_peer.rs (see there):
 *   peer echo KEY      reads the 32 IMU samples of the broadcast ring at KEY, pushes each back through the SPSC ring at
 *                      KEY + 1 with gyro.z = 2 * seq, writes the latest slot at KEY + 2 (header.seq 32, w = 1).
 *   peer spin KEY      pushes samples 0, 1, 2, ... into the SPSC ring at KEY + 1 until it is killed.
 *   peer scribble KEY  a hostile peer: attaches the three segments with plain shmat and writes pseudo-random bytes
 *                      over their payloads (everything after the 256-byte header), many times. */
#include "shmfusion.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#define CHECK(x) do { int rc_ = (x); if (rc_ != SF_OK) { printf("peer: %s: %s\n", #x, sf_strerror(rc_)); return 1; } } while (0)

static int open_kind(sf_object *obj, int key, uint32_t kind, uint32_t sample, uint64_t capacity) {
  sf_desc desc;
  CHECK(sf_desc_sample(&desc, kind, sample, capacity));
  CHECK(sf_object_open_sysv(obj, key, &desc));
  return 0;
}

static int echo(int key) {
  sf_object ring = {0}, queue = {0}, latest = {0};
  if (open_kind(&ring, key, SF_KIND_BROADCAST, SF_SAMPLE_IMU, 64) ||
      open_kind(&queue, key + 1, SF_KIND_SPSC, SF_SAMPLE_IMU, 8) ||
      open_kind(&latest, key + 2, SF_KIND_LATEST, SF_SAMPLE_QUATERNION, 1))
    return 1;
  sf_broadcast_reader r = {0};
  sf_spsc_producer p = {0};
  sf_latest_writer w = {0};
  CHECK(sf_broadcast_reader_open(&r, &ring, SF_FROM_OLDEST));
  CHECK(sf_spsc_producer_open(&p, &queue));
  CHECK(sf_latest_writer_open(&w, &latest));
  for (uint64_t i = 0; i < 32; i++) {
    sf_stamped_imu s;
    uint64_t pos;
    CHECK(sf_broadcast_receive(&r, &s, sizeof s, 0, &pos, NULL));
    if (pos != i || s.header.seq != i || s.payload.accel.x != (float)i) { printf("peer: sample %llu wrong\n", (unsigned long long)i); return 1; }
    s.payload.gyro.z = 2.0f * (float)i;
    CHECK(sf_spsc_push(&p, &s, sizeof s, 20000000000LL));
  }
  sf_stamped_quaternion q = {0};
  q.header.seq = 32;
  q.payload.w = 1.0f;
  CHECK(sf_latest_write(&w, &q, sizeof q, NULL));
  CHECK(sf_latest_writer_close(&w));
  CHECK(sf_spsc_producer_close(&p));
  CHECK(sf_broadcast_reader_close(&r));
  CHECK(sf_object_close(&latest));
  CHECK(sf_object_close(&queue));
  CHECK(sf_object_close(&ring));
  printf("echoed 32 samples\n");
  return 0;
}

static int spin(int key) {
  sf_object queue = {0};
  if (open_kind(&queue, key + 1, SF_KIND_SPSC, SF_SAMPLE_IMU, 8)) return 1;
  sf_spsc_producer p = {0};
  CHECK(sf_spsc_producer_open(&p, &queue));
  for (uint64_t i = 0;; i++) {
    sf_stamped_imu s = {0};
    CHECK(sf_sample_header_stamp(&s.header, i, 0));
    CHECK(sf_spsc_push(&p, &s, sizeof s, -1));
    if (i == 16) { printf("pushing\n"); fflush(stdout); }
  }
}

static int scribble(int key) {
  uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)key;
  unsigned char *base[3];
  size_t size[3];
  for (int k = 0; k < 3; k++) {
    int id = shmget(key + k, 0, 0);
    struct shmid_ds ds;
    if (id < 0 || shmctl(id, IPC_STAT, &ds) != 0) { perror("peer: shmget"); return 1; }
    base[k] = shmat(id, NULL, 0);
    if (base[k] == (void *)-1) { perror("peer: shmat"); return 1; }
    size[k] = ds.shm_segsz;
  }
  for (int round = 0; round < 4000; round++)
    for (int k = 0; k < 3; k++)
      for (size_t i = 256; i + 8 <= size[k]; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        /* Volatile 8-byte stores: the Rust side reads these words atomically. */
        *(volatile uint64_t *)(base[k] + i) = x;
      }
  for (int k = 0; k < 3; k++) shmdt(base[k]);
  printf("scribbled\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) { printf("usage: peer echo|spin|scribble KEY\n"); return 2; }
  int key = atoi(argv[2]);
  switch (argv[1][0] + argv[1][1]) {
    case 'e' + 'c': return echo(key);
    case 's' + 'p': return spin(key);
    case 's' + 'c': return scribble(key);
  }
  printf("peer: unknown mode %s\n", argv[1]);
  return 2;
}
