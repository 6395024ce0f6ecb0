//! Per-channel counters, published in a latest-value slot so that an operator tool can show them.

use shmfusion::buffer::Latest;

/// The most channels one bridge process reports on.
pub const MAX_CHANNELS: usize = 16;

/// One channel's counters (64 bytes, no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChannelStats {
    /// The channel's id (the samples' `header.channel` as configured).
    pub channel: u32,
    /// 1 for an export, 2 for an import.
    pub direction: u32,
    /// Samples forwarded (exported: published to Zenoh; imported: written into the local ring).
    pub forwarded: u64,
    /// Samples missing according to sequence numbers (imports).
    pub gap: u64,
    /// Samples the local ring overwrote before the export could read them (`Lagged(n)`).
    pub lagged: u64,
    /// Received samples dropped as duplicates or late (imports).
    pub stale: u64,
    /// Frames refused: wrong type tag or layout, undecodable payload (imports).
    pub rejected: u64,
    /// The last forwarded sequence number.
    pub last_seq: u64,
    /// Times the sender's sequence restarted.
    pub restarts: u64,
}

/// What a bridge process publishes about itself (1,040 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BridgeStats {
    /// The bridge's pid.
    pub pid: u32,
    /// How many entries of `channels` are in use.
    pub count: u32,
    /// Updates so far.
    pub updates: u64,
    /// Per channel, in configuration order (exports first, then imports).
    pub channels: [ChannelStats; MAX_CHANNELS],
}

impl Default for BridgeStats {
    fn default() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

/// The shared object a bridge publishes its statistics in.
pub type StatsSlot = Latest<BridgeStats>;

impl BridgeStats {
    /// The entry of the channel with this id and direction, if reported.
    pub fn find(&self, channel: u32, direction: u32) -> Option<&ChannelStats> {
        self.channels[..(self.count as usize).min(MAX_CHANNELS)]
            .iter()
            .find(|c| c.channel == channel && c.direction == direction)
    }
}

/// [`ChannelStats::direction`] of an export.
pub const EXPORT: u32 = 1;
/// [`ChannelStats::direction`] of an import.
pub const IMPORT: u32 = 2;
