"""Pure algorithms and domain values: numpy/OpenCV only, no rclpy, no hardware."""
