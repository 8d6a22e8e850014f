"""``link_header_pages`` sends the client's headers (a token) with every page: it follows a next link only on
the first request's scheme, host and port. Found by review: a next link to another host (or to http:// from an
app behind a TLS-terminating load balancer) was followed with the token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.http import SourceHttp, link_header_pages
from connector.errors import ConfigError

TOKEN = "Bearer ERP-TOKEN-4b1d"


class Server:
    """A real loopback server answering ``links[path]`` as the next link of ``path``; records what it got."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {}
        self.seen: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.seen.append((self.path, self.headers.get("Authorization")))
                body = b"[1]"
                self.send_response(200)
                if self.path in server.links:
                    self.send_header("Link", f'<{server.links[self.path]}>; rel="next"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def pair() -> Iterator[tuple[Server, Server]]:
    """The source, and another server (another port: another origin) its links may point to."""
    source, other = Server(), Server()
    yield source, other
    source.close()
    other.close()


def _client(server: Server) -> SourceHttp:
    return SourceHttp(f"{server.url}/api", what="ERP", headers={"Authorization": TOKEN})


def test_a_next_link_to_another_origin_is_refused_before_the_token_goes_there(pair: tuple[Server, Server]) -> None:
    source, other = pair
    source.links["/api/orders"] = f"{other.url}/api/orders?page=2&sig=s3cr3t"
    pages = link_header_pages(_client(source), "/orders")
    assert next(pages).json() == [1]
    with pytest.raises(ConfigError) as refused:
        next(pages)
    assert not other.seen  # the token never reached the other server
    message = str(refused.value)
    assert f"{source.url}/api/orders" in message and f"{other.url}/api/orders" in message and "not followed" in message
    assert "s3cr3t" not in message and "ERP-TOKEN" not in message


def test_another_host_name_for_the_same_machine_is_another_origin(pair: tuple[Server, Server]) -> None:
    source, _ = pair
    source.links["/api/orders"] = f"http://localhost:{source.port}/api/orders?page=2"
    with pytest.raises(ConfigError, match="another scheme, host or port"):
        list(link_header_pages(_client(source), "/orders"))
    assert len(source.seen) == 1


def test_same_origin_links_are_followed_absolute_and_relative(pair: tuple[Server, Server]) -> None:
    source, other = pair
    source.links["/api/orders"] = f"{source.url}/api/orders?page=2"
    source.links["/api/orders?page=2"] = "/api/orders?page=3"  # relative to the page it came with (RFC 8288)
    assert len(list(link_header_pages(_client(source), "/orders"))) == 3
    assert source.seen == [("/api/orders", TOKEN), ("/api/orders?page=2", TOKEN), ("/api/orders?page=3", TOKEN)]
    assert not other.seen
