"""Parameters YAML → the typed settings tree; missing, mistyped, misspelt or contradictory entries are named."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import pytest

from cardsorter.config import default_params_file, load_params_file, params_file_blocks
from cardsorter.core.errors import ConfigError
from cardsorter.core.fields import doc
from cardsorter.settings import NODE_SETTINGS, build, load_settings, parameter_names, typed_overrides


@dataclass(frozen=True)
class GateConfig:
    iou_min: float = doc("IoU below which a track has moved")
    max_age_frames: int = doc("frames after which a cached result expires")
    enabled: bool = doc("gate on or off")
    names: list[str] = doc("names")  # noqa: RUF009 - doc() is a field()


def test_build_makes_a_typed_config() -> None:
    cfg = build(GateConfig, {"gate.iou_min": 0.7, "gate.max_age_frames": 30, "gate.enabled": True,
                                   "gate.names": ["a"]}, "gate.")
    assert cfg == GateConfig(0.7, 30, True, ["a"])


def test_an_integer_is_accepted_for_a_float() -> None:
    cfg = build(GateConfig, {"iou_min": 1, "max_age_frames": 3, "enabled": False, "names": []})
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
        build(GateConfig, params, "gate.")


def test_params_file_flattens_nested_maps_and_merges_wildcard(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    frame_id: cam\n"
                    "camera:\n  ros__parameters:\n    synthetic:\n      seed: 10\n")
    table = load_params_file(path)
    assert table["camera"] == {"frame_id": "cam", "synthetic.seed": 10}


def test_params_file_without_ros_parameters_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("camera:\n  fps: 10\n")
    with pytest.raises(ConfigError, match="camera"):
        load_params_file(path)


def test_the_shipped_params_file_has_every_node() -> None:
    from cardsorter.ros.node_specs import NODE_NAMES

    table = load_params_file(default_params_file())
    assert set(NODE_NAMES) <= set(table)


# --- unknown keys are errors, never ignored ---------------------------------------------------------

@pytest.mark.parametrize(("yaml_text", "named", "suggested"), [
    ("camera:\n  ros__parameters:\n    synthetic:\n      sead: 3\n", "unknown parameter 'synthetic.sead'",
     "synthetic.seed"),
    ("camra:\n  ros__parameters:\n    fps: 5.0\n", "unknown node section 'camra'", "camera"),
    ("sorter:\n  ros__parameters:\n    actuator:\n      simulted:\n        seed: 1\n",
     "unknown parameter 'actuator.simulted.seed'", "actuator.simulated.seed"),
    ("/**:\n  ros__parameters:\n    frame_idd: x\n", "unknown parameter 'frame_idd'", "frame_id"),
])
def test_an_unknown_section_or_key_in_a_params_file_is_an_error_listing_the_valid_ones(
        tmp_path: pathlib.Path, yaml_text: str, named: str, suggested: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    text = str(err.value)
    assert str(path) in text and named in text and f"did you mean '{suggested}'" in text
    assert "valid: " in text and suggested in text.split("valid: ", 1)[1]


def test_a_copy_of_the_shipped_params_file_is_accepted(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "copy.yaml"
    path.write_text(default_params_file().read_text())
    assert load_settings(path) == load_settings()


def test_the_shipped_params_file_names_only_the_graphs_nodes() -> None:
    from cardsorter.ros.node_specs import ALL_NODE_NAMES

    assert set(load_params_file(default_params_file())) == {*ALL_NODE_NAMES, "**"}


@pytest.mark.parametrize(("item", "named"), [
    ("camera.sourse=video", "unknown parameter 'sourse' (did you mean 'source'?)"),
    ("sorter.actuator.simulated.sead=3", "unknown parameter 'actuator.simulated.sead'"),
    ("camra.fps=5.0", "NODE one of"),
])
def test_an_unknown_set_override_is_an_error_naming_it(item: str, named: str) -> None:
    import argparse

    from cardsorter.ros.graph import add_run_arguments, overrides_from_args

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        overrides_from_args(parser.parse_args(["--set", item]))
    assert overrides_from_args(parser.parse_args(["--set", "camera.source=video"])) == {"camera": {"source": "video"}}


def test_the_cli_reports_an_unknown_set_key_and_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from cardsorter.cli.__main__ import main

    assert main(["run", "--duration", "0.1", "--set", "matcher.kk=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'kk'" in err and "valid: " in err and "bands.confirm_distance_max" in err


# --- the settings tree mirrors config/sorter.yaml ----------------------------------------------------

def test_every_leaf_of_the_shipped_file_is_a_settings_field_and_every_field_is_in_the_file() -> None:
    blocks = params_file_blocks(default_params_file())
    common = set(blocks.pop("**"))
    assert set(blocks) == set(NODE_SETTINGS)
    for node, cls in NODE_SETTINGS.items():
        fields = set(parameter_names(cls))
        assert set(blocks[node]) <= fields, f"{node}: read by nothing: {sorted(set(blocks[node]) - fields)}"
        assert fields <= set(blocks[node]) | common, f"{node}: not in the file: {sorted(fields - set(blocks[node]) - common)}"
    every_field = set().union(*(parameter_names(cls) for cls in NODE_SETTINGS.values()))
    assert common <= every_field, f"/**: read by no node: {sorted(common - every_field)}"


def test_the_shipped_file_builds_the_tree_each_node_declares() -> None:
    settings = load_settings()
    assert settings.camera.detector.config.mode in ("learned", "hybrid", "classical")
    assert settings.camera.frame_id == settings.sorter.frame_id == load_params_file(default_params_file())["**"]["frame_id"]
    assert settings.sorter.actuator.of(settings.sorter.actuator_kind) is getattr(settings.sorter.actuator,
                                                                                 settings.sorter.actuator_kind)


def test_overrides_are_typed_once_and_an_integer_is_a_float() -> None:
    settings = load_settings(overrides={"camera": {"fps": 10, "synthetic.nuisance.glare": 0}})
    assert settings.camera.frame.fps == 10.0 and isinstance(settings.camera.frame.fps, float)
    assert settings.camera.synthetic.nuisance.glare == 0.0


def test_set_overrides_reach_rclpy_as_the_parameter_type() -> None:
    overrides = {"camera": {"fps": 30, "synthetic.background_bgr": [1, 2, 3]}}
    typed = typed_overrides(load_settings(overrides=overrides), overrides)
    assert typed == {"camera": {"fps": 30.0, "synthetic.background_bgr": [1, 2, 3]}}
    assert isinstance(typed["camera"]["fps"], float)


@pytest.mark.parametrize(("overrides", "named"), [
    ({"camera": {"fps": "fast"}}, "parameter 'fps' must be a float"),
    ({"camera": {"detector.mode": "magic"}}, "mode must be one of"),
    ({"smoother": {"confirm_views": 0}}, "confirm_views must be in"),
    ({"camera": {"detector.scor_min": 0.5}}, "unknown parameter 'detector.scor_min' (did you mean 'detector.score_min'?)"),
])
def test_a_bad_override_fails_at_load_naming_it(overrides: dict, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(overrides=overrides)
    assert named in str(err.value)


def test_encoder_belt_speed_is_refused_at_load_because_no_node_passes_encoder_ticks() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(overrides={"sorter": {"flow.speed_source": "encoder"}})
    assert "node 'sorter'" in str(err.value) and "encoder tick source" in str(err.value)
    assert load_settings(overrides={"sorter": {"flow.speed_source": "config"}}).sorter.flow.speed_source == "config"


def test_a_file_missing_a_parameter_names_it(tmp_path: pathlib.Path) -> None:
    text = default_params_file().read_text().replace("      seed: 7\n      realtime: true", "      realtime: true", 1)
    path = tmp_path / "short.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"node 'camera': missing parameter 'synthetic\.seed'"):
        load_settings(path)
