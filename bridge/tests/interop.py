"""Reads what a shmfusion-bridge exports in the `ros2` format with clients nobody in this project wrote.

- `eclipse-zenoh`: a plain Zenoh subscriber on the rmw_zenoh key expressions (taken from the liveliness tokens);
- `rosbags`: decodes the CDR payloads, and recomputes each type's RIHS01 hash from its Jazzy/Kilted definitions;
- `zenoh-ros2-sdk`: lists topics the way `ros2 topic list --show-types` does (liveliness tokens), and parses the
  attachments.

Usage: interop.py ENDPOINT_PORT SAMPLES_PER_TOPIC TIMEOUT_S
Prints one line per fact; the Rust test compares them with what it published.
"""

import sys
import threading
import time

import zenoh
from rosbags.typesys import Stores, get_typestore
from zenoh_ros2_sdk import get_topic_names_and_types
from zenoh_ros2_sdk.attachment import Attachment

port, per_topic, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout

store = get_typestore(Stores.ROS2_JAZZY)
for st in (Stores.ROS2_JAZZY, Stores.ROS2_KILTED):
    ts = get_typestore(st)
    for t in ("sensor_msgs/msg/Imu", "sensor_msgs/msg/MagneticField", "sensor_msgs/msg/NavSatFix",
              "geometry_msgs/msg/QuaternionStamped"):
        print("HASH", st.name, t, ts.hash_rihs01(t), flush=True)

# ros2 topic list, through zenoh-ros2-sdk's liveliness discovery (retried until the tokens are seen).
topics = []
while time.monotonic() < deadline:
    topics = get_topic_names_and_types(domain_id=0, router_ip="127.0.0.1", router_port=port, timeout=1.0)
    if len(topics) >= 4:
        break
    time.sleep(0.2)
for name, types in topics:
    print("TOPIC", name, ",".join(types), flush=True)

conf = zenoh.Config()
conf.insert_json5("mode", '"peer"')
conf.insert_json5("scouting/multicast/enabled", "false")
conf.insert_json5("connect/endpoints", f'["tcp/127.0.0.1:{port}"]')
# Zenoh's shared-memory transport is of no use against the bridge (built without it), and with it on, each session
# creates a POSIX shm object (/dev/shm/<n>.zenoh) that only an exit handler removes: a process that ends any other
# way (SIGKILL on a timeout, a crash in interpreter teardown) leaves it behind. zenoh-ros2-sdk's session config
# turns it off as well.
conf.insert_json5("transport/shared_memory/enabled", "false")
session = zenoh.open(conf)

# The POSIX shm objects this process maps once both sessions are open (none expected): the Rust side removes
# those it did not see before starting this process, should they outlive it.
with open("/proc/self/maps") as maps:
    mapped = sorted({line.split()[-1] for line in maps if line.split()[-1].startswith("/dev/shm/")})
for path in mapped:
    print("SHM", path, flush=True)

tokens = []
for reply in session.liveliness().get("@ros2_lv/0/**", timeout=2.0):
    if reply.ok is not None:
        tokens.append(str(reply.ok.key_expr))
for t in tokens:
    print("TOKEN", t, flush=True)

# The data key of every publisher token: <domain>/<topic>/<dds type>/<hash>.
keys = {}
for t in tokens:
    p = t.split("/")
    if len(p) >= 13 and p[5] == "MP":
        topic = p[9].replace("%", "/").lstrip("/")
        keys[f"0/{topic}/{p[10]}/{p[11]}"] = p[10].replace("::dds_::", "::").rstrip("_").replace("::", "/")

lock = threading.Lock()
got = {k: 0 for k in keys}
done = threading.Event()


def on_sample(sample):
    key = str(sample.key_expr)
    if key not in got:
        return
    payload = bytes(sample.payload.to_bytes())
    raw = sample.attachment.to_bytes() if sample.attachment is not None else b""
    att = Attachment.from_bytes(bytes(raw))
    msg = store.deserialize_cdr(payload, keys[key])
    stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    if keys[key] == "sensor_msgs/msg/Imu":
        vals = [msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z,
                msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z, msg.orientation_covariance[0]]
    elif keys[key] == "sensor_msgs/msg/MagneticField":
        vals = [msg.magnetic_field.x, msg.magnetic_field.y, msg.magnetic_field.z]
    elif keys[key] == "sensor_msgs/msg/NavSatFix":
        vals = [msg.latitude, msg.longitude, msg.altitude, msg.status.status, msg.position_covariance[0],
                msg.position_covariance_type]
    else:
        q = msg.quaternion
        vals = [q.w, q.x, q.y, q.z]
    # Printed and counted together, so that the main thread stops only after the last line is out.
    with lock:
        if got[key] >= per_topic:
            return
        print("SAMPLE", key, len(raw), att.sequence_id, att.timestamp_ns, att.gid.hex(), stamp, msg.header.frame_id,
              " ".join(repr(float(v)) for v in vals), flush=True)
        got[key] += 1
        if all(v >= per_topic for v in got.values()):
            done.set()


subs = [session.declare_subscriber(k, on_sample) for k in keys]
done.wait(max(0.0, deadline - time.monotonic()))
for s in subs:
    s.undeclare()
session.close()
print("DONE", " ".join(f"{k}={v}" for k, v in sorted(got.items())), flush=True)
