//! The Zig side of the exchange with `capi_peer serve KEY` (examples/capi_peer.rs), like `peer echo KEY`
//! (capi/tests/peer.c): reads the 32 stamped IMU samples of the broadcast ring at KEY, pushes each back through
//! the SPSC ring at KEY + 1 with gyro.z = 2 * seq, and writes the latest slot at KEY + 2 (header.seq 32, w = 1).
const std = @import("std");
const sf = @import("shmfusion");
const c = sf.c;
const key: i32 = @import("options").key;

fn open(obj: *c.sf_object, object_key: i32, kind: u32, sample: u32, capacity: u64) !void {
    var desc: c.sf_desc = undefined;
    try sf.check(c.sf_desc_sample(&desc, kind, sample, capacity));
    try sf.check(c.sf_object_open_sysv(obj, object_key, &desc));
}

pub fn main() !void {
    var ring = std.mem.zeroes(c.sf_object);
    var queue = std.mem.zeroes(c.sf_object);
    var latest = std.mem.zeroes(c.sf_object);
    try open(&ring, key, c.SF_KIND_BROADCAST, c.SF_SAMPLE_IMU, 64);
    defer _ = c.sf_object_close(&ring);
    try open(&queue, key + 1, c.SF_KIND_SPSC, c.SF_SAMPLE_IMU, 8);
    defer _ = c.sf_object_close(&queue);
    try open(&latest, key + 2, c.SF_KIND_LATEST, c.SF_SAMPLE_QUATERNION, 1);
    defer _ = c.sf_object_close(&latest);

    var reader = std.mem.zeroes(c.sf_broadcast_reader);
    try sf.check(c.sf_broadcast_reader_open(&reader, &ring, c.SF_FROM_OLDEST));
    defer _ = c.sf_broadcast_reader_close(&reader);
    var producer = std.mem.zeroes(c.sf_spsc_producer);
    try sf.check(c.sf_spsc_producer_open(&producer, &queue));
    defer _ = c.sf_spsc_producer_close(&producer);
    var writer = std.mem.zeroes(c.sf_latest_writer);
    try sf.check(c.sf_latest_writer_open(&writer, &latest));
    defer _ = c.sf_latest_writer_close(&writer);

    var i: u64 = 0;
    while (i < 32) : (i += 1) {
        var s: c.sf_stamped_imu = undefined;
        var position: u64 = undefined;
        try sf.check(c.sf_broadcast_receive(&reader, &s, @sizeOf(c.sf_stamped_imu), 0, &position, null));
        const expected: f32 = @floatFromInt(i);
        if (position != i or s.header.seq != i or s.payload.accel.x != expected) return error.WrongSample;
        s.payload.gyro.z = 2.0 * expected;
        try sf.check(c.sf_spsc_push(&producer, &s, @sizeOf(c.sf_stamped_imu), 20_000_000_000));
    }
    var q = std.mem.zeroes(c.sf_stamped_quaternion);
    q.header.seq = 32;
    q.payload.w = 1.0;
    try sf.check(c.sf_latest_write(&writer, &q, @sizeOf(c.sf_stamped_quaternion), null));
    std.debug.print("echoed 32 samples from Zig\n", .{});
}
