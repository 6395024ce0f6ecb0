//! The Zig end of the demo pipeline (README "C and Zig"): the C IMU driver (capi/examples/imu_driver.c)
//! publishes at 1 kHz, the Rust fusion process (`examples/fusion.rs --imu-key K --attitude-key A`) fuses each
//! sample into a stamped quaternion in a latest-value slot, and this program opens that slot (key `-Dkey=A`) and
//! prints the fused attitude as roll, pitch and yaw: every 200th estimate, 5 lines a second at 1 kHz.
//! It ends when no new estimate comes for a second (the fusion process stopped) or the writer is gone.
const std = @import("std");
const sf = @import("shmfusion");
const c = sf.c;
const key: i32 = @import("options").key;

/// Estimates between two printed lines.
const STRIDE: u64 = 200;
const TIMEOUT_NS: i64 = 1_000_000_000;

fn degrees(rad: f32) f32 {
    return rad * 180.0 / std.math.pi;
}

pub fn main() !void {
    var slot = std.mem.zeroes(c.sf_object);
    var desc: c.sf_desc = undefined;
    try sf.check(c.sf_desc_sample(&desc, c.SF_KIND_LATEST, c.SF_SAMPLE_QUATERNION, 1));
    try sf.check(c.sf_object_open_sysv(&slot, key, &desc));
    defer _ = c.sf_object_close(&slot);

    var seq: u64 = 0;
    var printed: u64 = 0;
    while (true) {
        var a: c.sf_stamped_quaternion = undefined;
        // The first read takes whatever is there; later ones wait for STRIDE newer estimates.
        const after = if (seq == 0) 0 else seq + STRIDE - 1;
        sf.check(c.sf_latest_read(&slot, &a, @sizeOf(c.sf_stamped_quaternion), after, TIMEOUT_NS, &seq)) catch |e| switch (e) {
            error.Timeout, error.WriterGone, error.Closed => break,
            else => return e,
        };
        const q = a.payload;
        // ZYX Euler angles of the body-to-earth (NWU) rotation, as `Quaternion::to_euler` in Rust.
        const roll = std.math.atan2(2.0 * (q.w * q.x + q.y * q.z), 1.0 - 2.0 * (q.x * q.x + q.y * q.y));
        const pitch = std.math.asin(std.math.clamp(2.0 * (q.w * q.y - q.z * q.x), -1.0, 1.0));
        const yaw = std.math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z));
        const t: f64 = @as(f64, @floatFromInt(a.header.stamp_ns)) * 1e-9;
        std.debug.print("attitude t={d:.3} s imu_seq={d} roll={d:.2} pitch={d:.2} yaw={d:.2} deg\n", .{
            t, a.header.seq, degrees(roll), degrees(pitch), degrees(yaw),
        });
        printed += 1;
    }
    std.debug.print("printed {d} attitudes\n", .{printed});
    if (printed == 0) return error.NoAttitude;
}
