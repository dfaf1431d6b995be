"""The operator web view's HTTP surface, without ROS: pages, guards and bad requests (real aiohttp server)."""

from __future__ import annotations

import json
import pathlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from cardsorter.core.errors import ConfigError
from cardsorter.core.types import CardRecord
from cardsorter.web.security import load_or_create_token
from cardsorter.web.server import WebConfig, WebServer
from cardsorter.web.state import Candidate, LiveState, ReviewItem


class FakeBackend:
    """Records what the pages asked for; card "sv1-1" exists, nothing else does."""

    def __init__(self, image: pathlib.Path) -> None:
        self.commands: list[str] = []
        self.resolved: list[tuple[int, str | None]] = []
        self.image = image

    def command(self, name: str) -> tuple[bool, str]:
        self.commands.append(name)
        return True, f"{name} done"

    def resolve(self, item: ReviewItem, card: CardRecord | None) -> str:
        self.resolved.append((item.item_id, card.card_id if card else None))
        return "inventory row corrected"

    def search_cards(self, query: str, limit: int) -> list[dict[str, str]]:
        return [{"card_id": "sv1-1", "name": "Sprigatito", "set_id": "sv1", "number": "1"}] if "spri" in query.lower() else []

    def record(self, card_id: str) -> CardRecord | None:
        return CardRecord(card_id="sv1-1", name="Sprigatito", set_id="sv1", number="1") if card_id == "sv1-1" else None

    def card_image(self, card_id: str) -> pathlib.Path | None:
        return self.image if card_id == "sv1-1" else None

    def inventory(self, session: str, bin_name: str, set_id: str, query: str, limit: int) -> dict[str, Any]:
        return {"total": 0, "rejected": 0, "sessions": [], "bins": [], "sets": [], "rows": []}

    def export(self, fmt: str) -> tuple[str, str]:
        if fmt != "csv":
            raise KeyError(fmt)
        return "inventory-csv.csv", "id,card_id\n"


@pytest.fixture
def served(tmp_path: pathlib.Path) -> Iterator[tuple[str, LiveState, FakeBackend]]:
    image = tmp_path / "sv1-1.png"
    image.write_bytes(b"\x89PNG fake")
    state, backend = LiveState(), FakeBackend(image)
    server = WebServer(state, backend, WebConfig(host="127.0.0.1", port=0, frame_fps=10.0, max_body_bytes=4096,
                                                 token=None))
    url = server.start().removesuffix("/live")
    try:
        yield url, state, backend
    finally:
        server.close()


def request(url: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def csrf_of(base: str) -> str:
    return str(json.loads(request(base + "/api/session")[1])["csrf"])


def post(base: str, path: str, obj: Any, csrf: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    status, body = request(base + path, "POST", json.dumps(obj).encode(), headers)
    return status, json.loads(body)


def add_review(state: LiveState, track_id: int = 7) -> ReviewItem:
    state.set_candidates(track_id, [Candidate("sv1-1", "Sprigatito", "sv1", "1", 0.31)])
    state.set_crop(track_id, b"\xff\xd8 crop")
    item = state.add_sort_event(track_id=track_id, session_id="s1", status="unknown", reason="too far",
                                bin_name="reject", position_in_bin=1, stamp_ns=1)
    assert item is not None
    return item


@pytest.mark.parametrize("page", ["live", "review", "inventory"])
def test_every_page_and_its_assets_are_served_from_the_package(served: Any, page: str) -> None:
    base, _, _ = served
    status, html = request(f"{base}/{page}")
    assert status == 200 and b"/static/app.js" in html
    for asset in ("app.js", "style.css"):
        assert request(f"{base}/static/{asset}")[0] == 200


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e%2fserver.py", "/static/state.py",
                                  "/api/cards/..%2f..%2fetc%2fpasswd/image"])
def test_no_path_reaches_files_outside_the_assets(served: Any, path: str) -> None:
    base, _, _ = served
    status, body = request(base + path)
    assert status == 404 and b"import" not in body


def test_a_rejected_card_becomes_a_review_item_with_its_crop_and_candidates(served: Any) -> None:
    base, state, _ = served
    item = add_review(state)
    items = json.loads(request(base + "/api/review")[1])["items"]
    assert [i["track_id"] for i in items] == [7]
    assert items[0]["candidates"][0]["card_id"] == "sv1-1" and items[0]["has_crop"]
    assert request(f"{base}/api/review/{item.item_id}/crop.jpg")[1] == b"\xff\xd8 crop"


def test_resolving_an_item_calls_the_backend_once_and_closes_the_item(served: Any) -> None:
    base, state, backend = served
    item = add_review(state)
    status, body = post(base, f"/api/review/{item.item_id}/resolve", {"card_id": "sv1-1"}, csrf_of(base))
    assert status == 200 and body["resolution"] == "card:sv1-1" and not body["open"]
    assert backend.resolved == [(item.item_id, "sv1-1")]
    again = post(base, f"/api/review/{item.item_id}/resolve", {"unknown": True}, csrf_of(base))
    assert again[0] == 409 and backend.resolved == [(item.item_id, "sv1-1")]


@pytest.mark.parametrize(("body", "status"), [
    ({"card_id": "nope-404"}, 404),
    ({"card_id": ""}, 400),
    ({"card_id": 5}, 400),
    ({}, 400),
    ({"card_id": "sv1-1", "unknown": True}, 400),
    ({"unknown": False}, 400),
    ({"new_card": {"card_id": "sv1-1", "name": "Sprigatito"}}, 409),
    ({"new_card": {"card_id": "x-1"}}, 400),
    ({"new_card": {"card_id": "x-1", "name": "X", "price": 3}}, 400),
    ({"new_card": {"card_id": "x-1", "name": "X" * 201}}, 400),
    (["card_id"], 400),
])
def test_a_bad_resolution_gets_a_4xx_and_changes_nothing(served: Any, body: Any, status: int) -> None:
    base, state, backend = served
    item = add_review(state)
    got, answer = post(base, f"/api/review/{item.item_id}/resolve", body, csrf_of(base))
    assert got == status and "error" in answer
    assert backend.resolved == [] and state.review_item(item.item_id).open  # type: ignore[union-attr]


def test_a_card_missing_from_the_catalogue_can_be_named_by_hand(served: Any) -> None:
    base, state, backend = served
    item = add_review(state)
    status, body = post(base, f"/api/review/{item.item_id}/resolve",
                        {"new_card": {"card_id": "promo-7", "name": "Pikachu", "set_id": "promo", "number": "7"}},
                        csrf_of(base))
    assert status == 200 and body["resolution"] == "card:promo-7"
    assert backend.resolved == [(item.item_id, "promo-7")]


def test_a_post_without_the_csrf_token_is_refused(served: Any) -> None:
    base, state, backend = served
    item = add_review(state)
    assert post(base, f"/api/review/{item.item_id}/resolve", {"unknown": True})[0] == 403
    assert post(base, "/api/command", {"command": "stop"}, csrf="forged")[0] == 403
    assert backend.resolved == [] and backend.commands == []


def test_an_oversized_body_is_refused(served: Any) -> None:
    base, _, backend = served
    status, _ = request(base + "/api/command", "POST", b'{"command": "pause", "x": "' + b"a" * 8192 + b'"}',
                        {"Content-Type": "application/json", "X-CSRF-Token": csrf_of(base)})
    assert status == 413 and backend.commands == []


def test_commands_reach_the_sorter_and_unknown_ones_do_not(served: Any) -> None:
    base, _, backend = served
    csrf = csrf_of(base)
    assert post(base, "/api/command", {"command": "pause"}, csrf)[1]["success"]
    assert post(base, "/api/command", {"command": "self-destruct"}, csrf)[0] == 400
    assert backend.commands == ["pause"]


def test_a_foreign_host_header_is_refused(served: Any) -> None:
    base, _, _ = served
    assert request(base + "/api/live", headers={"Host": "evil.example:8080"})[0] == 421


def test_listening_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="access token"):
        WebConfig(host="0.0.0.0", port=8080, frame_fps=4.0, max_body_bytes=4096, token=None)


def test_with_a_token_every_request_must_carry_it(tmp_path: pathlib.Path) -> None:
    token, created = load_or_create_token(tmp_path / "token")
    assert created and (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert load_or_create_token(tmp_path / "token") == (token, False)
    server = WebServer(LiveState(), FakeBackend(tmp_path), WebConfig(
        host="127.0.0.1", port=0, frame_fps=4.0, max_body_bytes=4096, token=token))
    base = server.start().removesuffix("/live")
    try:
        assert request(base + "/api/live")[0] == 401
        assert request(base + "/api/live?token=wrong")[0] == 401
        assert request(f"{base}/api/live?token={token}")[0] == 200
        assert request(base + "/api/live", headers={"Authorization": f"Bearer {token}"})[0] == 200
    finally:
        server.close()


def test_a_token_file_others_can_read_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "token"
    path.write_text("x" * 40)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_or_create_token(path)


def test_live_state_counts_bins_and_throughput() -> None:
    state = LiveState()
    for i in range(4):
        state.add_sort_event(track_id=i, session_id="s", status="confirmed", reason="", bin_name="fire",
                             position_in_bin=i + 1, stamp_ns=i, now_s=100.0 + 10 * i)
    live = state.live(now_s=130.0)
    assert live["bins"] == {"fire": 4} and live["sorted"] == 4 and live["review_open"] == 0
    assert live["cards_per_hour"] == pytest.approx(360.0)
