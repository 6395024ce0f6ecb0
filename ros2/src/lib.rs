//! ROS 2 message encoding for shmfusion's sensor samples: little-endian CDR ([`cdr`]) and the message types with
//! their `.msg` schema text ([`msg`]), for MCAP recordings (`ros2msg` schemas, `cdr` messages) and for bridges
//! that speak to ROS 2. One encoder for every companion that needs it.
//!
//! ```
//! use shmfusion_ros2::msg::{Message, QuaternionStamped};
//! let bytes = QuaternionStamped::default().encode();
//! assert_eq!(&bytes[..4], &[0, 1, 0, 0]); // CDR_LE encapsulation
//! assert_eq!(QuaternionStamped::decode(&bytes).unwrap(), QuaternionStamped::default());
//! ```

#![deny(missing_docs)]

pub mod cdr;
pub mod msg;
