"""The web view's guards: loopback by default, an access token off loopback, CSRF tokens, host checks."""

from __future__ import annotations

import ipaddress
import os
import pathlib
import secrets

from cardsorter.core.errors import ConfigError

TOKEN_BYTES = 24
"""192 bits: an access token nobody guesses; printed once at first start, stored 0600."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_or_create_token(path: pathlib.Path) -> tuple[str, bool]:
    """The access token stored at ``path`` (created 0600 on first use); returns (token, created)."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"web token file {path} is readable by others (mode {mode:o}); chmod 600 it")
        token = path.read_text().strip()
        if len(token) < 32:
            raise ConfigError(f"web token file {path} holds no valid token; delete it to make a new one")
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """Host headers accepted: what the browser sends for our own address (stops DNS rebinding)."""
    names = {host, "localhost", "127.0.0.1", "[::1]"} if is_loopback(host) else {host}
    return frozenset(f"{n}:{port}" for n in names) | frozenset(names if port == 80 else ())


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
