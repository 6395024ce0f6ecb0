//! CRC-32C (Castagnoli), table-driven, usable in `const` contexts: the checksum of [`Protected`](super::Protected)
//! samples.
//!
//! Parameters (the "CRC-32/ISCSI" entry of the usual CRC catalogues, RFC 3720 §12.1): polynomial `0x1EDC6F41`,
//! reflected (`0x82F63B78`), initial value and final XOR `0xFFFF_FFFF`. Its check value, the CRC of the ASCII
//! bytes `"123456789"`, is `0xE306_9283`. CRC-32C detects every burst error of up to 32 bits and, for the short
//! messages used here, every error of up to 5 bits (Koopman's tables); a random corruption passes with
//! probability 2^-32.

/// The byte-wise lookup table of the reflected polynomial, computed at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// An incremental CRC-32C computation: [`update`](Self::update) with each part, then [`finish`](Self::finish).
#[derive(Clone, Copy, Debug)]
pub struct Crc32c(u32);

impl Crc32c {
    /// A computation over no bytes yet.
    pub const fn new() -> Self {
        Self(0xFFFF_FFFF)
    }

    /// Feeds `bytes`.
    pub const fn update(mut self, bytes: &[u8]) -> Self {
        let mut i = 0;
        while i < bytes.len() {
            self.0 = TABLE[((self.0 ^ bytes[i] as u32) & 0xFF) as usize] ^ (self.0 >> 8);
            i += 1;
        }
        self
    }

    /// The CRC of everything fed so far.
    pub const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

/// The CRC-32C of `bytes`.
pub const fn crc32c(bytes: &[u8]) -> u32 {
    Crc32c::new().update(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit-at-a-time definition, to check the table against.
    fn bitwise(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn published_test_vectors() {
        // The catalogue check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        // RFC 3720 (iSCSI), appendix B.4.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
        let iscsi_read_pdu: [u8; 48] = [
            0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(crc32c(&iscsi_read_pdu), 0xD996_3A56);
        // The empty message.
        assert_eq!(crc32c(&[]), 0);
    }

    #[test]
    fn table_matches_the_bitwise_definition_and_updates_compose() {
        let data: [u8; 300] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5A);
        for len in [0, 1, 2, 7, 8, 63, 64, 255, 300] {
            assert_eq!(crc32c(&data[..len]), bitwise(&data[..len]), "len {len}");
            for split in [0, len / 3, len / 2, len] {
                let parts = Crc32c::new().update(&data[..split]).update(&data[split..len]).finish();
                assert_eq!(parts, crc32c(&data[..len]));
            }
        }
        const AT_COMPILE_TIME: u32 = crc32c(b"123456789");
        assert_eq!(AT_COMPILE_TIME, 0xE306_9283);
    }
}
