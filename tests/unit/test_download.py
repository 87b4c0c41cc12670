"""The downloader against a real HTTP server on 127.0.0.1, run in a thread.

Every route the server knows is set up by the test that uses it; nothing leaves the
loopback interface (refused URLs are refused before any connection is made).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import chainrule.data.download as download_module
from chainrule.data.download import download
from chainrule.errors import DownloadError

PAYLOAD = bytes(range(256)) * 300  # 76,800 bytes: several read chunks
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
FAST = {"timeout": 2.0, "retry_delay": 0.0}


@dataclass
class Route:
    """What the server does for one path."""

    body: bytes = b""
    status: int = 200
    announce: int | None = None  # Content-Length to send; None: len(body)
    send_length: bool = True
    location: str | None = None
    delay: float = 0.0


@dataclass
class LocalServer:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    state: LocalServer  # set on a per-server subclass

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        with self.state.lock:
            self.state.hits[self.path] += 1
        route = self.state.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        if route.delay:
            time.sleep(route.delay)
        if route.location is not None:
            self.send_response(route.status)
            self.send_header("Location", route.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if route.status != 200:
            self.send_error(route.status)
            return
        self.send_response(200)
        if route.send_length:
            length = len(route.body) if route.announce is None else route.announce
            self.send_header("Content-Length", str(length))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (timeout tests)
            self.wfile.write(route.body)
        # HTTP/1.0: the connection closes after the body, so a short body stays short.


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    state = LocalServer(url=f"http://127.0.0.1:{port}")
    httpd.RequestHandlerClass = type("BoundHandler", (Handler,), {"state": state})
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/m"


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/data.bin"] = Route(PAYLOAD)
    calls: list[tuple[int, int | None]] = []
    dest = tmp_path / "new" / "folder"
    path = download(
        "data.bin",
        [server.url + "/m/"],
        dest,
        md5=MD5,
        progress=lambda done, total: calls.append((done, total)),
        **FAST,
    )
    assert path == dest / "data.bin"
    assert path.read_bytes() == PAYLOAD
    assert listing(dest) == ["data.bin"]
    assert calls[0] == (0, len(PAYLOAD))
    assert calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert len(calls) > 2  # reported while streaming, not only at the end


def test_sha256_and_both_checksums(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/a"] = Route(PAYLOAD)
    server.routes["/m/b"] = Route(PAYLOAD)
    assert download("a", [server.url + "/m"], tmp_path, sha256=SHA256, **FAST).is_file()
    assert download("b", [server.url + "/m"], tmp_path, md5=MD5, sha256=SHA256, **FAST).is_file()
    assert listing(tmp_path) == ["a", "b"]


def test_checksum_mismatch_leaves_nothing(server: LocalServer, tmp_path: Path) -> None:
    corrupt = bytearray(PAYLOAD)
    corrupt[1000] ^= 0x40
    server.routes["/m/data.bin"] = Route(bytes(corrupt))
    with pytest.raises(DownloadError) as info:
        download("data.bin", [server.url + "/m"], tmp_path, md5=MD5, **FAST)
    message = str(info.value)
    assert "checksum mismatch" in message
    assert MD5 in message
    assert hashlib.md5(bytes(corrupt)).hexdigest() in message
    assert f"{server.url}/m/data.bin" in message
    assert listing(tmp_path) == []
    assert server.hits["/m/data.bin"] == 1  # the same bytes again would not help


def test_wrong_sha256_when_md5_matches(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/x"] = Route(PAYLOAD)
    with pytest.raises(DownloadError, match="sha256"):
        download("x", [server.url + "/m"], tmp_path, md5=MD5, sha256="0" * 64, **FAST)
    assert listing(tmp_path) == []


def test_truncated_body(server: LocalServer, tmp_path: Path) -> None:
    short = PAYLOAD[:5000]
    server.routes["/m/data.bin"] = Route(short, announce=len(PAYLOAD))
    with pytest.raises(DownloadError) as info:
        download("data.bin", [server.url + "/m"], tmp_path, md5=MD5, attempts_per_mirror=2, **FAST)
    message = str(info.value)
    assert "incomplete" in message
    assert str(len(PAYLOAD)) in message
    assert str(len(short)) in message
    assert server.hits["/m/data.bin"] == 2  # a cut connection is worth a retry
    assert listing(tmp_path) == []


def test_server_error_is_retried_then_reported(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/data.bin"] = Route(status=500)
    with pytest.raises(DownloadError) as info:
        download("data.bin", [server.url + "/m"], tmp_path, md5=MD5, attempts_per_mirror=3, **FAST)
    message = str(info.value)
    assert message.count("HTTP 500") == 3
    assert "try 3/3" in message
    assert server.hits["/m/data.bin"] == 3
    assert listing(tmp_path) == []


def test_first_mirror_refused_second_good(
    server: LocalServer, refused_url: str, tmp_path: Path
) -> None:
    server.routes["/good/data.bin"] = Route(PAYLOAD)
    path = download("data.bin", [refused_url, server.url + "/good"], tmp_path, md5=MD5, **FAST)
    assert path.read_bytes() == PAYLOAD
    assert listing(tmp_path) == ["data.bin"]


def test_first_mirror_404_second_good(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/good/data.bin"] = Route(PAYLOAD)
    path = download(
        "data.bin", [server.url + "/gone", server.url + "/good"], tmp_path, md5=MD5, **FAST
    )
    assert path.read_bytes() == PAYLOAD
    assert server.hits["/gone/data.bin"] == 1  # a 404 is not retried
    assert server.hits["/good/data.bin"] == 1


def test_every_mirror_named_in_the_error(
    server: LocalServer, refused_url: str, tmp_path: Path
) -> None:
    server.routes["/broken/f.gz"] = Route(status=503)
    mirrors = [refused_url, server.url + "/gone", server.url + "/broken"]
    with pytest.raises(DownloadError) as info:
        download("f.gz", mirrors, tmp_path, md5=MD5, attempts_per_mirror=1, **FAST)
    message = str(info.value)
    assert "f.gz" in message and str(tmp_path) in message
    for mirror in mirrors:
        assert mirror + "/f.gz" in message
    assert "HTTP 404" in message and "HTTP 503" in message
    assert "refused" in message.lower()
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "mirror",
    [
        "http://example.com/mnist/",
        "http://10.0.0.1/mnist/",
        "ftp://127.0.0.1/mnist/",
        "file:///tmp/",
        "127.0.0.1/mnist/",
        "https:///no-host/",
    ],
)
def test_disallowed_urls_refused_before_any_connection(
    mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(url: str) -> None:
        raise AssertionError(f"a connection was attempted to {url}")

    monkeypatch.setattr(download_module, "_opener", no_network)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as info:
        download("f.gz", ["https://mirror.invalid/", mirror], dest, md5=MD5, **FAST)
    assert mirror.rstrip("/") + "/f.gz" in str(info.value)
    assert not dest.exists()


def test_allowed_url_rule() -> None:
    check = download_module._check_url
    assert check("https://ossci-datasets.s3.amazonaws.com/mnist/x.gz") is None
    assert check("http://127.0.0.1:8000/x") is None
    assert check("http://localhost/x") is None
    assert check("http://[::1]:9/x") is None
    assert check("HTTP://LOCALHOST/x") is None
    assert check("http://127.0.0.1.example.com/x") is not None
    assert check("http://example.com/x") is not None


def test_redirect_off_loopback_refused(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/f"] = Route(status=302, location="http://example.com/f")
    with pytest.raises(DownloadError) as info:
        download("f", [server.url + "/m"], tmp_path, md5=MD5, **FAST)
    assert "redirect" in str(info.value) and "example.com" in str(info.value)
    assert listing(tmp_path) == []


def test_redirect_within_loopback_followed(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/f"] = Route(status=301, location=server.url + "/real/f")
    server.routes["/real/f"] = Route(PAYLOAD)
    assert download("f", [server.url + "/m"], tmp_path, md5=MD5, **FAST).read_bytes() == PAYLOAD


def test_size_cap_announced(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/big"] = Route(PAYLOAD)
    with pytest.raises(DownloadError, match=f"announced {len(PAYLOAD)} bytes"):
        download("big", [server.url + "/m"], tmp_path, md5=MD5, max_bytes=1000, **FAST)
    assert server.hits["/m/big"] == 1
    assert listing(tmp_path) == []


def test_size_cap_without_content_length(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/big"] = Route(PAYLOAD, send_length=False)
    with pytest.raises(DownloadError, match="more than the cap of 1000 bytes"):
        download("big", [server.url + "/m"], tmp_path, md5=MD5, max_bytes=1000, **FAST)
    assert listing(tmp_path) == []


def test_no_content_length_still_verified(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/f"] = Route(PAYLOAD, send_length=False)
    totals: set[int | None] = set()
    path = download(
        "f", [server.url + "/m"], tmp_path, md5=MD5, progress=lambda d, t: totals.add(t), **FAST
    )
    assert path.read_bytes() == PAYLOAD
    assert totals == {None}


def test_timeout(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/slow"] = Route(PAYLOAD, delay=2.0)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        download(
            "slow",
            [server.url + "/m"],
            tmp_path,
            md5=MD5,
            timeout=0.15,
            attempts_per_mirror=1,
            retry_delay=0.0,
        )
    assert time.monotonic() - start < 1.5
    assert listing(tmp_path) == []


def test_existing_verified_file_is_not_downloaded_again(
    server: LocalServer, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(PAYLOAD)
    path = download("f", [server.url + "/m"], tmp_path, md5=MD5, **FAST)
    assert path.read_bytes() == PAYLOAD
    assert sum(server.hits.values()) == 0


def test_existing_corrupt_file_is_replaced(server: LocalServer, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"half a file")
    server.routes["/m/f"] = Route(PAYLOAD)
    assert download("f", [server.url + "/m"], tmp_path, md5=MD5, **FAST).read_bytes() == PAYLOAD
    assert listing(tmp_path) == ["f"]


def test_existing_corrupt_file_kept_when_download_fails(
    server: LocalServer, tmp_path: Path
) -> None:
    # Nothing better arrived, so the old file is not destroyed; it still fails its
    # checksum, so download() will try again next time.
    (tmp_path / "f").write_bytes(b"old")
    with pytest.raises(DownloadError):
        download("f", [server.url + "/gone"], tmp_path, md5=MD5, **FAST)
    assert (tmp_path / "f").read_bytes() == b"old"
    assert listing(tmp_path) == ["f"]


def test_progress_callback_error_propagates_and_cleans_up(
    server: LocalServer, tmp_path: Path
) -> None:
    class Stop(Exception):
        pass

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            raise Stop

    server.routes["/m/f"] = Route(PAYLOAD)
    with pytest.raises(Stop):
        download("f", [server.url + "/m"], tmp_path, md5=MD5, progress=progress, **FAST)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "..\\x"])
def test_bad_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        download(name, ["https://example.invalid/"], tmp_path, md5=MD5)


def test_a_checksum_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md5= or sha256="):
        download("f", ["https://example.invalid/"], tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [{"md5": ""}, {"md5": "abc"}, {"md5": "z" * 32}, {"sha256": MD5}, {"md5": MD5, "sha256": ""}],
)
def test_malformed_checksums(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="hex digits"):
        download("f", ["https://example.invalid/"], tmp_path, **kwargs)


def test_checksum_case_is_ignored(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/m/f"] = Route(PAYLOAD)
    path = download("f", [server.url + "/m"], tmp_path, md5=MD5.upper(), **FAST)
    assert path.read_bytes() == PAYLOAD


def test_no_mirrors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one mirror"):
        download("f", [], tmp_path, md5=MD5)


def test_bad_arguments_raise_chainrules_own_error(tmp_path):
    from chainrule.errors import ArgumentError

    with pytest.raises(ArgumentError, match="give md5= or sha256="):
        download("a.gz", ["https://example.org/"], tmp_path)
    with pytest.raises(ArgumentError, match="expected a plain file name"):
        download("../a.gz", ["https://example.org/"], tmp_path, md5="0" * 32)
