//! How rmw_zenoh (ROS 2's Zenoh middleware) names, frames and announces a topic, so that a stock ROS 2 node
//! subscribes to what the bridge publishes.
//!
//! Followed: `ros2/rmw_zenoh` `docs/design.md` as stored at commit `99a6a2bd10b949052f4f12c5854825dc005e95a5`
//! (branch `rolling`; sections "Topic and Service name mapping to Zenoh key expressions", "Graph Cache",
//! "Publishers") and `rmw_zenoh_cpp/src/detail/attachment_helpers.cpp` at `534747dca92adf15e1b1b975123037ca278db5ba`
//! (`AttachmentData::serialize_to_zbytes`). That is the format of rmw_zenoh 0.2.x and later in Jazzy, and of Kilted
//! and Rolling. Earlier Jazzy releases and Humble's used a string-keyed attachment and other token layouts: not
//! matched here.
//!
//! - Data key expression: `<domain>/<topic without leading slash>/<DDS type name>/<type hash>`.
//! - Attachment (mandatory, 33 bytes): sequence number `i64` LE, source timestamp (ns since the Unix epoch) `i64` LE,
//!   GID length `u8` (16), GID (16 bytes).
//! - Liveliness tokens under `@ros2_lv/<domain>/<session id>/<node id>/<entity id>/<kind>/<enclave>/<namespace>/
//!   <node>[/<topic>/<type>/<hash>/<qos>]`, names mangled (`/` → `%`), empty parts as `%`.

/// The rmw layer's GID size in Jazzy and later (`RMW_GID_STORAGE_SIZE`).
pub const GID_SIZE: usize = 16;

/// A publisher's identity as rmw_zenoh carries it in every attachment.
pub type Gid = [u8; GID_SIZE];

/// A ROS 2 message type as rmw_zenoh names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RosType {
    /// `package/msg/Type`.
    pub name: &'static str,
    /// The DDS name: `package::msg::dds_::Type_`.
    pub dds_name: &'static str,
    /// The REP-2016 type hash (`RIHS01_<sha256 hex>`) of the type in Jazzy, Kilted and Rolling.
    pub hash: &'static str,
}

/// Which release line's key expressions to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Distro {
    /// Jazzy (rmw_zenoh 0.2.x and later), Kilted, Rolling: keys and tokens carry the RIHS01 type hash.
    #[default]
    Jazzy,
    /// Humble has no type hashes: rmw_zenoh's Humble branch puts `TypeHashNotSupported` in its place.
    Humble,
}

impl Distro {
    /// The hash component of key expressions for `ty`.
    pub fn hash_of(self, ty: &RosType) -> &'static str {
        match self {
            Distro::Jazzy => ty.hash,
            Distro::Humble => "TypeHashNotSupported",
        }
    }
}

/// `/` → `%`, the mangling rmw_zenoh applies to names inside one key chunk.
pub fn mangle(name: &str) -> String {
    name.replace('/', "%")
}

/// A fully qualified topic name (`/imu`, `/robot1/imu`) from what the user typed (`imu`, `/imu`).
pub fn qualified(topic: &str) -> String {
    if topic.starts_with('/') {
        topic.to_owned()
    } else {
        format!("/{topic}")
    }
}

/// The key expression samples of `topic` are put on.
pub fn topic_key(domain: u32, topic: &str, ty: &RosType, distro: Distro) -> String {
    let q = qualified(topic);
    format!(
        "{domain}/{}/{}/{}",
        q.trim_start_matches('/'),
        ty.dds_name,
        distro.hash_of(ty)
    )
}

/// QoS of a publisher in the compact liveliness form (`<reliability>:<durability>:<history>,<depth>:<deadline>:
/// <lifespan>:<liveliness>`, defaults left empty): reliable or best effort, volatile, keep last `depth`.
pub fn qos_chunk(reliable: bool, depth: u32) -> String {
    let reliability = if reliable { "" } else { "2" };
    format!("{reliability}::,{depth}:,:,:,,")
}

/// The liveliness token of a node.
pub fn node_token(domain: u32, session: &str, node_id: u32, namespace: &str, node: &str) -> String {
    format!(
        "@ros2_lv/{domain}/{session}/{node_id}/{node_id}/NN/%/{}/{node}",
        namespace_chunk(namespace)
    )
}

/// The liveliness token of a publisher (entity kind `MP`).
#[allow(clippy::too_many_arguments)]
pub fn publisher_token(
    domain: u32,
    session: &str,
    node_id: u32,
    entity_id: u32,
    namespace: &str,
    node: &str,
    topic: &str,
    ty: &RosType,
    distro: Distro,
    qos: &str,
) -> String {
    format!(
        "@ros2_lv/{domain}/{session}/{node_id}/{entity_id}/MP/%/{}/{node}/{}/{}/{}/{qos}",
        namespace_chunk(namespace),
        mangle(&qualified(topic)),
        ty.dds_name,
        distro.hash_of(ty)
    )
}

fn namespace_chunk(namespace: &str) -> String {
    let ns = namespace.trim_end_matches('/');
    if ns.is_empty() {
        "%".to_owned()
    } else {
        mangle(&qualified(ns))
    }
}

/// The mandatory attachment of a published sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The publisher's sequence number (rmw_zenoh starts at 1).
    pub sequence_number: i64,
    /// When the sample was published, ns since the Unix epoch.
    pub source_timestamp: i64,
    /// The publisher's GID.
    pub gid: Gid,
}

/// The attachment's encoded size.
pub const ATTACHMENT_SIZE: usize = 8 + 8 + 1 + GID_SIZE;

impl Attachment {
    /// The 33 wire bytes.
    pub fn encode(&self) -> [u8; ATTACHMENT_SIZE] {
        let mut out = [0u8; ATTACHMENT_SIZE];
        out[..8].copy_from_slice(&self.sequence_number.to_le_bytes());
        out[8..16].copy_from_slice(&self.source_timestamp.to_le_bytes());
        out[16] = GID_SIZE as u8;
        out[17..].copy_from_slice(&self.gid);
        out
    }

    /// Parses an attachment; `None` if it is not one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ATTACHMENT_SIZE || bytes[16] as usize != GID_SIZE {
            return None;
        }
        Some(Self {
            sequence_number: i64::from_le_bytes(bytes[..8].try_into().ok()?),
            source_timestamp: i64::from_le_bytes(bytes[8..16].try_into().ok()?),
            gid: bytes[17..].try_into().ok()?,
        })
    }
}

/// A GID for a publisher: 16 bytes of FNV-1a-128 over its liveliness token, which holds the session id and the
/// entity id and so is unique per publisher (rmw_zenoh hashes the entity's identity the same way; the GID is opaque
/// to subscribers, which only compare it).
pub fn gid_for(token: &str) -> Gid {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET;
    for b in token.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRING: RosType = RosType {
        name: "std_msgs/msg/String",
        dds_name: "std_msgs::msg::dds_::String_",
        hash: "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18",
    };

    // The examples of rmw_zenoh's design document, rebuilt from their parts.
    #[test]
    fn design_document_examples() {
        assert_eq!(
            topic_key(0, "chatter", &STRING, Distro::Jazzy),
            "0/chatter/std_msgs::msg::dds_::String_/\
             RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
        );
        assert_eq!(
            topic_key(0, "/robot1/chatter", &STRING, Distro::Jazzy),
            "0/robot1/chatter/std_msgs::msg::dds_::String_/\
             RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
        );
        assert_eq!(
            node_token(2, "aac3178e146ba6f1fc6e6a4085e77f21", 0, "", "listener"),
            "@ros2_lv/2/aac3178e146ba6f1fc6e6a4085e77f21/0/0/NN/%/%/listener"
        );
        assert_eq!(
            publisher_token(
                2,
                "8b20917502ee955ac4476e0266340d5c",
                0,
                10,
                "/",
                "talker",
                "chatter",
                &STRING,
                Distro::Jazzy,
                &qos_chunk(true, 7)
            ),
            "@ros2_lv/2/8b20917502ee955ac4476e0266340d5c/0/10/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/\
             RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18/::,7:,:,:,,"
        );
    }

    #[test]
    fn attachment_layout() {
        let a = Attachment {
            sequence_number: 1,
            source_timestamp: 0x0102_0304_0506_0708,
            gid: [0xab; 16],
        };
        let b = a.encode();
        assert_eq!(&b[..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(b[16], 16);
        assert_eq!(&b[17..], &[0xab; 16]);
        assert_eq!(Attachment::decode(&b), Some(a));
        assert_eq!(Attachment::decode(&b[..32]), None);
    }

    #[test]
    fn humble_has_no_hash_and_gids_differ_per_publisher() {
        assert!(topic_key(0, "imu", &STRING, Distro::Humble).ends_with("/TypeHashNotSupported"));
        assert_ne!(gid_for("@ros2_lv/0/a/0/1/MP"), gid_for("@ros2_lv/0/a/0/2/MP"));
    }
}
