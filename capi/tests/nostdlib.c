/* A libc-free C program: built with -nostdlib -static -ffreestanding, it links only the static shmfusion library
 * (and libgcc), provides the functions Rust's `core` assumes of any platform (memcpy, memmove, memset, memcmp,
 * bcmp, strlen: what a freestanding C program must provide to gcc as well; on aarch64 also getauxval, see below),
 * and exits through the exit_group
 * system call. It goes through every buffer kind; its exit status is the number of the first failed step
 * (0: all passed), so it shows the library needs nothing from a C library. */
#include "shmfusion.h"
#include <stddef.h>

void *memcpy(void *d, const void *s, size_t n) {
  volatile unsigned char *dp = d;
  const volatile unsigned char *sp = s;
  while (n--) *dp++ = *sp++;
  return d;
}
void *memmove(void *d, const void *s, size_t n) {
  volatile unsigned char *dp = d;
  const volatile unsigned char *sp = s;
  if (dp < sp) { while (n--) *dp++ = *sp++; }
  else { dp += n; sp += n; while (n--) *--dp = *--sp; }
  return d;
}
void *memset(void *d, int c, size_t n) {
  volatile unsigned char *dp = d;
  while (n--) *dp++ = (unsigned char)c;
  return d;
}
int memcmp(const void *a, const void *b, size_t n) {
  const volatile unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++) if (*x != *y) return *x < *y ? -1 : 1;
  return 0;
}
int bcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }
size_t strlen(const char *s) {
  const volatile char *p = s;
  while (*p) p++;
  return (size_t)(p - s);
}

#if defined(__aarch64__)
/* compiler-builtins' outline atomics ask the C library for the hardware capabilities once (to use LSE atomics
 * when present). With no C library there are none to report: 0 selects the always-available LL/SC sequences. */
unsigned long getauxval(unsigned long type) {
  (void)type;
  return 0;
}
#endif

static __attribute__((noreturn)) void exit_group(long code) {
#if defined(__x86_64__)
  __asm__ volatile("syscall" ::"a"(231L), "D"(code) : "rcx", "r11", "memory");
#elif defined(__i386__)
  __asm__ volatile("int $0x80" ::"a"(252L), "b"(code) : "memory");
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = 94, x0 __asm__("x0") = code;
  __asm__ volatile("svc 0" ::"r"(x8), "r"(x0) : "memory");
#elif defined(__arm__)
  register long r7 __asm__("r7") = 248, r0 __asm__("r0") = code;
  __asm__ volatile("svc 0" ::"r"(r7), "r"(r0) : "memory");
#elif defined(__riscv)
  register long a7 __asm__("a7") = 94, a0 __asm__("a0") = code;
  __asm__ volatile("ecall" ::"r"(a7), "r"(a0) : "memory");
#else
#error "unsupported architecture"
#endif
  for (;;) {}
}

#define STEP(n, x) do { if ((x) != SF_OK) return n; } while (0)

static int run(void) {
  sf_desc desc;
  sf_object obj = {0};
  int fd = -1;
  /* Broadcast: publish 3, read them back from the oldest. */
  STEP(1, sf_desc_sample(&desc, SF_KIND_BROADCAST, SF_SAMPLE_IMU, 4));
  STEP(2, sf_object_create_memfd(&obj, "nostdlib-imu", &desc, &fd));
  sf_broadcast_writer w = {0};
  sf_broadcast_reader r = {0};
  STEP(3, sf_broadcast_writer_open(&w, &obj));
  for (uint64_t i = 0; i < 3; i++) {
    sf_stamped_imu s = {0};
    STEP(4, sf_sample_header_stamp(&s.header, i, 7));
    STEP(5, sf_broadcast_publish(&w, &s, sizeof s, NULL));
  }
  STEP(6, sf_broadcast_reader_open(&r, &obj, SF_FROM_OLDEST));
  for (uint64_t i = 0; i < 3; i++) {
    sf_stamped_imu s;
    uint64_t pos;
    STEP(7, sf_broadcast_receive(&r, &s, sizeof s, 0, &pos, NULL));
    if (pos != i || s.header.seq != i || s.header.channel != 7) return 8;
  }
  STEP(9, sf_broadcast_reader_close(&r));
  STEP(10, sf_broadcast_writer_close(&w));
  STEP(11, sf_object_close(&obj));
  /* SPSC: push 2 (one in place), pop 2. */
  STEP(12, sf_desc_sample(&desc, SF_KIND_SPSC, SF_SAMPLE_MAG, 2));
  STEP(13, sf_object_create_memfd(&obj, "nostdlib-mag", &desc, &fd));
  sf_spsc_producer p = {0};
  sf_spsc_consumer c = {0};
  STEP(14, sf_spsc_producer_open(&p, &obj));
  STEP(15, sf_spsc_consumer_open(&c, &obj));
  sf_stamped_mag m = {0};
  m.header.seq = 1;
  STEP(16, sf_spsc_push(&p, &m, sizeof m, 0));
  void *slot;
  STEP(17, sf_spsc_reserve(&p, &slot));
  ((sf_stamped_mag *)slot)->header.seq = 2;
  STEP(18, sf_spsc_commit(&p));
  if (sf_spsc_push(&p, &m, sizeof m, 0) != SF_ENOSPC) return 19;
  STEP(20, sf_spsc_pop(&c, &m, sizeof m, 0));
  if (m.header.seq != 1) return 21;
  STEP(22, sf_spsc_pop(&c, &m, sizeof m, 0));
  if (m.header.seq != 2) return 23;
  STEP(24, sf_spsc_consumer_close(&c));
  STEP(25, sf_spsc_producer_close(&p));
  STEP(26, sf_object_close(&obj));
  /* Latest: write twice, read the newest. */
  STEP(27, sf_desc_sample(&desc, SF_KIND_LATEST, SF_SAMPLE_QUATERNION, 1));
  STEP(28, sf_object_create_memfd(&obj, "nostdlib-attitude", &desc, &fd));
  sf_latest_writer lw = {0};
  STEP(29, sf_latest_writer_open(&lw, &obj));
  sf_stamped_quaternion q = {0};
  q.payload.w = 1.0f;
  STEP(30, sf_latest_write(&lw, &q, sizeof q, NULL));
  q.payload.w = 0.5f;
  STEP(31, sf_latest_write(&lw, &q, sizeof q, NULL));
  uint64_t seq = 0;
  q.payload.w = 0.0f;
  STEP(32, sf_latest_read(&obj, &q, sizeof q, 0, 0, &seq));
  if (seq != 2 || q.payload.w != 0.5f) return 33;
  STEP(34, sf_latest_writer_close(&lw));
  STEP(35, sf_object_close(&obj));
  return 0;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((force_align_arg_pointer))
#endif
void _start(void) {
  exit_group(run());
}
