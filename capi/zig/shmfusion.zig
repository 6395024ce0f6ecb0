//! shmfusion for Zig: the C ABI, translated from capi/include/shmfusion.h (`c`), and `check`, which turns its
//! return codes into Zig errors.
pub const c = @import("shmfusion_c");

/// The library is built with `panic = "abort"` and never unwinds, but the Rust toolchain's precompiled
/// compiler_builtins still names the unwinder's personality routine in a section nothing uses; gcc's linker
/// leaves it unresolved there, Zig's linkers do not. This definition is never called.
export fn rust_eh_personality() callconv(.c) void {
    unreachable;
}

/// The library's failures (see `sf_strerror` for each code).
pub const Error = error{
    InvalidArgument,
    Empty,
    Lagged,
    Busy,
    Timeout,
    WriterGone,
    ReaderGone,
    Corrupt,
    WrongLayout,
    BadHeader,
    Version,
    NotReady,
    Access,
    TooLarge,
    Full,
    Contended,
    NotRegularFile,
    Replaced,
    /// The peer closed its end cleanly: nothing more will come (or be taken).
    Closed,
    /// Another (negative errno) code from the system: see `sf_strerror`.
    System,
};

/// `rc` as an error union: `SF_OK` is success.
pub fn check(rc: c_int) Error!void {
    return switch (rc) {
        c.SF_OK => {},
        c.SF_EINVAL => error.InvalidArgument,
        c.SF_EAGAIN => error.Empty,
        c.SF_EOVERFLOW => error.Lagged,
        c.SF_EBUSY => error.Busy,
        c.SF_ETIMEDOUT => error.Timeout,
        c.SF_EPIPE => error.WriterGone,
        c.SF_ECONNRESET => error.ReaderGone,
        c.SF_EPROTO => error.Corrupt,
        c.SF_EPROTOTYPE => error.WrongLayout,
        c.SF_EBADMSG => error.BadHeader,
        c.SF_EPROTONOSUPPORT => error.Version,
        c.SF_ENODATA => error.NotReady,
        c.SF_EACCES => error.Access,
        c.SF_EFBIG => error.TooLarge,
        c.SF_ENOSPC => error.Full,
        c.SF_EDEADLK => error.Contended,
        c.SF_ENODEV => error.NotRegularFile,
        c.SF_ESTALE => error.Replaced,
        c.SF_ESHUTDOWN => error.Closed,
        else => error.System,
    };
}
