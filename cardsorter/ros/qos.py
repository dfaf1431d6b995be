"""QoS profiles, named once by meaning."""

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Full camera frames as published (and recorded): reliable with a shallow queue, so a slow consumer
# drops old frames instead of queueing them, and rviz2 / rosbag (reliable by default) still receive
# them (PLATFORM_NOTES §5).
CAMERA_FRAMES = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                           reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Camera frames as processed: sensor data (rclpy's qos_profile_sensor_data, depth 2): best effort, so
# a lost frame is never resent late; only the newest frames matter. Matches the reliable publisher.
CAMERA_FRAMES_LATEST = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                                  reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
# Per-frame pipeline data (detections, crops, embeddings, matches): reliable, a few frames deep.
PIPELINE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Decisions (identities, track ends, sort events): none may be lost.
DECISIONS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                       reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Latched status (database loaded, model id): late joiners get the last value.
DATABASE_STATUS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                             reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Debug visualisation: best effort, never slows the pipeline.
DEBUG = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2,
                   reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
DIAGNOSTICS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                         reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
