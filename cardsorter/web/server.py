"""The operator's web view (aiohttp): live sorting, the review queue and the inventory, on localhost."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from aiohttp import web

from cardsorter.core.errors import CardsorterError, ConfigError
from cardsorter.core.types import CardRecord
from cardsorter.web.security import allowed_hosts, is_loopback, same_token
from cardsorter.web.state import LiveState, ReviewItem

log = logging.getLogger("cardsorter.web")

STATIC_DIR = pathlib.Path(__file__).with_name("static")
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
"""Every asset the pages use, served by name from the package (no directory listing, no paths)."""
PAGES = ("live", "review", "inventory")
COMMANDS = ("pause", "resume", "stop")
TOKEN_COOKIE = "cardsorter_token"
SEARCH_LIMIT = 20
HOSTS = web.AppKey("hosts", set[str])   # mutable: filled with the real port once bound
INVENTORY_LIMIT = 1000


@dataclass(frozen=True)
class WebConfig:
    host: str
    port: int
    frame_fps: float
    max_body_bytes: int
    token: str | None       # required on every request when not None (listening beyond loopback)

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(f"web.host {self.host!r} is not loopback: an access token is required")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"web.port must be 0..65535, got {self.port}")
        if not 0 < self.frame_fps <= 30:
            raise ConfigError(f"web.frame_fps must be in (0, 30], got {self.frame_fps}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"web.max_body_bytes must be at least 1024, got {self.max_body_bytes}")


class WebBackend(Protocol):
    """What the pages act on: the sorter, the matcher and the inventory (the web node implements it)."""

    def command(self, name: str) -> tuple[bool, str]: ...

    def resolve(self, item: ReviewItem, card: CardRecord | None) -> str: ...

    def search_cards(self, query: str, limit: int) -> list[dict[str, str]]: ...

    def record(self, card_id: str) -> CardRecord | None: ...

    def card_image(self, card_id: str) -> pathlib.Path | None: ...

    def inventory(self, session: str, bin_name: str, set_id: str, query: str, limit: int) -> dict[str, Any]: ...

    def export(self, fmt: str) -> tuple[str, str]: ...


class BadRequest(CardsorterError):
    """A request the page should not have sent: answered 400 with the reason."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(state: LiveState, backend: WebBackend, config: WebConfig) -> web.Application:
    csrf = secrets.token_urlsafe(24)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.host not in request.app[HOSTS]:
            return _error(421, f"unexpected Host header {request.host!r}")
        if config.token is not None:
            given = request.cookies.get(TOKEN_COOKIE) or request.query.get("token") \
                or request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not same_token(given, config.token):
                return _error(401, "access token missing or wrong (see the sorter's log for the URL)")
        if request.method == "POST" and not same_token(request.headers.get("X-CSRF-Token"), csrf):
            return _error(403, "missing or wrong CSRF token: reload the page")
        try:
            response = await handler(request)
        except BadRequest as err:
            return _error(400, str(err))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body larger than {config.max_body_bytes} bytes")
        if config.token is not None and request.query.get("token"):
            response.set_cookie(TOKEN_COOKIE, config.token, httponly=True, samesite="Strict")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'")
        return response

    async def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Content-Type": "text/html"})

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            return _error(404, f"no asset {name!r}")
        return web.FileResponse(STATIC_DIR / name, headers={"Content-Type": STATIC_FILES[name]})

    async def session(request: web.Request) -> web.StreamResponse:
        return web.json_response({"csrf": csrf, "commands": list(COMMANDS)})

    async def live(request: web.Request) -> web.StreamResponse:
        return web.json_response(state.live())

    async def frame(request: web.Request) -> web.StreamResponse:
        after = _int(request.query.get("after", "0"), "after")
        jpeg, seq = await run_blocking(state.wait_frame, after, 1.0 / config.frame_fps)
        if not jpeg:
            return _error(404, "no camera image yet")
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"X-Frame-Seq": str(seq)})

    async def review(request: web.Request) -> web.StreamResponse:
        items = state.review_items(include_resolved=request.query.get("all") == "1")
        return web.json_response({"items": [_item_json(i) for i in items]})

    async def review_crop(request: web.Request) -> web.StreamResponse:
        item = _review_item(state, request.match_info["item_id"])
        if item.crop_jpeg is None:
            return _error(404, f"review item {item.item_id} has no crop")
        return web.Response(body=item.crop_jpeg, content_type="image/jpeg")

    async def resolve(request: web.Request) -> web.StreamResponse:
        item = _review_item(state, request.match_info["item_id"])
        body = await _json_body(request)
        given = [k for k in ("card_id", "new_card", "unknown") if k in body]
        if len(given) != 1 or set(body) - {"card_id", "new_card", "unknown"}:
            raise BadRequest('send exactly one of {"card_id": ID}, {"new_card": {...}} or {"unknown": true}')
        record: CardRecord | None = None
        if "card_id" in body:
            card_id = body["card_id"]
            if not isinstance(card_id, str) or not card_id:
                raise BadRequest("card_id must be a non-empty string")
            record = await run_blocking(backend.record, card_id)
            if record is None:
                return _error(404, f"no card {card_id!r} in the reference database")
        elif "new_card" in body:
            record = _new_card(body["new_card"])
            if await run_blocking(backend.record, record.card_id) is not None:
                return _error(409, f"card {record.card_id!r} is in the catalogue already: pick it instead")
        elif body["unknown"] is not True:
            raise BadRequest("unknown must be true")
        if not item.open:
            return _error(409, f"review item {item.item_id} was already resolved ({item.resolution})")
        message = await run_blocking(backend.resolve, item, record)
        done = state.resolve(item.item_id, f"card:{record.card_id}" if record else "unknown", message)
        return web.json_response(_item_json(done))

    async def command(request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        name = body.get("command")
        if name not in COMMANDS:
            raise BadRequest(f"command must be one of {', '.join(COMMANDS)}")
        ok, message = await run_blocking(backend.command, name)
        return web.json_response({"success": ok, "message": message}, status=200 if ok else 502)

    async def cards(request: web.Request) -> web.StreamResponse:
        query = request.query.get("q", "").strip()
        if len(query) > 100:
            raise BadRequest("search text longer than 100 characters")
        return web.json_response({"cards": await run_blocking(backend.search_cards, query, SEARCH_LIMIT)})

    async def card_image(request: web.Request) -> web.StreamResponse:
        card_id = request.match_info["card_id"]
        path = await run_blocking(backend.card_image, card_id)
        if path is None:
            return _error(404, f"no reference image for card {card_id!r}")
        return web.FileResponse(path)

    async def inventory(request: web.Request) -> web.StreamResponse:
        q = request.query
        return web.json_response(await run_blocking(backend.inventory, q.get("session", ""), q.get("bin", ""),
                                                    q.get("set", ""), q.get("q", ""), INVENTORY_LIMIT))

    async def export(request: web.Request) -> web.StreamResponse:
        fmt = request.match_info["fmt"]
        try:
            filename, text = await run_blocking(backend.export, fmt)
        except KeyError:
            return _error(404, f"no export format {fmt!r}")
        return web.Response(text=text, content_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    app = web.Application(middlewares=[guard], client_max_size=config.max_body_bytes)
    app[HOSTS] = set(allowed_hosts(config.host, config.port))
    app.router.add_get("/", _to_live)
    for name in PAGES:
        app.router.add_get(f"/{name}", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/live", live)
    app.router.add_get("/api/frame.jpg", frame)
    app.router.add_get("/api/review", review)
    app.router.add_get("/api/review/{item_id}/crop.jpg", review_crop)
    app.router.add_post("/api/review/{item_id}/resolve", resolve)
    app.router.add_post("/api/command", command)
    app.router.add_get("/api/cards", cards)
    app.router.add_get("/api/cards/{card_id}/image", card_image)
    app.router.add_get("/api/inventory", inventory)
    app.router.add_get("/api/export/{fmt}", export)
    return app


async def _to_live(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/live")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


NEW_CARD_FIELDS = {"card_id": 64, "name": 200, "set_id": 32, "set_name": 200, "number": 32, "rarity": 64}
"""What a person may type for a card the catalogue lacks, with the longest value accepted."""


def _new_card(obj: Any) -> CardRecord:
    if not isinstance(obj, dict):
        raise BadRequest("new_card must be an object")
    unknown = set(obj) - set(NEW_CARD_FIELDS)
    if unknown:
        raise BadRequest(f"new_card: unknown fields {sorted(unknown)} (valid: {', '.join(NEW_CARD_FIELDS)})")
    values: dict[str, str] = {}
    for name, longest in NEW_CARD_FIELDS.items():
        value = obj.get(name, "")
        if not isinstance(value, str) or len(value) > longest:
            raise BadRequest(f"new_card.{name} must be a string of at most {longest} characters")
        values[name] = value.strip()
    if not values["card_id"] or not values["name"]:
        raise BadRequest("new_card needs at least card_id and name")
    return CardRecord(card_id=values["card_id"], name=values["name"], set_id=values["set_id"],
                      set_name=values["set_name"], number=values["number"], rarity=values["rarity"],
                      art_id=values["card_id"])


def _int(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError as err:
        raise BadRequest(f"{what} must be an integer, got {raw!r}") from err


def _review_item(state: LiveState, raw: str) -> ReviewItem:
    item = state.review_item(_int(raw, "review item id"))
    if item is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no review item {raw}"}), content_type="application/json")
    return item


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest(f"the request body is not JSON: {err}") from err
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _item_json(item: ReviewItem) -> dict[str, Any]:
    out = asdict(item)
    out.pop("crop_jpeg")
    out["has_crop"] = item.crop_jpeg is not None
    out["open"] = item.open
    return out


class WebServer:
    """The app on its own asyncio loop in a background thread; ``url`` once started."""

    def __init__(self, state: LiveState, backend: WebBackend, config: WebConfig) -> None:
        self._app = build_app(state, backend, config)
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        self._thread: threading.Thread | None = None
        self.port = config.port

    def start(self) -> str:
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self._config.host, self._config.port, reuse_address=True)
        try:
            self._loop.run_until_complete(site.start())
        except OSError as err:
            raise ConfigError(f"web: cannot listen on {self._config.host}:{self._config.port}: {err}") from err
        bound = self._runner.addresses   # port 0 asks for any free port: this is the one we got
        if bound:
            self.port = int(bound[0][1])
        self._app[HOSTS].update(allowed_hosts(self._config.host, self.port))
        self._thread = threading.Thread(target=self._loop.run_forever, name="cardsorter-web", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        host = f"[{self._config.host}]" if ":" in self._config.host else self._config.host
        return f"http://{host}:{self.port}/live"

    def close(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        self._loop.close()
        self._thread = None
