"""Fixtures of the notification tests: a fake HTTP server on 127.0.0.1 and swappable channels."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shouhu.notify import channels as channels_module
from shouhu.notify.models import Notification


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeServer:
    """A local HTTP server in a thread. `answer(seen) -> (status, json)` decides each response."""

    answer: Callable[[Seen], tuple[int, Any]]
    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    dict(self.headers),
                    json.loads(raw) if raw else None,
                )
                server.seen.append(seen)
                status, payload = server.answer(seen)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    """A port nobody listens on (for a gateway that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(answer: Callable[[Seen], tuple[int, Any]], port: int = 0) -> FakeServer:
        server = FakeServer(answer=answer, port=port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


class RecordingChannel(channels_module.Channel):
    """Records what it sends; `fail` makes the next sends raise."""

    def __init__(self, name: str = "fake", *, fail: Exception | None = None, address: str = "addr") -> None:
        self.name = name  # type: ignore[misc]
        self.fail = fail
        self.address = address
        self.sent: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def address_for(self, user: Any) -> str:
        return self.address

    def send(self, address: str, notification: Notification) -> None:
        if self.fail is not None:
            raise self.fail
        with self.lock:
            self.sent.append((address, notification.pk))


@pytest.fixture
def use_channels(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, channels_module.Channel]]:
    """Replace the enabled channels (settings and environment) with the given instances."""

    def use(*instances: channels_module.Channel) -> dict[str, channels_module.Channel]:
        enabled = {c.name: c for c in instances}
        monkeypatch.setattr(channels_module, "enabled_channels", lambda: enabled)
        return enabled

    return use
