"""The fake Alpaca Trading API over HTTP, with request counts and fault injection.

A stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port), HTTP/1.1
keep-alive like the real endpoint. Faults, by request number, by a queued
rule (method/path, ``times``) or at a seeded random rate:

- ``"429"``: rate limited, plain-text body and ``Retry-After``;
- ``"500"``: JSON error; ``"503"``/``"504"``: an HTML gateway page, request not applied;
- ``"504_after"``: the request IS applied (an order recorded), then a 504 page;
- ``"slow"``: sleeps ``slow_seconds`` before handling (beyond the client timeout);
- ``"drop"``: the connection is closed without an answer, request not applied;
- ``"drop_after"``: applied, then the connection is closed without an answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fake_alpaca.faults import Fault, FaultPlan
from tests.fake_alpaca.state import ApiError, FakeAlpacaState

GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    n: int
    method: str
    path: str
    template: str
    status: int | None
    fault: str | None


@dataclass(frozen=True)
class JsonResponse:
    """A JSON body the server sent, for the OpenAPI check."""

    method: str
    template: str
    status: int
    body: Any


Handler = Callable[[dict[str, str], dict[str, str], Any], tuple[int, Any]]


class FakeAlpaca:
    """Start with :meth:`start` (or ``with``); ``base_url`` is what the client needs."""

    def __init__(
        self,
        *,
        api_key: str = "fake-key-id",
        secret_key: str = "fake-secret",
        state: FakeAlpacaState | None = None,
        slow_seconds: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.state = state or FakeAlpacaState()
        self.slow_seconds = slow_seconds
        self.counts: Counter[tuple[str, str]] = Counter()
        self.log: list[Recorded] = []
        self.responses: list[JsonResponse] = []
        self.internal_errors: list[str] = []
        self._lock = threading.Lock()
        self._n = 0
        self.faults = FaultPlan(seed)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes = self._build_routes()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeAlpaca:
        handler = type("FakeAlpacaHandler", (_Handler,), {"fake": self})
        server = _QuietServer(("127.0.0.1", 0), handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-alpaca"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ----------------------------------------------------------------- counts

    def count(self, method: str, template: str) -> int:
        with self._lock:
            return self.counts[(method.upper(), template)]

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()

    # ----------------------------------------------------------------- faults

    def inject(self, kind: str, **kwargs: Any) -> None:
        """See :meth:`FaultPlan.inject`."""
        self.faults.inject(kind, **kwargs)

    def inject_at(self, n: int, kind: str, **kwargs: Any) -> None:
        """See :meth:`FaultPlan.inject_at`."""
        self.faults.inject_at(n, kind, **kwargs)

    def fault_rate(self, rate: float, *args: Any, **kwargs: Any) -> None:
        """See :meth:`FaultPlan.fault_rate`."""
        self.faults.fault_rate(rate, *args, **kwargs)

    # ----------------------------------------------------------------- routes

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], str, Handler]]:
        st = self.state

        def orders_list(_: dict[str, str], q: dict[str, str], __: Any) -> tuple[int, Any]:
            if q.get("status", "open") != "open":
                raise ApiError(422, 40010000, "the fake serves status=open only")
            found = st.open_orders(
                limit=int(q.get("limit", "50")),
                direction=q.get("direction", "desc"),
                until=_when(q.get("until")),
                after=_when(q.get("after")),
                symbols=set(q["symbols"].split(",")) if q.get("symbols") else None,
            )
            return 200, [o.to_json() for o in found]

        def cancel(p: dict[str, str], _: dict[str, str], __: Any) -> tuple[int, Any]:
            st.cancel(p["order_id"])
            return 204, None

        def activities(p: dict[str, str], q: dict[str, str], __: Any) -> tuple[int, Any]:
            if p["activity_type"] != "FILL":
                return 200, []
            page = st.fills_page(
                direction=q.get("direction", "desc"),
                page_size=int(q.get("page_size", "100")),
                page_token=q.get("page_token"),
            )
            return 200, page

        def by_client(_: dict[str, str], q: dict[str, str], __: Any) -> tuple[int, Any]:
            return 200, st.get_by_client_id(q.get("client_order_id", "")).to_json()

        def latest_trades(_: dict[str, str], q: dict[str, str], __: Any) -> tuple[int, Any]:
            if st.data_forbidden:
                raise ApiError(403, 40310000, "subscription does not permit querying this data")
            symbols = [s for s in q.get("symbols", "").split(",") if s]
            return 200, {"trades": {s: st.latest_trade_json(s) for s in symbols}}

        table: list[tuple[str, str, Handler]] = [
            ("GET", "/v2/account", lambda p, q, b: (200, st.account_json())),
            ("GET", "/v2/positions", lambda p, q, b: (200, st.positions_json())),
            ("DELETE", "/v2/positions", lambda p, q, b: (207, st.close_all())),
            (
                "GET",
                "/v2/positions/{symbol_or_asset_id}",
                lambda p, q, b: (200, st.position_json(p["symbol_or_asset_id"])),
            ),
            ("GET", "/v2/orders", orders_list),
            ("POST", "/v2/orders", lambda p, q, b: (200, st.place_order(b).to_json())),
            ("GET", "/v2/orders:by_client_order_id", by_client),
            (
                "GET",
                "/v2/orders/{order_id}",
                lambda p, q, b: (200, st.get_order(p["order_id"], poll=True).to_json()),
            ),
            ("DELETE", "/v2/orders/{order_id}", cancel),
            ("GET", "/v2/clock", lambda p, q, b: (200, st.clock_json())),
            ("GET", "/v2/stocks/trades/latest", latest_trades),
            ("GET", "/v2/account/activities/{activity_type}", activities),
            (
                "GET",
                "/v2/assets/{symbol_or_asset_id}",
                lambda p, q, b: (200, st.asset_json(p["symbol_or_asset_id"])),
            ),
        ]
        routes = []
        for method, template, handler in table:
            pattern = re.escape(template)
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/:]+)", pattern)
            routes.append((method, re.compile(f"^{pattern}$"), template, handler))
        return routes

    def _route(self, method: str, path: str) -> tuple[str, Handler | None, dict[str, str]]:
        for m, pattern, template, handler in self._routes:
            match = pattern.match(path)
            if match and m == method:
                return template, handler, match.groupdict()
        return path, None, {}

    # ----------------------------------------------------------------- dispatch

    def handle(self, req: _Handler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        split = urlsplit(req.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        template, handler, params = self._route(method, split.path)
        with self._lock:
            self._n += 1
            n = self._n
            self.counts[(method, template)] += 1
            fault = self.faults.pick(n, method, template)
        kind = fault.kind if fault else None
        if kind == "slow":
            time.sleep(self.slow_seconds)
        if kind in ("429", "500", "503", "504", "drop"):
            status = self._send_fault(req, fault)
            self._record(n, method, split.path, template, status, kind)
            return
        status, body = self._answer(req, method, handler, params, query, raw)
        if kind == "504_after":
            self._send_fault(req, Fault("504"))
            self._record(n, method, split.path, template, 504, kind)
            return
        if kind == "drop_after":
            self._drop(req)
            self._record(n, method, split.path, template, None, kind)
            return
        if body is not None:
            with self._lock:
                self.responses.append(JsonResponse(method, template, status, body))
        self._record(n, method, split.path, template, status, kind)
        _send(req, status, body)

    def _answer(
        self,
        req: _Handler,
        method: str,
        handler: Handler | None,
        params: dict[str, str],
        query: dict[str, str],
        raw: bytes,
    ) -> tuple[int, Any]:
        if (
            req.headers.get("APCA-API-KEY-ID") != self.api_key
            or req.headers.get("APCA-API-SECRET-KEY") != self.secret_key
        ):
            return 401, {"code": 40110000, "message": "request is not authorized"}
        if handler is None:
            return 404, {"code": 40410000, "message": f"no route for {method} {req.path}"}
        try:
            body = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            return 400, {"code": 40010000, "message": "malformed JSON body"}
        try:
            return handler(params, query, body)
        except ApiError as err:
            return err.status, err.body
        except Exception:  # a bug in the fake: fail the test, answer like Alpaca would
            with self._lock:
                self.internal_errors.append(traceback.format_exc())
            return 500, {"code": 50010000, "message": "internal server error occurred"}

    def _send_fault(self, req: _Handler, fault: Fault | None) -> int | None:
        assert fault is not None
        if fault.kind == "drop":
            self._drop(req)
            return None
        if fault.kind == "429":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            _send(req, 429, text="rate limit exceeded", headers=headers)
            return 429
        if fault.kind == "500":
            _send(req, 500, {"code": 50010000, "message": "internal server error occurred"})
            return 500
        status = int(fault.kind)
        title = {503: "503 Service Unavailable", 504: "504 Gateway Time-out"}[status]
        _send(req, status, text=GATEWAY_PAGE.format(title), content_type="text/html")
        return status

    @staticmethod
    def _drop(req: _Handler) -> None:
        req.close_connection = True
        with contextlib.suppress(OSError):
            req.connection.shutdown(socket.SHUT_RDWR)

    def _record(
        self, n: int, method: str, path: str, template: str, status: int | None, fault: str | None
    ) -> None:
        with self._lock:
            self.log.append(Recorded(n, method, path, template, status, fault))


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _send(
    req: BaseHTTPRequestHandler,
    status: int,
    payload: Any = None,
    *,
    text: str | None = None,
    content_type: str = "application/json; charset=UTF-8",
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(payload).encode() if payload is not None else (text or "").encode()
    try:
        req.send_response(status)
        req.send_header("Content-Type", content_type if data else "text/plain")
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        if status != 204:
            req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if status != 204:
            req.wfile.write(data)
        req.wfile.flush()
    except OSError:  # the client gave up (timeout) before the answer
        req.close_connection = True


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that timed out or a dropped connection is expected here
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeAlpaca

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK
        # add ~40 ms to every answer on a kept-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.fake.handle(self, "GET")

    def do_POST(self) -> None:
        self.fake.handle(self, "POST")

    def do_DELETE(self) -> None:
        self.fake.handle(self, "DELETE")

    def do_PATCH(self) -> None:
        self.fake.handle(self, "PATCH")
