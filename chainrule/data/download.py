"""Download one file from a list of mirrors, verified by checksum, with urllib only.

The file is streamed into a temporary file in the destination folder and renamed into
place only after its checksum matched, so a broken or tampered download never leaves a
file that looks complete. Only ``https`` URLs are fetched, except plain ``http`` to the
loopback host (127.0.0.1, localhost, ::1), which tests use for a local server.

Nothing is printed: pass ``progress(bytes_done, bytes_total_or_None)`` to show progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn, Protocol

from chainrule.errors import ArgumentError, DownloadError
from chainrule.fileio import atomic_write

__all__ = ["DEFAULT_MAX_BYTES", "LOOPBACK_HOSTS", "ProgressCallback", "download"]

#: ``progress(bytes_done, bytes_total)``; ``bytes_total`` is None when the server sent no size.
ProgressCallback = Callable[[int, int | None], None]

#: Hosts that may be reached over plain http (a local test server).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: Default size cap: far above the largest MNIST file (about 26 MB), far below a disk.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

_CHUNK = 64 * 1024
_USER_AGENT = "chainrule-data/0.1 (Python urllib)"


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


class _AttemptFailed(Exception):
    """One try at one URL failed; ``retry`` says whether the same URL may succeed later."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def _check_url(url: str) -> str | None:
    """Return why ``url`` may not be fetched, or None if it may."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme == "https" and host:
        return None
    if scheme == "http" and host in LOOPBACK_HOSTS:
        return None
    if scheme == "http":
        return f"plain http is allowed only to the loopback host, not to {host or '(no host)'}"
    return f"expected an https URL, found scheme {scheme or '(none)'!r}"


class _SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL that the same scheme/host rule allows.

    urllib would otherwise follow an https URL to plain http, or a loopback URL to any host.
    """

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        why = _check_url(newurl)
        if why is not None:
            raise _AttemptFailed(f"HTTP {code} redirect to {newurl} refused: {why}", retry=False)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(url: str) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_SafeRedirectHandler()]
    if (urllib.parse.urlsplit(url).hostname or "").lower() in LOOPBACK_HOSTS:
        # A proxy from the environment would send loopback traffic elsewhere; the local
        # server is reached directly.
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


def _new_hashers(md5: str | None, sha256: str | None) -> dict[str, _Hasher]:
    hashers: dict[str, _Hasher] = {}
    if md5 is not None:
        # md5 only identifies the published file here; it is not used for security.
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    if sha256 is not None:
        hashers["sha256"] = hashlib.sha256()
    return hashers


@contextlib.contextmanager
def _network_errors() -> Iterator[None]:
    """Turn what a network call may raise into _AttemptFailed, saying whether to retry."""
    try:
        yield
    except _AttemptFailed:
        raise
    except urllib.error.HTTPError as err:
        # 5xx and 429 are usually passing; other 4xx (404, 403) will not change on retry.
        retry = err.code >= 500 or err.code == 429
        raise _AttemptFailed(f"HTTP {err.code} {err.reason}", retry=retry) from err
    except http.client.IncompleteRead as err:
        raise _AttemptFailed(
            f"incomplete: the connection closed after {len(err.partial)} bytes of a read, "
            f"{err.expected} more were expected",
            retry=True,
        ) from err
    except urllib.error.URLError as err:
        raise _AttemptFailed(f"{err.reason}", retry=True) from err
    except (OSError, http.client.HTTPException) as err:
        # Only network calls run in this block, so an OSError here (timeout, reset,
        # refused) is the connection's, not the local disk's.
        raise _AttemptFailed(f"{type(err).__name__}: {err}", retry=True) from err


def _fetch_once(
    url: str,
    out: BinaryIO,
    hashers: dict[str, _Hasher],
    *,
    timeout: float,
    max_bytes: int,
    progress: ProgressCallback | None,
) -> None:
    """Stream ``url`` into the new file ``out`` and feed ``hashers``.

    Network failures raise _AttemptFailed; local disk errors (disk full, read-only
    folder) propagate unchanged, since no other mirror would fix them.
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with _network_errors():
        response = _opener(url).open(request, timeout=timeout)
    with response:
        total: int | None = None
        length_header = response.headers.get("Content-Length")
        if length_header is not None and length_header.strip().isdigit():
            total = int(length_header)
        if total is not None and total > max_bytes:
            raise _AttemptFailed(
                f"the server announced {total} bytes, more than the cap of {max_bytes}",
                retry=False,
            )
        done = 0
        if progress is not None:
            progress(0, total)
        while True:
            with _network_errors():
                chunk = response.read(_CHUNK)
            if not chunk:
                break
            done += len(chunk)
            if done > max_bytes:
                raise _AttemptFailed(
                    f"more than the cap of {max_bytes} bytes received", retry=False
                )
            out.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            if progress is not None:
                progress(done, total)
    if total is not None and done != total:
        raise _AttemptFailed(
            f"incomplete: expected {total} bytes (Content-Length), received {done}", retry=True
        )


def _same_digests(hashers: dict[str, _Hasher], expected: dict[str, str]) -> tuple[bool, str]:
    for algo, hasher in hashers.items():
        found = hasher.hexdigest()
        if found != expected[algo]:
            return False, f"checksum mismatch: expected {algo} {expected[algo]}, found {found}"
    return True, ""


def _file_matches(path: Path, expected: dict[str, str]) -> bool:
    hashers = _new_hashers(expected.get("md5"), expected.get("sha256"))
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            for hasher in hashers.values():
                hasher.update(chunk)
    return _same_digests(hashers, expected)[0]


def _fail(filename: str, dest_dir: Path, failures: list[str]) -> NoReturn:
    lines = "\n".join(f"  - {line}" for line in failures)
    raise DownloadError(
        f"could not download {filename} into {dest_dir}: every mirror failed.\n{lines}"
    )


def download(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    attempts_per_mirror: int = 2,
    retry_delay: float = 1.0,
) -> Path:
    """Download ``filename`` from the first mirror that serves it intact; return its path.

    Each mirror is a base URL; the file's URL is ``mirror + "/" + filename``. Mirrors are
    tried in order, each up to ``attempts_per_mirror`` times for errors that may pass
    (connection, timeout, HTTP 5xx, a cut-off body); a 4xx answer, an oversized file or
    a checksum mismatch moves on to the next mirror at once.

    If ``dest_dir / filename`` already exists with the right checksum, it is returned
    without any network access; if its checksum is wrong, it is downloaded again.

    Args:
        filename: the file's name, used in the URL and on disk; no folders.
        mirrors: base URLs, ``https://`` (or ``http://`` to 127.0.0.1, localhost, ::1).
        dest_dir: folder to save into; created if missing.
        md5, sha256: expected hex digest(s); at least one is required, both are checked
            when both are given.
        progress: called as ``progress(bytes_done, bytes_total_or_None)`` while reading.
        timeout: seconds allowed for each network operation (connect, each read).
        max_bytes: a larger file is refused, whether announced or received.
        attempts_per_mirror: tries per mirror, at least 1.
        retry_delay: seconds before the second try of a mirror, doubled for each next one.

    Returns:
        ``Path(dest_dir) / filename``, complete and verified.

    Raises:
        DownloadError: a mirror URL is not allowed (checked before any network access),
            or every mirror failed; the message lists each URL tried and why it failed.
            No new file, complete or temporary, is left in ``dest_dir`` (an existing
            file that failed its checksum is left as it was).
        ArgumentError (a ValueError): no checksum or a malformed one, a bad filename, or a
            bad numeric argument.
    """
    if md5 is None and sha256 is None:
        raise ArgumentError(f"download({filename!r}): give md5= or sha256= to verify the file")
    if not filename or filename in {".", ".."} or "/" in filename or "\\" in filename:
        raise ArgumentError(f"download: expected a plain file name, found {filename!r}")
    tries = _Tries(timeout, max_bytes, attempts_per_mirror, retry_delay, progress)
    if not mirrors:
        raise ArgumentError(f"download({filename!r}): expected at least one mirror, found none")
    expected = _expected_digests(filename, md5, sha256)
    urls = _allowed_urls(filename, mirrors)

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / filename
    if target.is_file() and _file_matches(target, expected):
        return target
    failures = _fetch_verified(urls, target, expected, tries)
    if failures:
        _fail(filename, dest, failures)
    return target


@dataclasses.dataclass(frozen=True)
class _Tries:
    """How :func:`download` tries each mirror (its arguments of the same names)."""

    timeout: float
    max_bytes: int
    attempts_per_mirror: int
    retry_delay: float
    progress: ProgressCallback | None

    def __post_init__(self) -> None:
        if self.attempts_per_mirror < 1 or self.max_bytes < 0 or self.timeout <= 0:
            raise ArgumentError(
                "download: attempts_per_mirror must be >= 1, timeout > 0, max_bytes >= 0"
            )


def _expected_digests(filename: str, md5: str | None, sha256: str | None) -> dict[str, str]:
    """The given digests by algorithm, lower-case; a malformed one is an ArgumentError."""
    expected: dict[str, str] = {}
    for algo, digest, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if digest is None:
            continue
        digest = digest.strip().lower()
        # An empty or malformed digest would otherwise match nothing, or be skipped.
        if len(digest) != length or any(c not in "0123456789abcdef" for c in digest):
            raise ArgumentError(
                f"download({filename!r}): expected {algo}= as {length} hex digits, found {digest!r}"
            )
        expected[algo] = digest
    return expected


def _allowed_urls(filename: str, mirrors: Sequence[str]) -> list[str]:
    """The file's URL on each mirror; any URL not allowed refuses them all, before any
    network access."""
    urls = [mirror.rstrip("/") + "/" + urllib.parse.quote(filename) for mirror in mirrors]
    refused = [f"{url}: {why}" for url in urls if (why := _check_url(url)) is not None]
    if refused:
        lines = "\n".join(f"  - {line}" for line in refused)
        raise DownloadError(f"refusing to download {filename}: URL not allowed.\n{lines}")
    return urls


def _fetch_verified(
    urls: list[str], target: Path, expected: dict[str, str], tries: _Tries
) -> list[str]:
    """Fetch ``target`` from the first URL that serves it intact. Return why each try
    failed: empty when one succeeded (at least one try was made, so a failure is listed)."""
    failures: list[str] = []
    for url in urls:
        for attempt in range(1, tries.attempts_per_mirror + 1):
            if attempt > 1:
                time.sleep(tries.retry_delay * 2 ** (attempt - 2))
            try:
                _fetch_and_check(url, target, expected, tries)
            except _AttemptFailed as failure:
                failures.append(f"{url} (try {attempt}/{tries.attempts_per_mirror}): {failure}")
                if failure.retry:
                    continue
                break
            return []
    return failures


def _fetch_and_check(url: str, target: Path, expected: dict[str, str], tries: _Tries) -> None:
    """One try: ``url`` into ``target``, kept only if its digests match."""
    hashers = _new_hashers(expected.get("md5"), expected.get("sha256"))
    # A failed attempt, even one that fails the checksums, leaves no file.
    with atomic_write(target) as out:
        _fetch_once(
            url,
            out,
            hashers,
            timeout=tries.timeout,
            max_bytes=tries.max_bytes,
            progress=tries.progress,
        )
        ok, why = _same_digests(hashers, expected)
        if not ok:  # the same bytes again would not help: next mirror
            raise _AttemptFailed(why, retry=False)
