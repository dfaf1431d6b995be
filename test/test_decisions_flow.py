"""Flow scheduling: when a card reaches its gate, against a belt model."""

from __future__ import annotations

import pytest
from decisions_support import MS, belt_config, track_end

from cardsorter.core.gate_schedule import NS_PER_S, BeltModel
from cardsorter.core.types import BoxPx


def simulate_belt(model: BeltModel, start_edge_px: float, speed_mm_s: float, gate_mm: float) -> int:
    """Ground truth: step a card along the belt at 1 ms until its leading edge reaches the gate."""
    c = model.config
    edge_mm = c.image_origin_mm + start_edge_px / c.px_per_mm
    t_ms = 0
    while edge_mm < gate_mm:
        t_ms += 1
        edge_mm += speed_mm_s / 1000.0
    return t_ms


@pytest.mark.parametrize("speed_mm_s,gate_mm", [(120.0, 760.0), (60.0, 400.0), (250.0, 1000.0)])
def test_config_speed_arrival_matches_a_simulated_belt(speed_mm_s: float, gate_mm: float) -> None:
    model = BeltModel(belt_config(speed_source="config", belt_speed_mm_per_s=speed_mm_s, actuation_lead_ms=0.0))
    end = track_end(1, last_stamp_ns=5 * NS_PER_S, box=BoxPx(400.0, 100.0, 126.0, 176.0))
    arrival = model.arrival(end, gate_mm)
    expected_ms = simulate_belt(model, 400.0 + 126.0, speed_mm_s, gate_mm)
    assert arrival.due_ns is not None
    assert abs((arrival.due_ns - end.last_stamp_ns) / MS - expected_ms) <= 1.0


def test_track_velocity_is_used_when_trusted() -> None:
    model = BeltModel(belt_config(speed_source="track", px_per_mm=2.0, actuation_lead_ms=0.0,
                                  min_track_speed_mm_per_s=20.0, belt_speed_mm_per_s=999.0))
    end = track_end(1, 0, box=BoxPx(0.0, 0.0, 100.0, 100.0), velocity=(200.0, 0.0))   # 100 mm/s
    arrival = model.arrival(end, 150.0)                # edge at 50 mm → 100 mm to go → 1 s
    assert arrival.speed_mm_per_s == pytest.approx(100.0)
    assert arrival.due_ns == NS_PER_S


def test_slow_or_backward_track_falls_back_to_the_belt_speed() -> None:
    model = BeltModel(belt_config(speed_source="track", belt_speed_mm_per_s=50.0, min_track_speed_mm_per_s=20.0))
    assert model.speed_mm_per_s(track_end(1, 0, velocity=(10.0, 0.0))) == 50.0
    assert model.speed_mm_per_s(track_end(1, 0, velocity=(-300.0, 0.0))) == 50.0


def test_lead_time_moves_the_actuation_earlier() -> None:
    base = belt_config(speed_source="config", belt_speed_mm_per_s=100.0, actuation_lead_ms=0.0)
    end = track_end(1, 0, box=BoxPx(0.0, 0.0, 100.0, 100.0))
    t0 = BeltModel(base).arrival(end, 500.0).due_ns
    t1 = BeltModel(belt_config(speed_source="config", belt_speed_mm_per_s=100.0, actuation_lead_ms=80.0)).arrival(end, 500.0).due_ns
    assert t0 is not None and t1 is not None and t0 - t1 == 80 * MS


@pytest.mark.parametrize("axis,box,edge_mm", [
    ("+x", BoxPx(100.0, 0.0, 50.0, 80.0), 75.0),
    ("-x", BoxPx(100.0, 0.0, 50.0, 80.0), -50.0),
    ("+y", BoxPx(0.0, 100.0, 50.0, 80.0), 90.0),
    ("-y", BoxPx(0.0, 100.0, 50.0, 80.0), -50.0),
])
def test_leading_edge_follows_the_travel_direction(axis: str, box: BoxPx, edge_mm: float) -> None:
    model = BeltModel(belt_config(travel_axis=axis, px_per_mm=2.0, image_origin_mm=0.0))
    assert model.leading_edge_mm(track_end(1, 0, box=box)) == pytest.approx(edge_mm)


def test_a_card_past_its_gate_is_due_at_once() -> None:
    model = BeltModel(belt_config(speed_source="config"))
    end = track_end(1, 7 * NS_PER_S, box=BoxPx(1000.0, 0.0, 100.0, 100.0))
    assert model.arrival(end, 10.0).due_ns == 7 * NS_PER_S


def test_encoder_schedule_counts_ticks() -> None:
    model = BeltModel(belt_config(speed_source="encoder", ticks_per_mm=10.0, px_per_mm=2.0, actuation_lead_ms=0.0))
    end = track_end(1, 0, box=BoxPx(0.0, 0.0, 100.0, 100.0))     # edge at 50 mm
    arrival = model.arrival(end, 150.0, encoder_ticks_at_end=12_345)
    assert arrival.due_ns is None and arrival.due_ticks == 12_345 + 1000


def test_encoder_schedule_needs_the_count() -> None:
    model = BeltModel(belt_config(speed_source="encoder"))
    with pytest.raises(ValueError, match="encoder"):
        model.arrival(track_end(1, 0), 100.0)


def test_bad_belt_config_is_refused() -> None:
    with pytest.raises(ValueError, match="travel_axis"):
        belt_config(travel_axis="z")
    with pytest.raises(ValueError, match="px_per_mm"):
        belt_config(px_per_mm=0.0)
