"""``/healthz`` (process alive), ``/readyz`` (config loaded, state writable, sources not failing for too
long) and ``/metrics`` on a small stdlib HTTP server in a thread: no framework for three GET (and HEAD) routes."""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from connector.errors import ConfigError
from connector.settings import ENV_PREFIX

__all__ = ["HealthServer", "listen_error"]


IDLE_SECONDS = 10.0  # a connection that sends no request (or no more of it) for this long is closed
MAX_CONNECTIONS = 32  # connections given a thread at once; a probe or scrape takes one for milliseconds

log = logging.getLogger(__name__)


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` of them. A client that connected and sent nothing
    held a thread and a descriptor for ever: a few hundred (from any host with ``health_host = 0.0.0.0``)
    and the sources' reads failed with "Too many open files". At the cap, the oldest connection that has not
    sent its request yet is closed to make room, so a probe is still answered while idle sockets pile up;
    when every connection is answering one, a new one is closed at once (the prober tries again)."""

    daemon_threads = True
    request_queue_size = 64  # a burst of probes waits in the kernel rather than being refused

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lock = threading.Lock()
        self._open = 0  # connections with a thread, until it ends
        self._waiting: dict[socket.socket, None] = {}  # of those, the ones yet to send a request, oldest first
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            if self._open >= MAX_CONNECTIONS and self._waiting:
                oldest = next(iter(self._waiting))
                del self._waiting[oldest]
                _hang_up(oldest)  # its thread reads the end of the stream and finishes
            if self._open >= 2 * MAX_CONNECTIONS or (self._open >= MAX_CONNECTIONS and not self._waiting):
                self.shutdown_request(request)
                return
            self._open += 1
            self._waiting[request] = None
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open -= 1
                self._waiting.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a raw traceback to stderr, outside the JSON log: a prober that gave up (its timeout
        reset the connection before the answer) is no news, anything else is a WARNING in the log."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # reset, broken pipe, a silent client
            return
        log.warning("health server: answering %s failed", client_address[0], exc_info=True)

    def answering(self, request: Any) -> None:
        """The connection sent a whole request: it is no longer one to close for room."""
        with self._lock:
            self._waiting.pop(request, None)


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # the client went already
        pass


class _IPv6Server(_BoundedServer):
    """``ThreadingHTTPServer`` speaks IPv4 only; this one listens on an IPv6 address, and on ``::`` also on
    IPv4 where the OS allows a dual-stack socket (as ``http.server``'s own command line does)."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        if self.server_address[0] == "::":
            try:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:  # an IPv6-only host or OS: listen on IPv6 alone
                pass
        super().server_bind()


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


class HealthServer:
    def __init__(self, host: str, port: int, ready: Callable[[], tuple[bool, dict]], metrics: Callable[[], bytes]) -> None:
        handler = _handler(ready, metrics)
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # "[::1]" as in a URL
        server = _IPv6Server if _is_ipv6(host) else _BoundedServer
        self.httpd = server((host, port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    """Why the health server could not listen, as a configuration error. Only a port in use is blamed on
    another program: an address not on this host, or of a family it lacks, is the host setting's fault."""
    reason = exc.strerror or str(exc)
    where = f"[daemon].health_host:health_port {host}:{port}: cannot listen for /healthz and /metrics: {reason}"
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"{where} (is another karla-connector or program using the port?); choose another with "
                           f"health_port or {ENV_PREFIX}DAEMON__HEALTH_PORT, or 0 to turn the health server off")
    return ConfigError(f"{where}; set health_host ({ENV_PREFIX}DAEMON__HEALTH_HOST) to an address of this host "
                       f"(127.0.0.1, ::1, 0.0.0.0, ::), or health_port ({ENV_PREFIX}DAEMON__HEALTH_PORT) to 0 to turn "
                       "the health server off")


def _handler(ready: Callable[[], tuple[bool, dict]], metrics: Callable[[], bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_SECONDS  # a socket timeout for every read and write: a silent client cannot hold on

        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            self._answer(with_body=True)

        def do_HEAD(self) -> None:  # noqa: N802 (stdlib name)
            """As GET without the body: uptime monitors probe with HEAD, which was answered 501."""
            self._answer(with_body=False)

        def _answer(self, with_body: bool) -> None:
            self.server.answering(self.request)  # type: ignore[attr-defined]
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b'{"status":"ok"}', "application/json", with_body)
            elif path == "/readyz":
                ok, detail = ready()
                self._send(200 if ok else 503, json.dumps({"ready": ok, **detail}).encode(), "application/json", with_body)
            elif path == "/metrics":
                self._send(200, metrics(), CONTENT_TYPE_LATEST, with_body)
            else:
                self._send(404, b'{"error":"not found"}', "application/json", with_body)

        def _send(self, status: int, body: bytes, content_type: str, with_body: bool = True) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, *_args: object) -> None:  # quiet: probes every few seconds are not news
            return

    return Handler
