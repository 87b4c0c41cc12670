"""`chainrule search --scheduler` on a real Dask cluster: a scheduler and two worker
processes on 127.0.0.1, started here as a user would start them (with TLS certificates
for the module's cluster, plain tcp:// for the others); and the local cluster of --jobs."""

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import time

import pytest

from chainrule.cli.recipes import network_and_optimizer
from chainrule.data import load_mnist
from chainrule.search import run_trial, split_validation

distributed = pytest.importorskip("distributed")

SETTINGS = ("dataset", "seed", "epochs", "lr", "weight_decay", "activation", "batch_size")
SETTINGS += ("hidden", "init", "layers", "optimizer")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dask(*args, log):
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT
    )


def certificates(folder):
    """A key and a self-signed certificate, written as PEM files (what an administrator
    gives a cluster and its clients): the ``--tls-*`` options of dask and chainrule."""
    from distributed.security import Security

    made = Security.temporary()
    (folder / "ca.pem").write_text(made.tls_ca_file)  # self-signed: its own authority
    (folder / "cert.pem").write_text(made.tls_client_cert)
    (folder / "key.pem").write_text(made.tls_client_key)
    return [
        *("--tls-ca-file", str(folder / "ca.pem")),
        *("--tls-cert", str(folder / "cert.pem")),
        *("--tls-key", str(folder / "key.pem")),
    ]


@contextlib.contextmanager
def dask_cluster(logs, workers, tls=()):
    """``dask scheduler`` and ``workers`` ``dask worker`` processes, one thread each, all on
    127.0.0.1 (speaking TLS with the ``tls`` options of :func:`certificates`): yields the
    scheduler's address and the processes, scheduler first; stops them (then kills them,
    if need be) at the end."""
    processes = []
    security = None
    if tls:
        files = dict(zip(tls[::2], tls[1::2]))
        security = distributed.security.Security(
            tls_ca_file=files["--tls-ca-file"],
            tls_client_cert=files["--tls-cert"],
            tls_client_key=files["--tls-key"],
            require_encryption=True,
        )
    try:
        for attempt in range(3):  # the free port may be taken before the scheduler binds it
            address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{free_port()}"
            with open(logs / f"scheduler{attempt}.log", "w") as log:
                scheduler = dask(
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    address.rsplit(":", 1)[1],
                    "--no-dashboard",
                    "--dashboard-address",  # its health checks: any free loopback port
                    "127.0.0.1:0",
                    *(["--protocol", "tls", *tls] if tls else []),
                    log=log,
                )
            processes.append(scheduler)
            try:
                client = distributed.Client(
                    address, timeout="20s", security=security, set_as_default=False
                )
                break
            except OSError:
                scheduler.kill()
        else:
            pytest.fail(
                "the Dask scheduler did not start: " + (logs / "scheduler2.log").read_text()
            )
        with client:
            for number in range(workers):
                with open(logs / f"worker{number}.log", "w") as log:
                    options = ["--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", *tls]
                    processes.append(dask("worker", address, *options, log=log))
            if workers:
                client.wait_for_workers(workers, timeout=120)
        yield address, processes
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def tls_options(tmp_path_factory):
    return certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tls_options):
    """A scheduler and two worker processes for the module's tests, speaking TLS."""
    with dask_cluster(tmp_path_factory.mktemp("dask"), 2, tls_options) as (address, _):
        yield address


SEARCH = [sys.executable, "-m", "chainrule", "search"]


def search(*args):
    return subprocess.run(
        [*SEARCH, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_search_runs_on_the_cluster_with_the_same_numbers_as_here(cluster, tls_options, tmp_path):
    results = tmp_path / "results.jsonl"
    options = ["--trials", "6", "--epochs", "3", "--hidden", "10", "--layers", "1"]
    # without the certificates, the cluster is refused (by this command, and by the cluster)
    refused = search("--scheduler", cluster, *options, "--results", str(results))
    assert refused.returncode == 2 and "give this client's certificates" in refused.stderr
    done = search("--scheduler", cluster, *tls_options, *options, "--results", str(results))
    assert done.returncode == 0, done.stderr
    assert f"the Dask cluster at {cluster}, 2 trials at a time" in done.stdout
    assert done.stderr == ""
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["trial"] for r in records) == list(range(6))
    assert all(isinstance(r["val_accuracy"], float) for r in records)
    workers = {r["worker"] for r in records}
    assert len(workers) == 2 and all(w.startswith("tls://127.0.0.1:") for w in workers)
    assert "chainrule train --dataset mnist-5k --hidden 10 --layers 1" in done.stdout

    # A trial's record is a function of its settings: here, in this process, the same.
    (x, t), _ = load_mnist(normalize=True)
    data = split_validation(x, t, 0.2, seed=0)
    record = records[0]
    here = run_trial({k: record[k] for k in SETTINGS}, data, network_and_optimizer)
    assert here["val_accuracies"] == record["val_accuracies"]
    assert here["train_accuracies"] == record["train_accuracies"]


def test_a_lost_scheduler_ends_the_search_in_one_line_keeping_the_finished_trials(tmp_path):
    results = tmp_path / "results.jsonl"
    with dask_cluster(tmp_path, workers=1) as (address, processes):
        options = ["--trials", "50", "--epochs", "30", "--hidden", "10", "--layers", "1"]
        process = subprocess.Popen(
            [*SEARCH, "--scheduler", address, *options, "--results", str(results)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not (results.exists() and results.read_text().count("\n") >= 1):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no trial finished"
            time.sleep(0.02)
        processes[0].kill()  # the scheduler
        _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert err.count("\n") == 1 and "did its scheduler stop?" in err
    kept = results.read_text().splitlines()
    assert 1 <= len(kept) < 50
    assert all(isinstance(json.loads(line)["val_accuracy"], float) for line in kept)


def test_a_cluster_without_workers_is_refused(tmp_path):
    with dask_cluster(tmp_path, workers=0) as (address, _):
        done = search("--scheduler", address, "--results", str(tmp_path / "r.jsonl"))
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "the cluster has no workers: start some with 'dask worker ADDRESS'."
    )


def _worker_settings():
    import os

    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get(
        "distributed.worker.profile.enabled"
    )


def refuses_a_stranger(address):
    """Whether the server at a ``tls://`` address refuses a TLS client without a certificate
    (it cannot send a message a Dask server would act on)."""
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        try:
            with context.wrap_socket(raw) as stranger:
                stranger.sendall(b"\0" * 8)
                return stranger.recv(1) == b""
        except (ssl.SSLError, ConnectionResetError):
            return True


def http_status(port, route):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", route)
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_local_cluster_listens_on_127_0_0_1_only_speaks_tls_and_keeps_trials_fast(tmp_path):
    import os

    import psutil

    from chainrule.search import Search, dask_client, run_search

    with dask_client(jobs=2) as client:
        # Dask's nanny gives workers MALLOC_TRIM_THRESHOLD_=65536, which made each trial
        # take 30% more CPU (every array over 128 KB mapped anew); its profiler sampled
        # each trial's stack every 10 ms. Neither is wanted here.
        assert list(client.run(_worker_settings).values()) == [(None, False)] * 2
        pids = [os.getpid(), *client.run(os.getpid).values()]
        listening = [
            c.laddr
            for pid in pids
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert len(listening) >= 3  # the scheduler and each worker
        assert {address.ip for address in listening} == {"127.0.0.1"}

        # Another local user cannot run code on the workers: every Dask server of the
        # cluster speaks TLS with a certificate made for it alone.
        scheduler = client.scheduler.address
        workers = client.scheduler_info()["workers"]
        servers = [scheduler, *workers, *(w["nanny"] for w in workers.values())]
        assert len(servers) == 5 and all(a.startswith("tls://127.0.0.1:") for a in servers)
        assert all(refuses_a_stranger(address) for address in servers)
        # The HTTP servers left (health checks) tell a stranger nothing of the trials.
        dask_ports = {int(a.rsplit(":", 1)[1]) for a in servers}
        http_ports = [a.port for a in listening if a.port not in dask_ports]
        assert http_ports and all(
            http_status(port, "/health") == 200 and http_status(port, "/json/identity.json") == 404
            for port in http_ports
        )
        with pytest.raises(Exception, match="TLS certificate does not match"):
            distributed.Client(
                scheduler,
                timeout="10s",
                security=distributed.security.Security.temporary(),
                set_as_default=False,
            )
        with pytest.raises(OSError):  # plain tcp:// to the same port
            distributed.Client(
                scheduler.replace("tls://", "tcp://"), timeout="5s", set_as_default=False
            )

        # and a search runs on it, with the numbers it gives here
        (x, t), _ = load_mnist(normalize=True)
        data = split_validation(x[:600], t[:600], 0.2, seed=0)
        small = Search({"lr": 0.01, "weight_decay": 0.0, "hidden": 10, "layers": 1}, epochs=1)
        records = run_search(small, 2, data, network_and_optimizer, tmp_path / "r", client=client)
        assert {r["worker"].split(":")[0] for r in records} == {"tls"}
        here = run_trial(small.trial(0), data, network_and_optimizer)
        assert (
            next(r for r in records if r["trial"] == 0)["val_accuracies"] == here["val_accuracies"]
        )
