/* A C IMU driver: publishes stamped IMU samples at 1 kHz into a System V broadcast ring of the shmfusion C ABI,
 * which the Rust fusion demo reads (`cargo run --release --example fusion -- --imu-key KEY ...`).
 *
 *   imu_driver KEY SECONDS
 *
 * Creates the ring under KEY (512 samples of `sf_stamped_imu`, type name "shmfusion.StampedImu"), says `ready`,
 * then publishes for SECONDS and closes: the writer's clean close tells readers that nothing more will come, and
 * the creator's close removes the segment. The motion is synthetic but physically consistent: a body turning
 * in place at a constant yaw rate while rocking in roll, measured by an ideal gyroscope (body angular rate,
 * rad/s) and accelerometer (specific force, m/s^2, +z up when level), stamped on a 1 ms grid of CLOCK_MONOTONIC. */
#define _POSIX_C_SOURCE 200809L
#include "shmfusion.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define RATE_HZ 1000
#define CAPACITY 512
/* The motion, also documented in README "C and Zig": yaw rate (rad/s), roll amplitude (rad) and frequency (Hz). */
#define YAW_RATE 0.5
#define ROLL_AMPLITUDE 0.15
#define ROLL_HZ 0.25
#define GRAVITY 9.80665

static const double PI = 3.14159265358979323846;

/* The ideal readings at `t` seconds: roll r(t) = A sin(2 pi f t), pitch 0, yaw = YAW_RATE t (ZYX Euler angles,
 * body to NWU earth). Body rate for zero pitch: (r', yaw' sin r, yaw' cos r); gravity's reaction seen from the
 * body: g (0, sin r, cos r). */
static void measure(double t, sf_imu_sample *s) {
  double w = 2.0 * PI * ROLL_HZ;
  double roll = ROLL_AMPLITUDE * sin(w * t);
  double roll_rate = ROLL_AMPLITUDE * w * cos(w * t);
  s->gyro.x = (float)roll_rate;
  s->gyro.y = (float)(YAW_RATE * sin(roll));
  s->gyro.z = (float)(YAW_RATE * cos(roll));
  s->accel.x = 0.0f;
  s->accel.y = (float)(GRAVITY * sin(roll));
  s->accel.z = (float)(GRAVITY * cos(roll));
}

/* Set by SIGINT/SIGTERM: the driver then stops publishing and closes, so its segment is removed. */
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "imu_driver: %s: %s\n", what, sf_strerror(rc));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: imu_driver KEY SECONDS\n");
    return 2;
  }
  int key = (int)strtol(argv[1], NULL, 0);
  double seconds = atof(argv[2]);
  sf_desc desc;
  int rc = sf_desc_sample(&desc, SF_KIND_BROADCAST, SF_SAMPLE_IMU, CAPACITY);
  if (rc != SF_OK) return fail("desc", rc);
  sf_object ring = {0};
  if ((rc = sf_object_create_sysv(&ring, key, &desc)) != SF_OK) return fail("create", rc);
  sf_broadcast_writer w = {0};
  if ((rc = sf_broadcast_writer_open(&w, &ring)) != SF_OK) {
    sf_object_close(&ring);
    return fail("writer", rc);
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  printf("ready\n");
  fflush(stdout);

  const uint64_t period = 1000000000u / RATE_HZ;
  uint64_t t0 = sf_clock_ns();
  uint64_t samples = (uint64_t)(seconds * RATE_HZ);
  uint64_t seq = 0;
  for (; seq < samples && rc == SF_OK && !stop; seq++) {
    uint64_t stamp = t0 + seq * period;
    struct timespec at = {.tv_sec = (time_t)(stamp / 1000000000u), .tv_nsec = (long)(stamp % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR && !stop) {
    }
    sf_stamped_imu s = {0};
    s.header.stamp_ns = stamp;
    s.header.seq = seq;
    measure((double)(stamp - t0) * 1e-9, &s.payload);
    rc = sf_broadcast_publish(&w, &s, sizeof s, NULL);
  }
  if (rc != SF_OK) fail("publish", rc);
  printf("published %llu samples\n", (unsigned long long)seq);
  sf_broadcast_writer_close(&w);
  sf_object_close(&ring);
  return rc == SF_OK ? 0 : 1;
}
