"""One PostgreSQL inventory for several stations: concurrent writers, same exports as SQLite, kill -9 safe.

The server is Debian's PostgreSQL, started per module in a temp dir on a Unix socket (skipped with the
reason where it is not installed; .ci/run installs it).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from pg_support import start_server

from cardsorter.cli.__main__ import main as cli_main
from cardsorter.core.errors import InventoryError
from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.types import CardRecord, SortDecision, SortStatus
from cardsorter.inventory.exports import aggregate, export_full, export_lines
from cardsorter.inventory.store import card_states, correct_cards, open_inventory, read_rows

STATION = pathlib.Path(__file__).with_name("pg_station.py")
REC = CardRecord(card_id="sv1-1", name="Sprig", set_id="sv1", set_name="Set One", number="1", set_code="SVI",
                 language="en", game="pokemon")


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    yield from start_server()


@pytest.fixture()
def pg_url(pg_server: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg_server.replace("/postgres?", f"/{name}?")


def event(tid: int, rec: CardRecord | None = REC, bin_name: str = "a", pos: int = 1) -> SortEvent:
    d = SortDecision(track_id=tid, status=SortStatus.CONFIRMED, card=rec, bin_name=bin_name, reason="rule",
                     distance_cos=0.1, margin_to_runner_up=math.inf, first_stamp_ns=tid, last_stamp_ns=tid + 1)
    return SortEvent(d, pos, tid * 100, None, "")


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(STATION.parent.parent), e.get("PYTHONPATH", "")])
    return e


def test_rows_round_trip_append_only_and_bins_per_station(pg_url: str) -> None:
    import psycopg

    with open_inventory(pg_url, session_id="s1", model_id="m", database_id="d", reject_bin="reject", opened_ns=1,
                        condition="LP", station="north") as inv:
        ids = [inv.append(event(1, pos=1)), inv.append(event(2, pos=2)), inv.append(event(3, None, "reject"))]
        assert inv.bin_fill() == {"a": 2, "reject": 1}
        inv.record_bin_emptied("a", 10)
        assert inv.bin_fill() == {"reject": 1}
    with open_inventory(pg_url, session_id="s2", model_id="m", database_id="d", reject_bin="reject", opened_ns=2,
                        station="south") as other:
        assert other.bin_fill() == {}                       # south's bins are its own
    rows = read_rows(pg_url)
    assert [r.id for r in rows] == ids and rows[0].name == "Sprig" and rows[2].rejected and rows[0].arrived is None
    assert rows[0].margin_to_runner_up is None             # inf is stored as NULL, as in SQLite
    assert {s.condition for s in card_states(pg_url).values()} == {"LP"}
    correct_cards(pg_url, [ids[0]], condition="DMG", stamp_ns=3)
    assert card_states(pg_url)[ids[0]].condition == "DMG"
    with psycopg.connect(pg_url, autocommit=True) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("DELETE FROM cards")
    with pytest.raises(InventoryError, match="no card rows"):
        correct_cards(pg_url, [9999], condition="NM", stamp_ns=4)


def test_two_stations_write_concurrently_and_exports_match_the_union(pg_url: str, tmp_path: pathlib.Path) -> None:
    n = 150
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(STATION), pg_url, station, str(n)],
                              env={**env(), "PG_STATION_GO": str(go)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for station in ("north", "southeast")]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{s}.ready").exists() for s in ("north", "southeast")) \
            and time.monotonic() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.02)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    committed = [{int(line.split()[1]) for line in o[0].splitlines()} for o in outs]
    rows = read_rows(pg_url)
    assert len(rows) == 2 * n and {r.id for r in rows} == committed[0] | committed[1]
    by_session = Counter(r.session_id for r in rows)
    assert by_session == {"session-north": n, "session-southeast": n}
    # interleaved, not one after the other: both wrote while the other did
    order = [r.session_id for r in rows]
    assert sum(a != b for a, b in itertools.pairwise(order)) > 1
    # the union's export equals the sum of each station's
    states = card_states(pg_url)
    catalogue = {REC.card_id: REC}
    union, _ = aggregate(rows, states, catalogue)
    per_station = Counter()
    for session in by_session:
        lines, _ = aggregate([r for r in rows if r.session_id == session], states, catalogue)
        per_station.update({(ln.card_id, ln.finish, ln.condition, ln.language): ln.quantity for ln in lines})
    assert {(ln.card_id, ln.finish, ln.condition, ln.language): ln.quantity for ln in union} == dict(per_station)
    assert sum(per_station.values()) == sum(not r.rejected for r in rows)
    # the CLI export from the URL writes the same file as from a SQLite copy of the same rows
    sqlite = tmp_path / "copy.sqlite"
    for session in by_session:
        with open_inventory(sqlite, session_id=session, model_id="m", database_id="d", reject_bin="reject",
                            opened_ns=1, condition="NM") as inv:
            for r in rows:
                if r.session_id == session:
                    d = SortDecision(track_id=r.track_id, status=SortStatus.CONFIRMED,
                                     card=CardRecord(card_id=r.card_id, name=r.name, set_id=r.set_id,
                                                     set_name=r.set_name, number=r.number), bin_name=r.bin,
                                     reason=r.reason, distance_cos=0.1, margin_to_runner_up=math.inf,
                                     first_stamp_ns=r.first_stamp_ns, last_stamp_ns=r.last_stamp_ns)
                    inv.append(SortEvent(d, r.position_in_bin, r.stamp_ns, None, r.note))
    a, b = io.StringIO(), io.StringIO()
    export_lines("tcgplayer-app", aggregate(rows, states, {}, default_language="en")[0], a)
    export_lines("tcgplayer-app", aggregate(read_rows(sqlite), card_states(sqlite), {}, default_language="en")[0], b)
    assert a.getvalue() == b.getvalue() and a.getvalue().count("\n") > 2
    out = tmp_path / "full.csv"
    assert cli_main(["inventory", "export", "--db", pg_url, "--format", "csv", "--out", str(out),
                     "--catalog", str(_empty_catalogue(tmp_path))]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2 * n + 1
    full = io.StringIO()
    assert export_full(rows, states, {}, full) == 2 * n


def _empty_catalogue(tmp_path: pathlib.Path) -> pathlib.Path:
    cat = tmp_path / "catalog"
    cat.mkdir(exist_ok=True)
    (cat / "metadata.json").write_text("{}")
    return cat


def test_kill_9_of_a_station_loses_no_committed_row(pg_url: str) -> None:
    proc = subprocess.Popen([sys.executable, str(STATION), pg_url, "victim", "0", "forever"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    committed: list[int] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        committed.append(int(line.split()[1]))
        if len(committed) == 60:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    stored = {r.id for r in read_rows(pg_url)}
    assert set(committed) <= stored                       # every row the station was told is written, is
    survivor = subprocess.run([sys.executable, str(STATION), pg_url, "survivor", "5"], check=False, env=env(),
                              capture_output=True, text=True, timeout=60)
    assert survivor.returncode == 0, survivor.stderr
    assert Counter(r.session_id for r in read_rows(pg_url))["session-survivor"] == 5


def test_unreachable_server_is_named_without_its_password() -> None:
    with pytest.raises(InventoryError, match="cannot connect to the PostgreSQL inventory postgresql://nobody@/x") as err:
        read_rows("postgresql://nobody:secret@/x?host=/nonexistent-socket-dir")
    assert "secret" not in str(err.value)


def test_the_sorter_node_writes_its_station_session_to_postgresql(pg_url: str) -> None:
    import psycopg
    from rosutil import overrides, ros_context, started

    from cardsorter.ros.sorter_node import SorterNode

    with ros_context() as (context, executor):
        node = started(SorterNode(context=context, parameter_overrides=overrides(
            "sorter", inventory_path=pg_url, **{"session.station": "bench-3", "session.condition": "MP"})))
        executor.add_node(node)
        node.destroy_node()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT s.station, c.condition FROM sessions s JOIN session_conditions c "
                            "USING (session_id)").fetchall() == [("bench-3", "MP")]


def test_summary_and_empty_bin_per_station(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for station in ("north", "south"):
        with open_inventory(pg_url, session_id=f"s-{station}", model_id="m", database_id="d", reject_bin="reject",
                            opened_ns=1, station=station) as inv:
            inv.append(event(1, pos=1))
            inv.append(event(2, pos=2))
    assert cli_main(["inventory", "summary", "--db", pg_url]) == 0
    out = capsys.readouterr().out
    assert "cards: 4 (0 rejected)" in out and "station north" in out and "station south" in out
    assert cli_main(["inventory", "empty-bin", "--db", pg_url, "--bin", "a"]) == 2
    assert "needs --station" in capsys.readouterr().err
    assert cli_main(["inventory", "empty-bin", "--db", pg_url, "--bin", "a", "--station", "nowhere"]) == 2
    assert "no station 'nowhere'" in capsys.readouterr().err
    assert cli_main(["inventory", "empty-bin", "--db", pg_url, "--bin", "a", "--station", "north"]) == 0
    with open_inventory(pg_url, session_id="s-north-2", model_id="m", database_id="d", reject_bin="reject",
                        opened_ns=2, station="north") as inv:
        assert inv.bin_fill() == {}
    with open_inventory(pg_url, session_id="s-south-2", model_id="m", database_id="d", reject_bin="reject",
                        opened_ns=2, station="south") as inv:
        assert inv.bin_fill() == {"a": 2}


def test_a_dropped_connection_is_reopened_and_a_row_is_never_written_twice(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    import psycopg

    with open_inventory(pg_url, session_id="s", model_id="m", database_id="d", reject_bin="reject", opened_ns=1,
                        station="north") as inv:
        first = inv.append(event(1))
        with psycopg.connect(pg_url, autocommit=True) as admin:   # the server drops the station's connection
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE pid <> pg_backend_pid() AND datname = current_database()")
        second = inv.append(event(2))
        assert "connection lost" in caplog.text                  # it was dropped, and reopened
        assert inv.append(event(2)) == second                   # a retried append of the same track: same row
    assert [r.id for r in read_rows(pg_url)] == [first, second]


def test_review_corrections_apply_on_postgresql_as_on_sqlite(pg_url: str, tmp_path: pathlib.Path) -> None:
    from cardsorter.inventory.store import append_correction

    mew = CardRecord(card_id="sv1-151", name="Mew ex", set_id="sv1", set_name="Set One", number="151", finish="holo")
    for target in (pg_url, tmp_path / "inv.sqlite"):
        with open_inventory(target, session_id="s", model_id="m", database_id="d", reject_bin="reject",
                            opened_ns=1, station="north") as inv:
            kept = inv.append(event(1))
            named = inv.append(event(2, None, "reject"))
        append_correction(target, named, mew, "review: Mew ex", stamp_ns=5)
        rows = {r.id: r for r in read_rows(target)}
        assert (rows[named].status, rows[named].card_id, rows[named].finish, rows[named].bin) == (
            "corrected", "sv1-151", "holo", "reject")
        lines, _ = aggregate(list(rows.values()), card_states(target), {})
        assert {(ln.card_id, ln.quantity) for ln in lines} == {("sv1-1", 1), ("sv1-151", 1)}, target
        assert rows[kept].status == "confirmed"
    with pytest.raises(InventoryError, match="no row 999"):
        append_correction(pg_url, 999, None, "x", stamp_ns=6)


def test_a_journaled_decision_a_dead_station_never_confirmed_is_recorded_lost_in_flight(pg_url: str) -> None:
    from cardsorter.inventory.pg_store import PgInventory
    from cardsorter.inventory.sqlite_store import LOST_IN_FLIGHT
    from cardsorter.inventory.store import InventoryWriter

    def station(session: str, name: str = "north") -> InventoryWriter:
        return open_inventory(pg_url, session_id=session, model_id="m", database_id="", reject_bin="reject",
                              opened_ns=1, station=name)

    crashed = station("crashed")
    assert isinstance(crashed, PgInventory)
    crashed.database_id = "db-9"
    done, moving = event(1), event(2, bin_name="b")
    crashed.journal("decided", done.decision, 10)
    crashed.journal("actuating", done.decision, 10)
    crashed.append(done)
    crashed.journal("actuating", moving.decision, 20)         # the station dies during this move
    with station("other", "south") as south:                  # another station: not its bins
        assert south.recover_lost_in_flight(25) == []
    with station("meanwhile") as meanwhile:                   # "crashed" is still running: nothing lost
        assert meanwhile.recover_lost_in_flight(25) == []
    crashed._conn.close()                                     # the process is gone: the server drops its lock
    with station("restarted") as restarted:
        (lost,) = restarted.recover_lost_in_flight(30)
        assert (lost.session_id, lost.track_id, lost.bin, lost.status) == ("crashed", 2, "b", LOST_IN_FLIGHT)
        assert "check bin b" in lost.reason and lost.database_id == "db-9"
        assert restarted.recover_lost_in_flight(31) == []      # recorded once
    assert {s for s in (r.session_id for r in read_rows(pg_url))} == {"crashed"}
