//! `zig build -Dlib=<libshmfusion.a> [-Dtarget=<triple>] [-Dkey=<SysV key>]`: the `shmfusion` module (the C
//! header through translate-c, plus `check`) linked with the static library, and `echo`, the Zig peer of the
//! test command's exchange with examples/capi_peer.rs (see echo.zig), and `attitude`, the demo's reader of the
//! fused attitude (see attitude.zig).
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const lib = b.option([]const u8, "lib", "libshmfusion.a built for the target") orelse "../target/release/libshmfusion.a";
    const key = b.option(i32, "key", "System V key of the exchange's first object") orelse 0x48000000;

    const header = b.addTranslateC(.{
        .root_source_file = b.path("../include/shmfusion.h"),
        .target = target,
        .optimize = optimize,
        // For the target's stdint.h and stddef.h. It also links the programs with a C library (Zig's musl for a
        // `-linux` target, its glibc stubs for a `-gnu` one); the shmfusion library itself needs none.
        .link_libc = true,
    });
    const shmfusion = b.addModule("shmfusion", .{
        .root_source_file = b.path("shmfusion.zig"),
        .target = target,
        .optimize = optimize,
        .imports = &.{.{ .name = "shmfusion_c", .module = header.createModule() }},
    });
    shmfusion.addObjectFile(.{ .cwd_relative = lib });

    const options = b.addOptions();
    options.addOption(i32, "key", key);
    const imports: []const std.Build.Module.Import = &.{
        .{ .name = "shmfusion", .module = shmfusion },
        .{ .name = "options", .module = options.createModule() },
    };
    // `attitude` is the demo's reader: `-Dkey` is then the fusion process's attitude slot.
    for ([_][]const u8{ "echo", "attitude" }) |name| {
        const program = b.addExecutable(.{
            .name = name,
            .root_module = b.createModule(.{
                .root_source_file = b.path(b.fmt("{s}.zig", .{name})),
                .target = target,
                .optimize = optimize,
                .imports = imports,
            }),
        });
        b.installArtifact(program);
    }
}
