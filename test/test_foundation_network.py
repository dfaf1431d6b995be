"""Nothing leaves the machine: the whole graph and the ONNX embedder under strace reach only loopback.

The checker (test/netcheck.py) traces connect/sendto/sendmsg/sendmmsg with ``strace -f`` and names
every AF_INET/AF_INET6 destination beyond loopback. It is proven on scripts that do connect out:
UDP connect() to TEST-NET addresses, which sends no packet at all.
"""

from __future__ import annotations

import os
import pathlib
import sys
import textwrap

import pytest
from netcheck import non_loopback, report, run_traced, strace_path
from rosutil import make_world

from cardsorter.config import REPO_ROOT

GRAPH_SECONDS = 20.0          # the measurement: onnxruntime 1.32 phoned home ~10 s after start

if strace_path() is None:
    if os.environ.get("CARDSORTER_REQUIRE_STRACE") == "1":
        raise RuntimeError("strace is required here (CARDSORTER_REQUIRE_STRACE=1): apt-get install strace")
    pytest.skip("strace is not installed (scripts/bootstrap.sh installs it as root: apt-get install strace)",
                allow_module_level=True)


def _python(code: str, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    return run_traced([sys.executable, "-c", textwrap.dedent(code)], timeout_s=timeout_s, cwd=REPO_ROOT)


def test_the_checker_names_a_udp_connect_to_a_test_net_address() -> None:
    run = _python("""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 53))       # TEST-NET-1; a UDP connect() sends nothing
        s.close()
        """)
    assert run.returncode == 0, run.stderr
    (bad,) = run.offending
    assert (bad.syscall, bad.family, bad.address, bad.port) == ("connect", "AF_INET", "192.0.2.1", 53)
    assert "connect(" in bad.line and "192.0.2.1" in str(bad) and "192.0.2.1" in report(run)


def test_the_checker_names_ipv6_and_sendto_destinations() -> None:
    run = _python("""
        import socket
        for family, addr in ((socket.AF_INET6, "2001:db8::1"), (socket.AF_INET6, "::ffff:198.51.100.7")):
            s = socket.socket(family, socket.SOCK_DGRAM)
            try:
                s.connect((addr, 53))
            except OSError:
                pass                        # no IPv6 route here: the syscall was still made
            s.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        try:
            s.sendto(b"", ("203.0.113.9", 9))   # TEST-NET-3, discard port: the checker must name it
        except OSError:
            pass
        s.close()
        """)
    assert run.returncode == 0, run.stderr
    assert {(d.syscall, d.address) for d in run.offending} == {
        ("connect", "2001:db8::1"), ("connect", "::ffff:198.51.100.7"), ("sendto", "203.0.113.9")}


def test_the_checker_accepts_loopback_and_unix_sockets() -> None:
    run = _python("""
        import socket
        for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "127.3.2.1"), (socket.AF_INET6, "::1")):
            s = socket.socket(family, socket.SOCK_DGRAM)
            try:
                s.connect((addr, 9))
            except OSError:
                pass
            s.close()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            u.connect("/nonexistent/socket")
        except OSError:
            pass
        """)
    assert run.returncode == 0, run.stderr
    assert run.offending == []
    assert "127.3.2.1" in run.trace                         # it was traced, and judged local


def test_strace_lines_from_other_processes_and_unfinished_calls_are_parsed() -> None:
    text = ('123 connect(9, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16 '
            '<unfinished ...>\n'
            '124 connect(8, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT\n'
            '125 sendmsg(7, {msg_name={sa_family=AF_INET, sin_port=htons(7400), sin_addr=inet_addr("127.0.0.1")}, '
            'msg_namelen=16}, 0) = 20\n')
    (bad,) = non_loopback(text)
    assert (bad.syscall, bad.address, bad.port) == ("connect", "10.255.255.53", 53)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    return make_world(tmp_path_factory.mktemp("network_world"), cards=12, seed=5, unknown=2)


def test_the_whole_graph_sends_nothing_beyond_loopback(world: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    run = run_traced(
        [sys.executable, "-m", "cardsorter.cli", "run", "--source", "synthetic", "--duration", str(GRAPH_SECONDS),
         "--database", str(world["db"]), "--set", f"camera.synthetic.catalog_dir={world['catalog']}",
         "--set", f"sorter.inventory_path={tmp_path / 'inventory.sqlite'}"],
        timeout_s=GRAPH_SECONDS + 240.0, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.offending == [], report(run)
    # the trace saw the graph's own (loopback) DDS traffic, so it was really watching these processes
    assert "127.0.0.1" in run.trace, "no loopback traffic traced: strace did not see the graph"
    assert (tmp_path / "inventory.sqlite").is_file()


def test_the_onnx_embedder_opens_no_socket_beyond_loopback() -> None:
    run = run_traced([sys.executable, "-c", textwrap.dedent(f"""
        import time
        import numpy as np
        from cardsorter.backends.embedders import open_embedder
        from cardsorter.config import REPO_ROOT
        embedder = open_embedder("onnx", REPO_ROOT / "models" / "cardnet.yaml", 1)
        w, h = embedder.input_size_wh
        vectors, ok = embedder.embed([np.full((h, w, 3), 128, np.uint8)] * 4)
        assert ok.all(), ok
        import onnxruntime
        print("onnxruntime", onnxruntime.__version__, flush=True)
        time.sleep({GRAPH_SECONDS})          # onnxruntime 1.32 sent DNS queries ~10 s after the session opened
        embedder.close()
        """)], timeout_s=GRAPH_SECONDS + 120.0, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "onnxruntime" in run.stdout
    assert run.offending == [], report(run)
