//! Bridges shmfusion channels over [Zenoh](https://zenoh.io), raw or as ROS 2 topics that rmw_zenoh nodes read.
//!
//! - **export**: follow a local broadcast ring of `Stamped<T>` and publish every new sample on a key expression;
//! - **import**: subscribe to a key expression and publish into a local ring, holding its writer role;
//! - each sample keeps its sequence number and channel; losses are counted from sequence gaps (imports) and from
//!   the local ring's `Lagged(n)` (exports), and published in a [`stats::StatsSlot`];
//! - timestamps cross machines through the sender's wall-clock offset ([`clock`]);
//! - per channel: the wire format ([`spec::Format`]: [`raw`] or ROS 2 CDR on rmw_zenoh's keys, [`rmw`]) and the
//!   congestion policy ([`spec::Policy`]: block or drop the newest).
//!
//! The `shmfusion-bridge` program runs a [`engine::BridgeConfig`] built from its flags.

#![deny(missing_docs)]

pub mod clock;
pub mod engine;
pub mod loss;
pub mod raw;
pub mod rmw;
pub mod ros2map;
pub mod session;
pub mod spec;
pub mod stats;
