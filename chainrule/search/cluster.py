"""A Dask cluster to run trials on: its address, the user's certificates, the client.

:func:`dask_client` gives a client of worker processes on this machine (behind TLS) or of
a scheduler's workers anywhere; :func:`check_workers` checks the workers run this
chainrule. Every wait on a scheduler is bounded (:func:`answer_seconds`, :func:`_within`).
Dask (the ``search`` extra) is imported only inside these functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chainrule.errors import ArgumentError, SearchError
from chainrule.search.records import _short

__all__ = [
    "TLSFiles",
    "answer_seconds",
    "check_workers",
    "dask_client",
    "scheduler_address",
    "tls_configured",
]


_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


def scheduler_address(text: str) -> str:
    """``text`` as the address of a Dask scheduler, ``tcp://HOST:PORT`` or
    ``tls://HOST:PORT``; ArgumentError for anything else (empty, ``http://``, no port)."""
    match = _ADDRESS.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not 0 < int(match[3]) < 65536:
        raise ArgumentError(
            f"expected a Dask scheduler's address, tcp://HOST:PORT or tls://HOST:PORT, "
            f"got {_short(text)}"
        )
    return text.strip()


@dataclass(frozen=True)
class TLSFiles:
    """The user's certificates for a ``tls://`` scheduler (PEM files, as ``dask scheduler
    --tls-ca-file --tls-cert --tls-key`` takes them): the authority that signed the
    cluster's certificates, this client's certificate and its private key."""

    ca_file: str
    cert: str
    key: str


def tls_configured() -> bool:
    """Whether Dask's own configuration names a client certificate and its authority."""
    import dask

    return all(
        dask.config.get(f"distributed.comm.tls.{name}", None) for name in ("ca-file", "client.cert")
    )


def _scheduler_security(scheduler: str, tls: TLSFiles | None) -> Any:
    """The ``distributed.Security`` to reach ``scheduler`` with: the user's certificates
    for ``tls://`` (given, or in Dask's configuration), none for ``tcp://``."""
    from distributed.security import Security

    if scheduler.startswith("tcp://"):
        if tls is not None:
            raise ArgumentError(f"TLS certificates are for a tls:// scheduler, not {scheduler}")
        return Security()
    if tls is not None:
        return Security(
            tls_ca_file=tls.ca_file,
            tls_client_cert=tls.cert,
            tls_client_key=tls.key,
            require_encryption=True,
        )
    if not tls_configured():
        raise ArgumentError(
            f"{scheduler}: a tls:// scheduler needs this client's certificates (--tls-ca-file, "
            "--tls-cert, --tls-key, or Dask's distributed.comm.tls configuration)"
        )
    return Security(require_encryption=True)


def answer_seconds() -> float:
    """How long the scheduler may take to answer anything: Dask's
    ``distributed.comm.timeouts.connect`` (``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``)."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))


def _within(seconds: float, what: str, call: Callable[[], Any], hint: str = "") -> Any:
    """``call()``, or SearchError (``what`` did not answer, and the ``hint``) if it has not
    returned after ``seconds``.

    Dask bounds its connection attempts, but not every wait after them: the handshake of a
    listener that accepts and never answers (no Dask scheduler at all) or a call to a
    scheduler that stopped answering would wait forever. The call runs in a daemon thread,
    left behind if it never returns."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="chainrule-search-wait", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise SearchError(f"{what} did not answer within {seconds:g} s{hint}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextlib.contextmanager
def dask_client(
    jobs: int | None = None,
    scheduler: str | None = None,
    *,
    tls: TLSFiles | None = None,
    logs: bool = False,
) -> Iterator[Any]:
    """A Dask ``distributed.Client``: of ``jobs`` single-threaded worker processes on this
    machine, or of the cluster whose scheduler listens at ``scheduler`` (``tcp://HOST:PORT``,
    or ``tls://HOST:PORT`` with ``tls``, the user's certificates). Closed on exit.

    The local cluster listens on 127.0.0.1 only, and speaks TLS with a key and certificate
    made for it alone, in memory (``Security.temporary()``): a process that does not hold
    them (another user's) cannot connect to its scheduler, workers or nannies, so cannot run
    code as the workers' user. Loopback alone is no boundary on a shared machine. A
    scheduler of your own that speaks plain ``tcp://`` runs code for anyone who can reach
    its port.

    The local workers are started with Ctrl-C ignored: the terminal sends it to every
    process of the command, and it is the search's to handle (it keeps the finished
    trials and closes the cluster), not each worker's to print a traceback for. They run
    without a dashboard (their HTTP servers answer health checks only), without Dask's
    statistical profiler, which would sample each trial's stack every 10 ms for no one to
    read, and without the ``MALLOC_TRIM_THRESHOLD_=65536`` that Dask's nanny gives its
    workers: it stops glibc from adapting its mmap threshold, so each of a step's arrays
    of more than 128 KB is mapped and unmapped anew, page faults and all.

    Every wait on a ``scheduler`` is bounded by :func:`answer_seconds` (SearchError).
    Dask's own log messages (a lost scheduler logs a traceback, say) are silenced in this
    process unless ``logs``: what goes wrong reaches the caller as an exception.
    """
    if (jobs is None) == (scheduler is None):
        raise ArgumentError("give exactly one of jobs and scheduler")
    import distributed  # noqa: F401  (its loggers must exist before they are silenced)

    with contextlib.ExitStack() as stack:
        if not logs:
            stack.enter_context(_dask_logs_silenced())
        if scheduler is not None:
            client = _scheduler_client(scheduler_address(scheduler), tls)
        else:
            if tls is not None:
                raise ArgumentError(
                    "TLS certificates are for a scheduler; a local cluster makes its own"
                )
            client = _local_client(jobs, stack)
        yield stack.enter_context(client)


def _scheduler_client(scheduler: str, tls: TLSFiles | None) -> Any:
    from distributed import Client

    security = _scheduler_security(scheduler, tls)
    seconds = answer_seconds()
    try:
        return _within(
            seconds,
            f"the Dask scheduler at {scheduler}",
            lambda: Client(scheduler, timeout=seconds, security=security, set_as_default=False),
            " (is it a Dask scheduler? distributed.comm.timeouts.connect sets the wait)",
        )
    except OSError as error:  # refused, timed out, a TLS handshake that failed
        raise SearchError(
            f"could not connect to the Dask scheduler at {scheduler}: {error}"
        ) from None


def _local_client(jobs: int, stack: contextlib.ExitStack) -> Any:
    import logging

    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    if importlib.util.find_spec("cryptography") is None:
        raise SearchError(
            "a local cluster speaks TLS, whose certificate needs the cryptography package: "
            "pip install 'chainrule[search]'"
        )
    settings = {
        "distributed.worker.profile.enabled": False,
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,  # unset
        "distributed.scheduler.http.routes": ["distributed.http.health"],
        "distributed.worker.http.routes": ["distributed.http.health"],
    }
    with _sigint_ignored(), dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=Security.temporary(),
            dashboard_address=None,
            # The scheduler serves HTTP (health checks) even without a dashboard, by
            # default on port 8787, which another cluster may hold: any free port, and on
            # the loopback interface only, as everything here.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,
        )
    stack.enter_context(cluster)
    return Client(cluster, set_as_default=False)  # with the cluster's certificate


@contextlib.contextmanager
def _dask_logs_silenced() -> Iterator[None]:
    """Dask's loggers in this process (``distributed`` and those below it, some of which
    Dask gives levels of their own) show nothing while the block runs."""
    import logging

    names = ["distributed"] + [
        n for n in logging.Logger.manager.loggerDict if n.startswith("distributed.")
    ]
    loggers = [logging.getLogger(n) for n in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the block starts processes (they inherit it), then restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _chainrule_version() -> str:
    import chainrule

    return chainrule.__version__


def check_workers(client: Any) -> int:
    """The number of threads the cluster's workers have in all (trials run side by side);
    SearchError if there is no worker, one cannot import this chainrule version, or the
    scheduler does not answer within :func:`answer_seconds`."""
    import chainrule

    seconds = answer_seconds()
    try:
        versions = _within(
            seconds,
            "the cluster's workers",
            lambda: client.run(_chainrule_version, on_error="return"),
        )
    except SearchError:
        raise
    except Exception as error:  # the workers' errors come back as values; this is the call's
        raise SearchError(f"could not reach the cluster's workers: {error}") from None
    if not versions:
        raise SearchError("the cluster has no workers: start some with 'dask worker ADDRESS'")
    for worker, version in sorted(versions.items()):
        if version != chainrule.__version__:
            found = version if isinstance(version, str) else f"no chainrule ({_short(version)})"
            raise SearchError(
                f"worker {worker} has {found}, this search chainrule {chainrule.__version__}: "
                "install the same chainrule on every worker"
            )
    info = _within(seconds, "the Dask scheduler", client.scheduler_info)
    return sum(w["nthreads"] for w in info["workers"].values())
