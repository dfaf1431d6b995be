"""Parameters YAML → typed configs; missing or mistyped entries are named."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import pytest

from cardsorter.config import doc, from_params, load_params_file
from cardsorter.core.errors import ConfigError


@dataclass(frozen=True)
class GateConfig:
    iou_min: float = doc("IoU below which a track has moved")
    max_age_frames: int = doc("frames after which a cached result expires")
    enabled: bool = doc("gate on or off")
    names: list[str] = doc("names")  # noqa: RUF009 - doc() is a field()


def test_from_params_builds_a_typed_config() -> None:
    cfg = from_params(GateConfig, {"gate.iou_min": 0.7, "gate.max_age_frames": 30, "gate.enabled": True,
                                   "gate.names": ["a"]}, "gate.")
    assert cfg == GateConfig(0.7, 30, True, ["a"])


def test_an_integer_is_accepted_for_a_float() -> None:
    cfg = from_params(GateConfig, {"iou_min": 1, "max_age_frames": 3, "enabled": False, "names": []})
    assert cfg.iou_min == 1.0 and isinstance(cfg.iou_min, float)


@pytest.mark.parametrize("params, named", [
    ({"gate.max_age_frames": 30, "gate.enabled": True, "gate.names": []}, "gate.iou_min"),
    ({"gate.iou_min": 0.7, "gate.max_age_frames": 2.5, "gate.enabled": True, "gate.names": []}, "gate.max_age_frames"),
    ({"gate.iou_min": "x", "gate.max_age_frames": 2, "gate.enabled": True, "gate.names": []}, "gate.iou_min"),
    ({"gate.iou_min": 0.7, "gate.max_age_frames": 2, "gate.enabled": "yes", "gate.names": []}, "gate.enabled"),
    ({"gate.iou_min": 0.7, "gate.max_age_frames": 2, "gate.enabled": True, "gate.names": "a"}, "gate.names"),
])
def test_a_bad_entry_is_named(params: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        from_params(GateConfig, params, "gate.")


def test_params_file_flattens_nested_maps_and_merges_wildcard(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    frame_id: cam\n"
                    "camera:\n  ros__parameters:\n    synthetic:\n      fps: 10.0\n")
    table = load_params_file(path)
    assert table["camera"] == {"frame_id": "cam", "synthetic.fps": 10.0}


def test_params_file_without_ros_parameters_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("camera:\n  fps: 10\n")
    with pytest.raises(ConfigError, match="camera"):
        load_params_file(path)


def test_the_shipped_params_file_has_every_node() -> None:
    from cardsorter.config import default_params_file
    from cardsorter.ros.graph import NODE_NAMES

    table = load_params_file(default_params_file())
    assert set(NODE_NAMES) <= set(table)
