"""The web node takes the overlay's JPEG only while a browser shows the camera view: it subscribes to
debug/image/compressed when a frame is asked for and unsubscribes when no browser asked for one lately (the
overlay then draws nothing); what it serves is the JPEG as it came; a message that is not a JPEG is dropped."""

from __future__ import annotations

import pathlib
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
from rosutil import Collector, overrides, ros_context, spin_until, spun_alone
from sensor_msgs.msg import CompressedImage

from cardsorter.ros import conversions, qos
from cardsorter.ros.web_node import WebNode
from cardsorter.web.state import FRAME_WATCHED_S


def test_the_camera_view_is_subscribed_only_while_a_browser_shows_it(tmp_path: pathlib.Path) -> None:
    with ros_context() as (context, executor):
        web = WebNode(context=context, parameter_overrides=overrides(
            "web", port=0, review_dir=str(tmp_path / "review"), inventory_path=str(tmp_path / "inventory.sqlite"),
            reference_images=""))
        overlay = Collector(context, {})
        executor.add_node(overlay)
        with spun_alone(web):     # as in the graph: the web node spins on its own executor
            images = overlay.publisher(CompressedImage, "debug/image/compressed", qos.DEBUG)
            base = web.url.removesuffix("/live")
            spin_until(executor, lambda: False, 1.0)
            assert images.get_subscription_count() == 0 and not web.watching_frames   # no browser yet

            frame = np.zeros((120, 160, 3), np.uint8)
            frame[:, 80:] = (0, 0, 255)
            jpegs: list[bytes] = []
            stop = threading.Event()

            def browser() -> None:   # what the live page does: ask for the next frame, again and again
                while not stop.is_set():
                    try:
                        with urllib.request.urlopen(f"{base}/api/frame.jpg?after=0", timeout=5) as r:
                            jpegs.append(r.read())
                    except urllib.error.HTTPError as err:
                        assert err.code == 404   # no camera image yet
                        stop.wait(0.1)

            watcher = threading.Thread(target=browser, daemon=True)
            watcher.start()
            try:
                assert spin_until(executor, lambda: images.get_subscription_count() > 0, 10.0)
                assert web.watching_frames
                stamp = 1_700_000_000_000_000_000
                ok, jpeg = cv2.imencode(".jpg", frame)
                assert ok
                bad = CompressedImage(header=conversions.header(stamp, "cam"), format="png", data=b"\x89PNG....")
                images.publish(bad)
                assert spin_until(executor, lambda: web._inputs.dropped.get("debug/image/compressed", 0) == 1, 10.0)
                for i in range(1, 30):
                    images.publish(CompressedImage(header=conversions.header(stamp + i * 100_000_000, "cam"),
                                                   format="jpeg", data=jpeg.tobytes()))
                    if spin_until(executor, lambda: bool(jpegs), 0.3):
                        break
                assert jpegs, "the camera view never reached the browser"
            finally:
                stop.set()
                watcher.join(10.0)
            assert jpegs[-1] == jpeg.tobytes()   # passed on as it came: no decoding, no second encoding
            # nobody asks any more: after FRAME_WATCHED_S the subscription goes
            assert spin_until(executor, lambda: images.get_subscription_count() == 0, FRAME_WATCHED_S + 10.0)
            assert not web.watching_frames
