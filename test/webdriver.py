"""A small W3C WebDriver client for Debian's chromedriver + headless Chromium (no Selenium, nothing phones home)."""

from __future__ import annotations

import base64
import json
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any, Self

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Quiet Chromium: no background networking, updates, sync or QUIC (these machines send nothing beyond loopback).
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-quic", "--disable-extensions", "--window-size=1280,900"]


def available() -> str | None:
    """None when Chromium and chromedriver are installed, else the reason a browser test must skip."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not pathlib.Path(p).exists()]
    return f"needs Debian's chromium and chromium-driver (missing {', '.join(missing)})" if missing else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """One headless Chromium session driven over chromedriver's HTTP API; a context manager."""

    def __init__(self, profile_dir: pathlib.Path, timeout_s: float = 30.0) -> None:
        self._port = _free_port()
        self._driver = subprocess.Popen([CHROMEDRIVER, f"--port={self._port}", "--allowed-ips=127.0.0.1"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._base = f"http://127.0.0.1:{self._port}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self._driver.kill()
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.2)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile_dir}"]}}}}
        self._session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self._base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"webdriver {method} {path}: {err.read().decode()[:500]}") from err

    def _s(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self._session}{path}", body)

    def get(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    def find_all(self, css: str) -> list[str]:
        return [e[ELEMENT] for e in self._s("POST", "/elements", {"using": "css selector", "value": css})]

    def wait_for(self, css: str, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.find_all(css)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    def click(self, element: str) -> None:
        self._s("POST", f"/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self._s("POST", f"/element/{element}/value", {"text": text})

    def text(self, element: str) -> str:
        return str(self._s("GET", f"/element/{element}/text"))

    def run(self, script: str, *args: Any) -> Any:
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path: pathlib.Path) -> None:
        path.write_bytes(base64.b64decode(self._s("GET", "/screenshot")))

    def close(self) -> None:
        try:
            self._s("DELETE", "")
        except (RuntimeError, OSError):
            pass
        self._driver.terminate()
        try:
            self._driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._driver.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
