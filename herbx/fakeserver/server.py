"""The fake OpenRouter served over HTTP: ``FakeOpenRouter``, its routes and handler.

Every request to every endpoint is appended once to ``FakeOpenRouter.requests`` when it
has been answered, dropped, or abandoned at shutdown (status 0 for the last two).
Nothing is logged, so no secret can leak through the fake.
"""

import dataclasses
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from herbx.fakeserver.accounts import Key
from herbx.fakeserver.catalogue import Catalogue
from herbx.fakeserver.completions import Completions
from herbx.fakeserver.pricing import KNOWN_MODELS
from herbx.fakeserver.replies import Refused, Reply, error_reply, json_reply

API_PREFIX = "/api/v1"


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw and answered it; status 0 means no answer."""

    time: float
    method: str
    path: str
    key: str | None
    status: int
    specimen: str | None
    cost: float
    generation_id: str | None
    body_json: Any


class FakeOpenRouter(Completions):
    """A fake OpenRouter on 127.0.0.1; use as a context manager, or start and stop."""

    def __init__(
        self,
        recorded: str | Path | None = None,
        specimens: str | Path | None = None,
        *,
        port: int = 0,
        accept_any_key: bool = False,
        latency: float = 0.0,
        credits: float = 100.0,
    ) -> None:
        self.catalogue = Catalogue(
            Path(recorded) if recorded else None, Path(specimens) if specimens else None
        )
        self.port = port
        self.accept_any_key = accept_any_key
        self.latency = latency
        # Model ids that exist; set to None to accept any id with a vendor prefix.
        self.models: frozenset[str] | None = KNOWN_MODELS
        self.credits = credits
        self.provision_mode = "ok"
        self.provisioned: list[str] = []
        # New keys from POST /keys answer 401 after this many completions (None: never).
        self.provisioned_fail_after: int | None = None
        self.requests: list[RequestRecord] = []
        self._keys: dict[str, Key] = {}
        self._faults: list[list[Any]] = []
        self._generations: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        """Return the base URL that replaces https://openrouter.ai/api/v1."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> "FakeOpenRouter":
        """Bind the port and serve on a daemon thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        serve = self._server.serve_forever
        threading.Thread(target=serve, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still hanging are abandoned unanswered."""
        if self._server is not None:
            self._stopping.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenRouter":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _dispatch(
        self, method: str, path: str, query: dict, secret: str | None, body: Any
    ) -> Reply:
        route = path.removeprefix(API_PREFIX) if path.startswith(API_PREFIX) else ""
        try:
            if (method, route) == ("POST", "/chat/completions"):
                return self._chat(secret, body)
            if method == "GET" and route in ("/key", "/auth/key"):
                key = self._auth(secret)
                flags = {"is_free_tier": False, "is_management_key": key.management}
                return json_reply(200, {"data": {**self._key_info(key), **flags}})
            if (method, route) == ("GET", "/generation"):
                return self._generation(secret, query.get("id", [""])[0])
            if (method, route) == ("GET", "/credits"):
                self._manager(secret)
                data = {"total_credits": self.credits, "total_usage": self.total_cost()}
                return json_reply(200, {"data": data})
            if route == "/keys" or route.startswith("/keys/"):
                self._manager(secret)
                return self._keys_api(method, route, query, body)
        except Refused as refused:
            return refused.reply
        return error_reply(404, f"No route for {method} {path}")


class _Server(ThreadingHTTPServer):
    """The HTTP server; knows its fake and keeps quiet about vanished clients."""

    fake: FakeOpenRouter

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or reset are part of the scenarios the fake serves.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP exchanges into ``FakeOpenRouter._dispatch`` calls and records them."""

    # HTTP/1.0 closes each connection after its answer, so no idle keep-alive socket
    # can outlive a stopped fake and a dropped request always reaches a new socket.
    protocol_version = "HTTP/1.0"
    server_version = "FakeOpenRouter/1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Silent on purpose: tests grep the output of runs for leaked secrets.
        pass

    def _serve(self) -> None:
        started, fake = time.time(), self.server.fake
        length = self.headers.get("Content-Length", "0")
        raw = self.rfile.read(int(length)) if length.isdigit() else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # every endpoint that needs a body answers 400 to None
        auth = self.headers.get("Authorization", "")
        secret = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None
        url = urlsplit(self.path)

        reply = fake._dispatch(
            self.command, url.path, parse_qs(url.query), secret, body
        )
        status = 0 if reply.drop else reply.status
        record = RequestRecord(
            time=started,
            method=self.command,
            path=url.path,
            key=secret,
            status=status,
            specimen=reply.specimen,
            cost=reply.cost,
            generation_id=reply.generation_id,
            body_json=body,
        )
        with fake._lock:
            fake.requests.append(record)
        if reply.drop:
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up (a timeout during a hang): no one to tell

    do_GET = do_POST = do_PATCH = do_DELETE = _serve
