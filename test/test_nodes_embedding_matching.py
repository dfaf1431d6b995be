"""Embedder and matcher nodes over real DDS: batching, stamps, services."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest
from cardsorter.msg import CardCropArray, CardEmbeddingArray, CardMatchArray
from cardsorter.srv import EnrolCard, ReloadDatabase
from rosutil import Collector, make_world, overrides, ros_context, spin_until, started

from cardsorter.core.types import BoxPx, CardCrop, CardEmbedding
from cardsorter.ros import conversions as cv
from cardsorter.ros import qos
from cardsorter.ros.embedder_node import EmbedderNode
from cardsorter.ros.matcher_node import MatcherNode

QUAD = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("world")
    return make_world(root, cards=12, seed=9, unknown=2)


def test_embedder_batches_a_frames_crops_keeping_track_ids_and_stamp(world: dict[str, pathlib.Path]) -> None:
    images = sorted((world["catalog"] / "images").glob("*.png"))[:3]
    crops = [CardCrop(10 + i, cv2.imread(str(p)), 500.0, BoxPx(0, 0, 1, 1), QUAD) for i, p in enumerate(images)]
    with ros_context() as (context, executor):
        col = Collector(context, {"embeddings": (CardEmbeddingArray, qos.PIPELINE)})
        executor.add_node(col)
        node = started(EmbedderNode(context=context, parameter_overrides=overrides("embedder")))
        executor.add_node(node)
        pub = col.publisher(CardCropArray, "crops", qos.PIPELINE)
        assert spin_until(executor, lambda: pub.get_subscription_count() > 0)
        pub.publish(cv.crops_to_msg(crops, cv.header(123_456_789, "cam"), 7))
        assert spin_until(executor, lambda: bool(col.received["embeddings"]), 30.0)
        msg = col.received["embeddings"][0]
        ids, vectors = cv.embeddings_from_msg(msg)
        assert ids == [10, 11, 12]
        assert cv.stamp_to_ns(msg.header.stamp) == 123_456_789
        assert msg.dimension == vectors.shape[1] and msg.model_id
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        # The node's batch gives the same vectors as embedding each crop alone.
        single = np.vstack([node._embedder.embed([c.image_bgr])[0] for c in crops])
        assert np.allclose(single, vectors, atol=1e-4)


def test_matcher_answers_a_frame_with_top_k_and_serves_reload_and_enrol(world: dict[str, pathlib.Path]) -> None:
    image = cv2.imread(str(min((world["catalog"] / "images").glob("*.png"))))
    with ros_context() as (context, executor):
        col = Collector(context, {"matches": (CardMatchArray, qos.PIPELINE)})
        executor.add_node(col)
        embedder = started(EmbedderNode(context=context, parameter_overrides=overrides("embedder")))
        matcher = MatcherNode(context=context, parameter_overrides=overrides("matcher", database=str(world["db"])))
        executor.add_node(embedder)
        executor.add_node(matcher)
        vec, ok = embedder._embedder.embed([image])
        assert ok.all()
        pub = col.publisher(CardEmbeddingArray, "embeddings", qos.PIPELINE)
        assert spin_until(executor, lambda: pub.get_subscription_count() > 0)
        pub.publish(cv.embeddings_to_msg([CardEmbedding(5, vec[0])], cv.header(42, "cam"), embedder._embedder.model_id,
                                         embedder._embedder.dimension))
        assert spin_until(executor, lambda: bool(col.received["matches"]), 20.0)
        match = col.received["matches"][0].matches[0]
        assert match.track_id == 5 and len(match.candidates) >= 2
        distances = [c.distance_cos for c in match.candidates]
        assert distances == sorted(distances), "best first"
        assert abs(match.margin_to_runner_up - (next(c.distance_cos for c in match.candidates[1:]
                                                 if c.card_id != match.candidates[0].card_id) - distances[0])) < 1e-5

        # A batch from another model is dropped, not matched.
        pub.publish(cv.embeddings_to_msg([CardEmbedding(6, vec[0])], cv.header(43, "cam"), "some-other-model",
                                         embedder._embedder.dimension))
        assert spin_until(executor, lambda: matcher._monitor.counters.get("wrong_model", 0) == 1, 10.0)

        client = col.create_client(EnrolCard, "matcher/enrol_card")
        assert client.wait_for_service(timeout_sec=10.0)
        before = matcher.database.card_count
        future = client.call_async(EnrolCard.Request(track_id=5, card_id="promo-1", name="Promo", set_id="promo",
                                                     number="1"))
        assert spin_until(executor, future.done, 20.0)
        assert future.result().success, future.result().message
        assert matcher.database.card_count == before + 1
        unknown = client.call_async(EnrolCard.Request(track_id=999, card_id="x-1", name="X", set_id="x", number="1"))
        assert spin_until(executor, unknown.done, 20.0)
        assert not unknown.result().success and "999" in unknown.result().message

        reload = col.create_client(ReloadDatabase, "matcher/reload_database")
        assert reload.wait_for_service(timeout_sec=10.0)
        f2 = reload.call_async(ReloadDatabase.Request(path=""))
        assert spin_until(executor, f2.done, 20.0)
        assert f2.result().success and f2.result().cards == before + 1, "the enrolled card survives a reload"
        f3 = reload.call_async(ReloadDatabase.Request(path=str(world["db"]) + "-missing"))
        assert spin_until(executor, f3.done, 20.0)
        assert not f3.result().success and "missing" in f3.result().message
