"""Shared test set-up: DDS stays on loopback, each session in its own domain, helpers on sys.path."""

from __future__ import annotations

import os
import pathlib
import sys

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str((os.getpid() % 90) + 10))

TEST_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = TEST_DIR.parent
if str(TEST_DIR) not in sys.path:
    sys.path.insert(0, str(TEST_DIR))  # rosutil and other shared test helpers
