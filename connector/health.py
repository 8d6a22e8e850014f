"""``/healthz`` (process alive), ``/readyz`` (config loaded, state writable, sources not failing for too
long) and ``/metrics`` on a small stdlib HTTP server in a thread: no framework for three GET routes."""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from connector.errors import ConfigError
from connector.settings import ENV_PREFIX

__all__ = ["HealthServer", "listen_error"]


class _IPv6Server(ThreadingHTTPServer):
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
        server = _IPv6Server if _is_ipv6(host) else ThreadingHTTPServer
        self.httpd = server((host, port), handler)
        self.httpd.daemon_threads = True
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
        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b'{"status":"ok"}', "application/json")
            elif path == "/readyz":
                ok, detail = ready()
                self._send(200 if ok else 503, json.dumps({"ready": ok, **detail}).encode(), "application/json")
            elif path == "/metrics":
                self._send(200, metrics(), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:  # quiet: probes every few seconds are not news
            return

    return Handler
