//! Formatted output to stdout and stderr without allocation: the back end of
//! [`print!`](crate::rt::print), [`println!`](crate::rt::println), [`eprint!`](crate::rt::eprint) and
//! [`eprintln!`](crate::rt::eprintln).
//!
//! Each macro call formats into a 256-byte stack buffer and writes it with as few `write` calls as possible (one
//! for a short line), so lines from concurrent processes or the kernel console rarely interleave mid-line.
//! Short writes are continued and `EINTR` is retried. Errors are ignored by the macros, as C's `printf` does: a
//! closed stdout must not turn a report into a panic.

use core::fmt;

use rustix::fd::BorrowedFd;
use rustix::io::{Errno, Result};

/// File descriptor 1.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: by convention fd 1 is the process's standard output for its whole life; like std, this borrows it
    // without owning it. If it is closed, writes fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// File descriptor 2.
pub fn stderr() -> BorrowedFd<'static> {
    // SAFETY: as for `stdout`, with fd 2.
    unsafe { BorrowedFd::borrow_raw(2) }
}

/// Writes all of `bytes` to `fd`, continuing after short writes and retrying after `EINTR`.
///
/// A `write` that reports 0 bytes written for a non-empty buffer ends the loop with `EIO` rather than spinning.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An unbuffered [`fmt::Write`] to a file descriptor: every `write_str` is a [`write_all`].
#[derive(Clone, Copy, Debug)]
pub struct FdWriter<'fd>(pub BorrowedFd<'fd>);

impl fmt::Write for FdWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_all(self.0, s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Size of the stack buffer of one print call.
const BUF: usize = 256;

/// A [`fmt::Write`] that collects output in a stack buffer and writes it to `fd` when full and on `flush`.
struct Buffered<'fd> {
    fd: BorrowedFd<'fd>,
    buf: [u8; BUF],
    len: usize,
    /// The first write error, after which output is dropped.
    error: Option<Errno>,
}

impl<'fd> Buffered<'fd> {
    fn new(fd: BorrowedFd<'fd>) -> Self {
        Buffered {
            fd,
            buf: [0; BUF],
            len: 0,
            error: None,
        }
    }

    fn write_through(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = write_all(self.fd, bytes) {
                self.error = Some(e);
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        let len = core::mem::take(&mut self.len);
        if self.error.is_none() {
            if let Err(e) = write_all(self.fd, &self.buf[..len]) {
                self.error = Some(e);
            }
        }
        self.error.map_or(Ok(()), Err)
    }
}

impl fmt::Write for Buffered<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        if bytes.len() > BUF - self.len {
            let _ = self.flush();
            if bytes.len() >= BUF {
                self.write_through(bytes);
                return Ok(());
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }
}

/// Formats `args` (followed by a newline if `newline`) and writes the result to `fd`.
///
/// Formatting errors from a `Display` implementation cut the output short but are not reported; write errors are.
pub fn write_fmt(fd: BorrowedFd<'_>, args: fmt::Arguments<'_>, newline: bool) -> Result<()> {
    let mut out = Buffered::new(fd);
    let _ = fmt::Write::write_fmt(&mut out, args);
    if newline {
        let _ = fmt::Write::write_str(&mut out, "\n");
    }
    out.flush()
}

/// The back end of the print macros: `fd` is 1 or 2; errors are ignored.
#[doc(hidden)]
pub fn _print(fd: i32, args: fmt::Arguments<'_>, newline: bool) {
    let fd = if fd == 2 { stderr() } else { stdout() };
    let _ = write_fmt(fd, args, newline);
}

/// Prints to stdout, like std's `print!`, without allocation.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_print {
    ($($arg:tt)*) => {
        $crate::rt::io::_print(1, ::core::format_args!($($arg)*), false)
    };
}

/// Prints a line to stdout, like std's `println!`, without allocation.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_println {
    () => {
        $crate::rt::io::_print(1, ::core::format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::rt::io::_print(1, ::core::format_args!($($arg)*), true)
    };
}

/// Prints to stderr, like std's `eprint!`, without allocation.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_eprint {
    ($($arg:tt)*) => {
        $crate::rt::io::_print(2, ::core::format_args!($($arg)*), false)
    };
}

/// Prints a line to stderr, like std's `eprintln!`, without allocation.
#[doc(hidden)]
#[macro_export]
macro_rules! __shmfusion_rt_eprintln {
    () => {
        $crate::rt::io::_print(2, ::core::format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::rt::io::_print(2, ::core::format_args!($($arg)*), true)
    };
}
