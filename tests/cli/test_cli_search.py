"""`chainrule search` as a user runs it: the table, the train command, resuming, Ctrl-C."""

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from chainrule.cli import build_parser, main
from chainrule.cli import searching as search_cli

# Small trials: a 784-10-10 network on mnist-5k's 3,200 training images less validation.
SMALL = ["--hidden", "10", "--layers", "1"]
SEARCH = [sys.executable, "-m", "chainrule", "search", *SMALL]


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def start_search(results, *extra, **popen):
    return subprocess.Popen(
        [*SEARCH, "--results", str(results), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_search_prints_a_ranked_table_and_the_best_trials_train_command(tmp_path, capsys):
    results, plot = tmp_path / "results.jsonl", tmp_path / "best.png"
    args = ["search", *SMALL, "--trials", "4", "--epochs", "2", "--jobs", "1"]
    assert main([*args, "--results", str(results), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    records = read(results)
    assert sorted(r["trial"] for r in records) == [0, 1, 2, 3]
    for r in records:
        assert 1e-6 <= r["lr"] <= 1e-2 and 1e-8 <= r["weight_decay"] <= 1e-4
        assert isinstance(r["val_accuracy"], float) and len(r["val_accuracies"]) == 2
    assert "the test set is not used" in out and "3,200 train / 800 validation" in out
    best = max(records, key=lambda r: r["val_accuracy"])
    table = out.split("rank  trial")[1]
    assert table.split("\n")[1].split()[:3] == [
        "1",
        str(best["trial"]),
        f"{best['val_accuracy']:.4f}",
    ]
    command = out.split("test it with:\n")[1].splitlines()[0].strip()
    words = shlex.split(command)
    assert words[:2] == ["chainrule", "train"]
    train = build_parser().parse_args(words[1:])
    assert (train.lr, train.weight_decay, train.seed) == (
        best["lr"],
        best["weight_decay"],
        best["seed"],
    )
    assert (train.hidden, train.layers, train.epochs, train.init) == ([10], 1, 2, "he")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the same command again: nothing to run, the same table
    assert main([*args, "--results", str(results)]) == 0
    again = capsys.readouterr().out
    assert "4 of 4 trials already there" in again and "trial    0" not in again
    assert read(results) == records


def test_the_default_results_file_is_named_by_the_search(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["search", *SMALL, "--trials", "1", "--epochs", "1", "--jobs", "1", "--quiet"]) == 0
    (path,) = tmp_path.glob("search-*.jsonl")
    assert read(path)[0]["search_id"] == path.stem.removeprefix("search-")
    assert main(["search", *SMALL, "--trials", "1", "--epochs", "2", "--jobs", "1", "--quiet"]) == 0
    assert len(list(tmp_path.glob("search-*.jsonl"))) == 2  # other options, another file


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr", "1e-2..1e-6"], "argument --lr: a log-uniform range needs 0 < low <= high"),
        (["--optimizer", "sgd..adam"], "takes names, not a range"),
        (["--optimizer", "sgd,adamw"], "expected one of sgd"),
        (["--weight-decay", "0..1e-4"], "expected a positive number"),
        (["--validation", "1"], "expected a share between 0 and 1"),
        (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "not allowed with"),
        (["--plot", "curves.txt"], "use a .png, .svg or .pdf name"),
        (["--scheduler", ""], "expected a Dask scheduler's address, tcp://HOST:PORT or tls://"),
        (["--scheduler", "http://127.0.0.1:8786"], "tcp://HOST:PORT or tls://HOST:PORT"),
        (["--scheduler", "garbage://x"], "tcp://HOST:PORT or tls://HOST:PORT"),
        (["--scheduler", "tls://127.0.0.1:8786"], "give this client's certificates with"),
        (["--tls-cert", __file__], "are for --scheduler tls://"),
        (["--scheduler", "tls://127.0.0.1:1", "--tls-key", __file__], "needs all three"),
        (["--tls-key", "no-such.pem"], "no readable file 'no-such.pem'"),
        (["--seed", "-1"], "--seed: expected an integer >= 0"),
    ],
)
def test_bad_arguments_are_one_line_and_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_outputs_are_checked_and_another_searchs_file_refused_before_any_work(
    tmp_path, capsys, monkeypatch
):
    def no_data(*args):
        raise AssertionError("the data was loaded before the outputs were checked")

    monkeypatch.setattr("chainrule.cli.data.load_data", no_data)
    assert main(["search", "--results", str(tmp_path / "no" / "r.jsonl")]) == 1
    assert "the folder" in capsys.readouterr().err
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps({"search_id": "other", "trial": 0}) + "\n")
    assert main(["search", "--results", str(results)]) == 1
    err = capsys.readouterr().err
    assert "holds the trials of another search" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("path", ["/dev/null", "/dev/zero"])
def test_a_results_path_that_is_not_a_regular_file_is_refused_before_any_work(
    path, capsys, monkeypatch
):
    def no_data(*args):
        raise AssertionError("the data was loaded: trials would have run")

    monkeypatch.setattr("chainrule.cli.data.load_data", no_data)
    assert main(["search", "--results", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}: not a regular file" in err and len(err.splitlines()) == 1


def test_a_second_search_on_one_results_file_is_refused_and_the_first_goes_on(tmp_path):
    results = tmp_path / "results.jsonl"
    first = start_search(results, "--trials", "3", "--epochs", "20", "--jobs", "1")
    deadline = time.monotonic() + 120
    while "engine:" not in (line := first.stdout.readline()):  # the first holds the file
        assert line and time.monotonic() < deadline, first.communicate()
    second = subprocess.run(
        [*SEARCH, "--results", str(results), "--trials", "3", "--epochs", "20", "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1 and second.stdout == ""
    assert second.stderr.count("\n") == 1 and "in use by another search" in second.stderr
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert sorted(r["trial"] for r in read(results)) == [0, 1, 2]  # each once


def silent_listener():
    """A socket on 127.0.0.1 that accepts connections and never says anything."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    return server, accepted


def http_listener():
    """An HTTP server on 127.0.0.1 (what `python3 -m http.server` is), in a thread."""
    import http.server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("kind", ["silent", "http"])
def test_a_scheduler_that_is_no_dask_scheduler_ends_the_search_in_one_line(kind, tmp_path):
    pytest.importorskip("distributed")
    if kind == "silent":
        server, accepted = silent_listener()
        port = server.getsockname()[1]
    else:
        server = http_listener()
        port = server.server_address[1]
    # Dask's connect timeout bounds every wait: 2 s here, to keep the test short.
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*SEARCH, "--scheduler", f"tcp://127.0.0.1:{port}", "--results", str(tmp_path / "r")],
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
        )
    finally:
        if kind == "silent":
            server.close()
            for connection in accepted:
                connection.close()
        else:
            server.shutdown()
            server.server_close()
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"tcp://127.0.0.1:{port}" in done.stderr
    assert time.monotonic() - started < 60


def test_without_matplotlib_plot_fails_before_any_work(tmp_path, capsys, monkeypatch):
    real = search_cli.importlib.util.find_spec
    monkeypatch.setattr(
        search_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    results = tmp_path / "r.jsonl"
    assert main(["search", "--plot", str(tmp_path / "p.png"), "--results", str(results)]) == 1
    assert "pip install 'chainrule[plot]'" in capsys.readouterr().err
    assert not results.exists()


def test_without_dask_jobs_need_the_search_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(search_cli, "_have_dask", lambda: False)
    args = ["search", *SMALL, "--trials", "2", "--epochs", "1", "--results", str(tmp_path / "r")]
    assert main([*args, "--jobs", "2"]) == 1
    assert "pip install 'chainrule[search]'" in capsys.readouterr().err
    assert main([*args, "--quiet"]) == 0  # the default: one trial at a time, here
    assert len(read(tmp_path / "r")) == 2


def children_of(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(p) for p in handle.read().split()]
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc (Linux)")
def test_a_search_killed_midway_resumes_without_repeating_or_losing_a_trial(tmp_path):
    pytest.importorskip("distributed")
    results, trials = tmp_path / "results.jsonl", 6
    options = ["--trials", str(trials), "--epochs", "30"]
    process = start_search(results, *options, "--jobs", "2")
    deadline = time.monotonic() + 120
    while not (results.exists() and results.read_text().count("\n") >= 2):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.02)
    workers = children_of(process.pid)
    process.kill()  # SIGKILL: no chance to clean up
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    kept = results.read_text()
    first = read(results)
    assert 2 <= len(first) < trials
    deadline = time.monotonic() + 30  # the worker processes go with the search
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "worker processes outlived the search"
        time.sleep(0.1)

    # The same command continues (here in this process: the engine does not change a trial).
    done = subprocess.run(
        [*SEARCH, "--results", str(results), *options, "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} of {trials} trials already there" in done.stdout
    after = read(results)
    assert results.read_text().startswith(kept)  # the finished trials are untouched
    assert sorted(r["trial"] for r in after) == list(range(trials))  # each once
    ran_again = {r["trial"] for r in after[len(first) :]}
    assert not ran_again & {r["trial"] for r in first}


def test_ctrl_c_keeps_every_finished_trial_in_one_line(tmp_path):
    pytest.importorskip("distributed")
    results = tmp_path / "results.jsonl"
    # A new session, then SIGINT to all of it: what a terminal does on Ctrl-C.
    # Enough trials (minutes of work) that the search cannot finish before the signal.
    process = start_search(
        results, "--trials", "2000", "--epochs", "30", "--jobs", "2", start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not (results.exists() and results.read_text().count("\n") >= 1):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and str(results) in lines[0]
    kept = len(read(results))
    assert kept >= 1 and f"kept in {results}: {kept} " in lines[0]
