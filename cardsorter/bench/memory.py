"""Peak memory (RSS) of every process of the graph, run as the launch file runs it: all_nodes, and one process per node."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from cardsorter.bench.perception import machine

STOP_GRACE_S = 15.0   # the launch file's own SIGINT → SIGTERM escalation waits about this long
DONE_MARK = "end of stream: bins"   # the sorter's log line once the stack is sorted


def peak_rss_mb(pid: int) -> float:
    """VmHWM (the process's peak resident set) from /proc, in MB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {pid}")


def _commands(mode: str, params_file: pathlib.Path, override_file: pathlib.Path) -> dict[str, list[str]]:
    from cardsorter.ros.node_specs import NODES  # rclpy: imported only when the bench runs
    files = ["--params-file", str(params_file), "--params-file", str(override_file)]
    if mode == "single_process":
        return {"all_nodes": [sys.executable, "-c", "from cardsorter.ros.graph import main; main()", "--ros-args", *files]}
    return {spec.name: [sys.executable, "-c", f"from {spec.module} import main; main()",
                        "--ros-args", "-r", f"__node:={spec.name}", *files] for spec in NODES}


def run_mode(mode: str, params_file: pathlib.Path, override_file: pathlib.Path, work: pathlib.Path,
             timeout_s: float) -> dict[str, Any]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, pathlib.Path] = {}
    started = time.monotonic()
    try:
        for name, cmd in _commands(mode, params_file, override_file).items():
            logs[name] = work / f"{mode}-{name}.log"
            with logs[name].open("wb") as fh:
                procs[name] = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        watched = logs.get("sorter", logs.get("all_nodes"))
        assert watched is not None
        done = False
        while time.monotonic() - started < timeout_s:
            if DONE_MARK in watched.read_text(errors="replace"):
                done = True
                break
            dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
            if dead:
                tail = {n: logs[n].read_text(errors="replace")[-400:] for n in dead}
                raise RuntimeError(f"{mode}: processes ended early {dead}: {tail}")
            time.sleep(0.5)
        rss = {name: peak_rss_mb(p.pid) for name, p in procs.items()}
        stop_started = time.monotonic()
        for p in procs.values():
            p.send_signal(signal.SIGINT)
        codes: dict[str, int | str] = {}
        for name, p in procs.items():
            try:
                codes[name] = p.wait(timeout=max(0.1, STOP_GRACE_S - (time.monotonic() - stop_started)))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGUSR1)     # the graph's faulthandler: every thread's stack into its log
                time.sleep(2.0)
                codes[name] = f"killed after 15 s (stacks in {logs[name]})"
        return {"peak_rss_mb": rss, "total_peak_rss_mb": round(sum(rss.values()), 1), "processes": len(rss),
                "sorted_to_end_of_stream": done, "stop_s": round(time.monotonic() - stop_started, 1),
                "exit_codes": codes, "logs": str(work)}
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def run(cards: int = 8, fps: float = 10.0, seed: int = 7, catalog_cards: int = 400,
        modes: tuple[str, ...] = ("single_process", "per_node")) -> dict[str, Any]:
    from cardsorter.config import default_params_file, resolve_path
    from cardsorter.console import progress_bar
    from cardsorter.demo_world import ensure_catalog, ensure_database
    from cardsorter.ros.launch_params import write_override_file
    from cardsorter.ros.node_specs import NODE_NAMES
    from cardsorter.settings import load_settings

    params_file = default_params_file()
    manifest = resolve_path(load_settings().embedder.model_manifest)
    catalog = ensure_catalog(catalog_cards, catalog_cards // 10, seed)
    database = ensure_database(catalog, manifest, progress=progress_bar())
    work = pathlib.Path(tempfile.mkdtemp(prefix="cardsorter-bench-memory-"))
    result: dict[str, Any] = {"machine": machine(), "cards": cards, "fps": fps, "catalog_cards": catalog_cards}
    for mode in modes:
        overrides: dict[str, dict[str, Any]] = {
            "camera": {"source": "synthetic", "synthetic.catalog_dir": str(catalog), "synthetic.cards": cards,
                       "synthetic.seed": seed, "synthetic.realtime": True, "fps": fps},
            "embedder": {"backend": "onnx"},
            "matcher": {"database": str(database)},
            "sorter": {"inventory_path": str(work / f"{mode}-inventory.sqlite"), "sort_log": ""},
        }
        override_file = write_override_file(params_file, "", NODE_NAMES, overrides, directory=str(work))
        result[mode] = run_mode(mode, params_file, override_file, work, timeout_s=max(120.0, cards * 15.0))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.memory", description=__doc__)
    p.add_argument("--cards", type=int, default=8)
    p.add_argument("--json", type=pathlib.Path)
    args = p.parse_args(argv)
    text = json.dumps(run(args.cards), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
