//! Copying a [`Shareable`] value into and out of shared memory through atomic words only.
//!
//! A [`SlotCell<T>`] is storage for one `T`: aligned to exactly 8 bytes whatever the alignment of `T`, and
//! rounded up to whole 8-byte units, so a copy in whole [`Word`]s stays in bounds whatever the size of `T`. The
//! alignment is pinned rather than taken from `T` because `T`'s own alignment differs between targets (`u128`
//! is 16-aligned on x86_64, aarch64 and riscv64 but 8-aligned on armv7): a cell aligned like `T` would move every
//! byte after it, and an armv7 and an aarch64 process sharing one segment would read each other's bytes wrongly. Nothing ever takes a reference to its contents as a
//! `T`: it is only viewed as a slice of atomic words, on both sides of every copy, at one fixed granularity.
//!
//! Copies use `Relaxed` word accesses; callers order them with the fences of their protocol (release fence or
//! release store after the stores on the writing side; acquire load before and acquire fence after the loads on
//! the reading side, Boehm's seqlock reader). This is RFC 3301's "atomic per byte" memcpy done with words: a
//! racing copy may tear, which is harmless for a `Shareable` type and is detected by the protocol.
//!
//! Copies of at least [`arch::MIN_BYTES`] take a faster path for their word-aligned middle: one `asm!` block per
//! architecture (`rep movsb` on x86, a 32-byte AVX loop below 2 KiB and `rep movsb` above on x86_64, q-register
//! `ldp`/`stp` on aarch64), which the compiler cannot see
//! into, so a racing peer is governed by the hardware memory model, not the language's (see [`arch`] for why that
//! is sound). The word loop stays for the edges, for short copies, for armv7 and riscv64, and under Miri and loom.
//! Either way each side copies once, straight between the slot and the caller's buffer.
//!
//! Storage: in normal builds a `SlotCell<T>` is an `UnsafeCell<MaybeUninit<T>>` in an `align(8)` wrapper,
//! viewed as `[Word]` through a pointer cast (what `AtomicU64::from_ptr` does). That works on stable Rust
//! without computing a word count from `T` in a type (which would need `generic_const_exprs`), and the all-zero
//! state is valid. loom cannot turn raw memory into atomics, so under `cfg(loom)` the cell is a small array of
//! loom atomic words instead (models use payloads of at most [`LOOM_WORDS`] words).

mod arch;

use super::sync::{Ordering::Relaxed, WORD_BYTES, Word, WordInt};
use crate::Shareable;

#[cfg(all(loom, test))]
use core::marker::PhantomData;
#[cfg(not(all(loom, test)))]
use core::{cell::UnsafeCell, mem::MaybeUninit};

/// `T`'s bytes with alignment 1 (only its layout is used).
#[cfg(not(all(loom, test)))]
#[repr(C, packed)]
#[allow(dead_code)]
struct Unaligned<T>(T);

/// `T`'s bytes, aligned to exactly 8 bytes and so padded to a multiple of 8 bytes (only its layout is used).
#[cfg(not(all(loom, test)))]
#[repr(C, align(8))]
#[allow(dead_code)]
struct Padded<T>(Unaligned<T>);

/// Words available to a payload in loom models.
#[cfg(all(loom, test))]
pub(crate) const LOOM_WORDS: usize = 4;

/// Storage for one `T` in shared memory, accessed only through atomic words.
#[cfg(not(all(loom, test)))]
#[repr(C)]
pub(crate) struct SlotCell<T> {
    // `MaybeUninit` around the padded type, not just around `T`: a zeroed `MaybeUninit<Padded<T>>` has all its
    // bytes, including the rounding after `T`, initialised, and moves preserve them (Miri checks this).
    cell: UnsafeCell<MaybeUninit<Padded<T>>>,
}

/// Storage for one `T` in shared memory, accessed only through atomic words (loom model).
#[cfg(all(loom, test))]
pub(crate) struct SlotCell<T> {
    words: [Word; LOOM_WORDS],
    _marker: PhantomData<T>,
}

// SAFETY: the contents are only ever accessed through atomic words (see `words`), so sharing a `SlotCell`
// between threads cannot cause a data race; `T: Shareable` values carry no thread affinity.
unsafe impl<T: Shareable> Sync for SlotCell<T> {}
// SAFETY: as above; the cell owns no resources.
unsafe impl<T: Shareable> Send for SlotCell<T> {}

impl<T: Shareable> SlotCell<T> {
    /// Number of words in a cell.
    #[cfg(not(all(loom, test)))]
    const WORDS: usize = core::mem::size_of::<Padded<T>>() / WORD_BYTES;
    #[cfg(all(loom, test))]
    const WORDS: usize = core::mem::size_of::<T>().div_ceil(8) * 8 / WORD_BYTES;

    /// An all-zero cell (loom model; payloads of at most [`LOOM_WORDS`] words).
    #[cfg(all(loom, test))]
    pub(crate) fn new() -> Self {
        assert!(Self::WORDS <= LOOM_WORDS, "loom payloads must fit in LOOM_WORDS words");
        Self {
            words: core::array::from_fn(|_| Word::new(0)),
            _marker: PhantomData,
        }
    }

    /// The cell as atomic words.
    #[cfg(not(all(loom, test)))]
    #[inline]
    pub(crate) fn words(&self) -> &[Word] {
        const { assert!(core::mem::align_of::<Padded<T>>() == 8) };
        // SAFETY: `Padded<T>` is 8-byte aligned (>= the alignment of `Word`) and its size is a multiple of 8, so
        // the cell is exactly `WORDS` properly aligned words, valid for as long as `self` is borrowed. The
        // contents are inside an `UnsafeCell`, so mutating them through a shared reference is allowed, and
        // `Word` has the same size and bit validity as the integer it wraps (any bit pattern, including the
        // zeroed initial state, is valid). Every access to the cell, in this process and (by the protocol) in the
        // others, goes through these word atomics, so there are no non-atomic or mixed-size accesses.
        unsafe { core::slice::from_raw_parts(self.cell.get().cast::<Word>(), Self::WORDS) }
    }

    /// Consecutive cells as one run of atomic words, when `T` fills its cells exactly (its size a non-zero
    /// multiple of 8): the samples' bytes then lie end to end, as in a slice of `T`, and a batch of them can be
    /// copied at once. `None` for a `T` whose cells carry rounding.
    #[cfg(not(all(loom, test)))]
    #[inline]
    pub(crate) fn run_words(cells: &[Self]) -> Option<&[Word]> {
        if core::mem::size_of::<T>() == 0 || core::mem::size_of::<Self>() != core::mem::size_of::<T>() {
            return None;
        }
        // SAFETY: an array has no gaps between elements, and each cell is exactly `WORDS` 8-byte-aligned words
        // (see `words`), so `cells` is `cells.len() * WORDS` consecutive, properly aligned words; the pointer comes
        // from the slice, so it covers all of them, for as long as `cells` is borrowed. Mutation through the
        // shared reference is allowed by the cells' `UnsafeCell`s, and the words are the same ones `words` gives
        // for each cell, accessed only atomically at this one granularity.
        Some(unsafe { core::slice::from_raw_parts(cells.as_ptr().cast::<Word>(), cells.len() * Self::WORDS) })
    }

    /// Cells are never one run in loom models (each is an array of loom atomics of its own).
    #[cfg(all(loom, test))]
    #[inline]
    pub(crate) fn run_words(_: &[Self]) -> Option<&[Word]> {
        None
    }

    /// The cell as atomic words (loom model).
    #[cfg(all(loom, test))]
    #[inline]
    pub(crate) fn words(&self) -> &[Word] {
        &self.words[..Self::WORDS]
    }

    /// A read-only view of the cell's `size_of::<T>()` bytes.
    #[inline]
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> SharedBytes<'_> {
        SharedBytes {
            words: self.words(),
            len: core::mem::size_of::<T>(),
        }
    }

    /// A writable view of the cell's `size_of::<T>()` bytes.
    #[inline]
    #[cfg(test)]
    pub(crate) fn bytes_mut(&self) -> SharedBytesMut<'_> {
        SharedBytesMut {
            words: self.words(),
            len: core::mem::size_of::<T>(),
        }
    }

    /// Stores `value` with `Relaxed` word stores.
    #[inline]
    #[cfg(test)]
    pub(crate) fn store(&self, value: &T) {
        store_bytes(self.words(), core::mem::size_of::<T>(), 0, bytemuck::bytes_of(value));
    }

    /// Loads the value with `Relaxed` word loads (possibly torn if a store races with it).
    #[inline]
    #[cfg(test)]
    pub(crate) fn load(&self) -> T {
        let mut value = T::zeroed();
        self.load_into(&mut value);
        value
    }

    /// Loads the value into `out` with `Relaxed` word loads (possibly torn if a store races with it).
    #[inline]
    #[cfg(test)]
    pub(crate) fn load_into(&self, out: &mut T) {
        load_bytes(self.words(), 0, bytemuck::bytes_of_mut(out));
    }
}

/// A read-only view of a sample in shared memory: its bytes can only be copied out, through atomic word loads.
///
/// Bytes read from a slot that a misbehaving peer is writing at the same time may be a mix of old and new
/// values; that is never undefined behaviour.
#[derive(Clone, Copy)]
pub struct SharedBytes<'a> {
    words: &'a [Word],
    len: usize,
}

/// A writable view of a sample in shared memory: bytes are copied in and out through atomic word accesses.
pub struct SharedBytesMut<'a> {
    words: &'a [Word],
    len: usize,
}

impl<'a> SharedBytes<'a> {
    /// The first `len` bytes of `words` (`len` at most their size).
    #[inline]
    pub(crate) fn from_words(words: &'a [Word], len: usize) -> Self {
        debug_assert!(len <= words.len() * WORD_BYTES);
        Self { words, len }
    }

    /// The sample's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the sample is zero-sized.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `out.len()` bytes starting at byte `offset` into `out`.
    ///
    /// # Panics
    ///
    /// If `offset + out.len()` exceeds [`len`](Self::len) (a caller bug, like slice indexing).
    #[inline]
    pub fn load(&self, offset: usize, out: &mut [u8]) {
        check_range(offset, out.len(), self.len);
        load_bytes(self.words, offset, out);
    }
}

impl<'a> SharedBytesMut<'a> {
    /// The first `len` bytes of `words` (`len` at most their size).
    #[inline]
    pub(crate) fn from_words(words: &'a [Word], len: usize) -> Self {
        debug_assert!(len <= words.len() * WORD_BYTES);
        Self { words, len }
    }

    /// The sample's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the sample is zero-sized.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `src` into the sample starting at byte `offset`.
    ///
    /// # Panics
    ///
    /// If `offset + src.len()` exceeds [`len`](Self::len).
    #[inline]
    pub fn store(&mut self, offset: usize, src: &[u8]) {
        check_range(offset, src.len(), self.len);
        store_bytes(self.words, self.len, offset, src);
    }

    /// Copies `out.len()` bytes starting at byte `offset` into `out`.
    ///
    /// # Panics
    ///
    /// If `offset + out.len()` exceeds [`len`](Self::len).
    #[inline]
    pub fn load(&self, offset: usize, out: &mut [u8]) {
        check_range(offset, out.len(), self.len);
        load_bytes(self.words, offset, out);
    }

    /// A read-only view of the same bytes.
    pub fn as_shared(&self) -> SharedBytes<'_> {
        SharedBytes {
            words: self.words,
            len: self.len,
        }
    }
}

#[inline]
#[track_caller]
fn check_range(offset: usize, n: usize, len: usize) {
    assert!(
        offset.checked_add(n).is_some_and(|end| end <= len),
        "byte range {offset}+{n} out of a {len}-byte sample"
    );
}

#[inline]
fn word_from(bytes: &[u8]) -> WordInt {
    let mut b = [0u8; WORD_BYTES];
    b[..bytes.len()].copy_from_slice(bytes);
    WordInt::from_ne_bytes(b)
}

/// The word a copy of `n` bytes at byte `offset` exactly covers, if it covers exactly one.
#[inline]
fn one_word(words: &[Word], offset: usize, n: usize) -> Option<&Word> {
    if n == WORD_BYTES && offset % WORD_BYTES == 0 {
        words.get(offset / WORD_BYTES)
    } else {
        None
    }
}

/// Stores `src` at byte `offset` of `words` (whose meaningful length is `len` bytes; bytes past `len` are
/// padding and may be overwritten with zeros) with `Relaxed` word stores. Partial words inside the sample are
/// merged with a load and a store: only the one writer of a slot calls this, so no read-modify-write is needed.
#[inline]
pub(crate) fn store_bytes(words: &[Word], len: usize, offset: usize, src: &[u8]) {
    if let Some(w) = one_word(words, offset, src.len()) {
        // One whole word (an 8-byte sample given as a slice, whose length the compiler cannot see): one store,
        // without the general path's lead, loop and tail checks.
        w.store(word_from(src), Relaxed);
        return;
    }
    let mut pos = offset;
    let mut src = src;
    let lead = pos % WORD_BYTES;
    if lead != 0 && !src.is_empty() {
        let take = (WORD_BYTES - lead).min(src.len());
        let w = &words[pos / WORD_BYTES];
        let mut b = w.load(Relaxed).to_ne_bytes();
        b[lead..lead + take].copy_from_slice(&src[..take]);
        w.store(WordInt::from_ne_bytes(b), Relaxed);
        pos += take;
        src = &src[take..];
    }
    let first = pos / WORD_BYTES;
    let whole = src.len() / WORD_BYTES;
    let (middle, rest) = src.split_at(whole * WORD_BYTES);
    store_words(&words[first..first + whole], middle);
    if !rest.is_empty() {
        let w = &words[first + whole];
        if pos + src.len() >= len {
            // The rest of this word is padding: no need to keep it.
            w.store(word_from(rest), Relaxed);
        } else {
            let mut b = w.load(Relaxed).to_ne_bytes();
            b[..rest.len()].copy_from_slice(rest);
            w.store(WordInt::from_ne_bytes(b), Relaxed);
        }
    }
}

/// Loads `out.len()` bytes at byte `offset` of `words` with `Relaxed` word loads.
#[inline]
pub(crate) fn load_bytes(words: &[Word], offset: usize, out: &mut [u8]) {
    if let Some(w) = one_word(words, offset, out.len()) {
        // As in `store_bytes`: one load for one whole word.
        out.copy_from_slice(&w.load(Relaxed).to_ne_bytes());
        return;
    }
    let mut pos = offset;
    let mut out = out;
    let lead = pos % WORD_BYTES;
    if lead != 0 && !out.is_empty() {
        let take = (WORD_BYTES - lead).min(out.len());
        let b = words[pos / WORD_BYTES].load(Relaxed).to_ne_bytes();
        out[..take].copy_from_slice(&b[lead..lead + take]);
        pos += take;
        out = &mut out[take..];
    }
    let first = pos / WORD_BYTES;
    let whole = out.len() / WORD_BYTES;
    let (middle, rest) = out.split_at_mut(whole * WORD_BYTES);
    load_words(&words[first..first + whole], middle);
    if !rest.is_empty() {
        let b = words[first + whole].load(Relaxed).to_ne_bytes();
        let n = rest.len();
        rest.copy_from_slice(&b[..n]);
    }
}

/// Stores `src` (`words.len()` whole words of bytes) into `words`: the bulk copy for the largest multiple of its
/// grain, `Relaxed` word stores for the rest.
#[inline]
fn store_words(words: &[Word], src: &[u8]) {
    debug_assert_eq!(src.len(), words.len() * WORD_BYTES);
    let bulk = arch::bulk_len(src.len());
    if bulk != 0 {
        // SAFETY: `words` is `src.len() >= bulk` bytes of shared memory that this process accesses only atomically
        // or through bulk copies (see `SlotCell::words` and the views' `slot`), valid and writable through the
        // `UnsafeCell`s of its atomics for the borrow; `src` is a distinct private slice of the same length.
        unsafe { arch::copy(words.as_ptr().cast::<u8>().cast_mut(), src.as_ptr(), bulk) };
    }
    for (w, c) in words[bulk / WORD_BYTES..]
        .iter()
        .zip(src[bulk..].chunks_exact(WORD_BYTES))
    {
        w.store(word_from(c), Relaxed);
    }
}

/// Loads `words` into `out` (`words.len()` whole words of bytes): the bulk copy for the largest multiple of its
/// grain, `Relaxed` word loads for the rest.
#[inline]
fn load_words(words: &[Word], out: &mut [u8]) {
    debug_assert_eq!(out.len(), words.len() * WORD_BYTES);
    let bulk = arch::bulk_len(out.len());
    if bulk != 0 {
        // SAFETY: as in `store_words`, the other way round: `words` is shared memory read only atomically or by bulk
        // copies, `out` a distinct private slice of `words.len() * WORD_BYTES >= bulk` bytes.
        unsafe { arch::copy(out.as_mut_ptr(), words.as_ptr().cast::<u8>(), bulk) };
    }
    for (c, w) in out[bulk..]
        .chunks_exact_mut(WORD_BYTES)
        .zip(&words[bulk / WORD_BYTES..])
    {
        c.copy_from_slice(&w.load(Relaxed).to_ne_bytes());
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Odd {
        a: [u8; 13],
    }

    fn zeroed<T: Shareable>() -> std::boxed::Box<SlotCell<T>> {
        // SAFETY: all-zero bytes are a valid `SlotCell` (an `UnsafeCell<MaybeUninit<_>>`), and `new_zeroed`
        // initialises every byte, including the rounding after `T`.
        unsafe { crate::buffer::zeroed_box_unchecked::<SlotCell<T>>() }
    }

    #[test]
    fn cell_is_word_aligned_and_rounded() {
        assert_eq!(core::mem::size_of::<SlotCell<Odd>>(), 16);
        assert_eq!(core::mem::align_of::<SlotCell<Odd>>(), 8);
        assert_eq!(core::mem::size_of::<SlotCell<u8>>(), 8);
        assert_eq!(core::mem::size_of::<SlotCell<()>>(), 0);
        assert_eq!(core::mem::size_of::<SlotCell<[u64; 3]>>(), 24);
    }

    #[test]
    fn round_trips_values() {
        let c = zeroed::<Odd>();
        assert_eq!(c.load(), Odd { a: [0; 13] });
        let v = Odd {
            a: core::array::from_fn(|i| i as u8 + 1),
        };
        c.store(&v);
        assert_eq!(c.load(), v);
        let z = zeroed::<()>();
        z.store(&());
        z.load();
    }

    #[test]
    fn partial_stores_and_loads_at_every_offset() {
        let c = zeroed::<[u8; 29]>();
        let mut model = [0u8; 29];
        let mut k = 1u8;
        for off in 0..29 {
            // Miri interprets each word access: there every offset with the lengths around one word, and the rest.
            let lengths = (0..=(29 - off)).filter(|&n| !cfg!(miri) || matches!(n, 0 | 1 | 7 | 8 | 9) || n == 29 - off);
            for n in lengths {
                let src: [u8; 29] = core::array::from_fn(|i| k.wrapping_add(i as u8));
                k = k.wrapping_add(7);
                c.bytes_mut().store(off, &src[..n]);
                model[off..off + n].copy_from_slice(&src[..n]);
                assert_eq!(c.load(), model, "store at {off}+{n}");
                let mut out = [0u8; 29];
                c.bytes().load(off, &mut out[..n]);
                assert_eq!(&out[..n], &model[off..off + n], "load at {off}+{n}");
            }
        }
    }

    /// Copies long enough for the bulk path (and just too short for it), at every word offset, with lengths
    /// around its thresholds and grain (x86_64: the AVX loop's 128-byte rounds and its switch to `rep movsb` at
    /// 2 KiB), to and from private buffers at odd addresses.
    #[test]
    fn long_copies_at_odd_offsets_lengths_and_addresses() {
        const N: usize = 2200;
        let c = zeroed::<[u8; N]>();
        let mut model = [0u8; N];
        let all_lengths = [
            0,
            1,
            8,
            63,
            arch::MIN_BYTES - 8,
            arch::MIN_BYTES - 1,
            arch::MIN_BYTES,
            arch::MIN_BYTES + 1,
            arch::MIN_BYTES + 7,
            arch::MIN_BYTES + 64,
            511,
            513,
            1037,
            2047,
            2048,
            2049,
            2111,
            N,
        ];
        // Miri runs the word loop only (no asm), slowly: a few cases there.
        let miri_lengths = [1, 63, arch::MIN_BYTES - 1, arch::MIN_BYTES + 7, 513, N];
        let (offsets, shifts, lengths): (&[usize], &[usize], &[usize]) = if cfg!(miri) {
            (&[0, 3], &[1], &miri_lengths)
        } else {
            (&[0, 1, 3, 7, 8, 9, 15, 63], &[0, 1, 5], &all_lengths)
        };
        let mut k = 1u8;
        for &offset in offsets {
            for &n in lengths.iter().filter(|&&n| offset + n <= N) {
                for &shift in shifts {
                    let mut src = [0u8; N + 8];
                    for b in &mut src {
                        *b = k;
                        k = k.wrapping_mul(31).wrapping_add(7);
                    }
                    let src = &src[shift..shift + n];
                    c.bytes_mut().store(offset, src);
                    model[offset..offset + n].copy_from_slice(src);
                    assert_eq!(c.load(), model, "store of {n} bytes at {offset} from +{shift}");
                    let mut out = [0xa5u8; N + 16];
                    c.bytes().load(offset, &mut out[shift..shift + n]);
                    assert_eq!(
                        &out[shift..shift + n],
                        &model[offset..offset + n],
                        "load of {n} at {offset}"
                    );
                    assert!(
                        out[..shift].iter().chain(&out[shift + n..]).all(|&b| b == 0xa5),
                        "load wrote outside"
                    );
                }
            }
        }
    }

    /// Long copies whose destination starts a few bytes after the source modulo 4 KiB, both ways (x86_64 copies
    /// these with its AVX loop instead of `rep movsb`; elsewhere they are ordinary copies).
    #[test]
    fn long_copies_whose_destination_follows_the_source_within_a_page() {
        const N: usize = 4096 + 40;
        let c = zeroed::<[u8; N]>();
        let cell = c.words().as_ptr() as usize;
        let mut buf = std::vec![0u8; N + 2 * 4096];
        let base = buf.as_ptr() as usize;
        // Miri interprets each word access: two gaps there.
        let gaps: &[usize] = if cfg!(miri) { &[1, 64] } else { &[1, 8, 16, 63, 64] };
        for &gap in gaps {
            let src: std::vec::Vec<u8> = (0..N).map(|i| (i * 7 + gap) as u8).collect();
            // Store: the slot (destination) `gap` bytes after the private source, modulo 4 KiB.
            let at = cell.wrapping_sub(gap).wrapping_sub(base) % 4096;
            buf[at..at + N].copy_from_slice(&src);
            c.bytes_mut().store(0, &buf[at..at + N]);
            assert_eq!(&c.load()[..], &src[..], "store, gap {gap}");
            // Load: the private destination `gap` bytes after the slot, modulo 4 KiB.
            let at = (cell + gap).wrapping_sub(base) % 4096;
            buf.fill(0);
            c.bytes().load(0, &mut buf[at..at + N]);
            assert_eq!(&buf[at..at + N], &src[..], "load, gap {gap}");
        }
    }

    #[test]
    #[should_panic(expected = "out of a 4-byte sample")]
    fn out_of_range_panics() {
        let c = zeroed::<u32>();
        c.bytes_mut().store(2, &[0; 3]);
    }
}
