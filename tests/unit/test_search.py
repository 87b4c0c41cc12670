"""chainrule.search: the book's sampling, the validation split, the results file, trials."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from chainrule.cli.recipes import network_and_optimizer
from chainrule.data import load_mnist
from chainrule.errors import ArgumentError, DataError, ShapeError
from chainrule.search import (
    BOOK_SPACE,
    Choice,
    LogUniform,
    Search,
    append_result,
    rank,
    read_results,
    results_lock,
    run_search,
    run_trial,
    scheduler_address,
    split_validation,
)

TINY = {**BOOK_SPACE, "hidden": 10, "layers": 1, "init": "he", "batch_size": 100}


@pytest.fixture(scope="module")
def data():
    """The book's split of a slice of mnist-5k's training images (the test set unused)."""
    (x, t), _ = load_mnist(normalize=True)
    return split_validation(x[:1000], t[:1000], 0.2, seed=0)


def test_log_uniform_draws_each_power_of_ten_equally_as_the_book_does():
    rng = np.random.default_rng(0)
    draws = np.array([LogUniform(1e-6, 1e-2).sample(rng) for _ in range(8000)])
    assert draws.min() >= 1e-6 and draws.max() <= 1e-2
    decades = np.histogram(np.log10(draws), bins=[-6, -5, -4, -3, -2])[0] / len(draws)
    assert np.allclose(decades, 0.25, atol=0.03)  # 10**U(-6, -2): a quarter per decade


def test_integer_ranges_and_choices():
    rng = np.random.default_rng(1)
    widths = {LogUniform(16, 256, integer=True).sample(rng) for _ in range(500)}
    assert all(isinstance(w, int) and 16 <= w <= 256 for w in widths) and len(widths) > 50
    assert {Choice(("sgd", "adam")).sample(rng) for _ in range(50)} == {"sgd", "adam"}
    assert str(LogUniform(1e-6, 0.01)) == "1e-06..0.01" and str(Choice((32, 64))) == "32,64"
    for low, high in ((0, 1), (1, 0.5), (-1, 1), (1, math.inf)):
        with pytest.raises(ValueError, match="log-uniform"):
            LogUniform(low, high)
    with pytest.raises(ValueError, match="no integer"):
        LogUniform(1.2, 1.8, integer=True)


def test_a_trial_is_a_pure_function_of_the_seed_and_its_number():
    search = Search(TINY, epochs=3, seed=7)
    trials = [search.trial(n) for n in range(20)]
    assert [search.trial(n) for n in reversed(range(20))][::-1] == trials  # any order
    assert Search(dict(reversed(TINY.items())), epochs=3, seed=7).trial(4) == trials[4]
    assert len({t["seed"] for t in trials}) == 20 and len({t["lr"] for t in trials}) == 20
    assert Search(TINY, epochs=3, seed=8).trial(4) != trials[4]
    assert trials[0]["hidden"] == 10 and trials[0]["epochs"] == 3
    assert trials[0]["dataset"] == "mnist-5k"
    assert all(1e-6 <= t["lr"] <= 1e-2 and 1e-8 <= t["weight_decay"] <= 1e-4 for t in trials)
    assert search.searched() == ["lr", "weight_decay"]


def test_the_search_id_names_everything_that_changes_a_trial_and_not_the_trial_count():
    base = Search(TINY, epochs=3)
    assert base.id == Search(dict(TINY), epochs=3).id
    others = [
        Search(TINY, epochs=4),
        Search(TINY, epochs=3, seed=1),
        Search(TINY, epochs=3, validation=0.1),
        Search(TINY, epochs=3, dataset="mnist"),
        Search({**TINY, "lr": LogUniform(1e-5, 1e-2)}, epochs=3),
        Search({**TINY, "hidden": 20}, epochs=3),
    ]
    assert len({base.id, *(s.id for s in others)}) == 1 + len(others)
    with pytest.raises(ValueError, match="epochs"):
        Search({**TINY, "epochs": 3}, epochs=3)


def test_the_validation_split_holds_out_the_books_share_of_the_training_data():
    x = np.arange(1000, dtype=np.float32).reshape(500, 2)
    t = np.arange(500)
    (x_train, t_train), (x_val, t_val) = split_validation(x, t, 0.2, seed=3)
    assert len(x_val) == 100 and len(x_train) == 400  # int(500 * 0.2), as the book's
    assert sorted(np.concatenate([t_train, t_val])) == list(range(500))  # disjoint, complete
    assert np.array_equal(x_val[:, 0] // 2, t_val)  # samples keep their labels
    assert not np.array_equal(t_val, np.arange(100))  # drawn at random, not the first 100
    assert np.array_equal(split_validation(x, t, 0.2, seed=3)[1][1], t_val)
    assert not np.array_equal(split_validation(x, t, 0.2, seed=4)[1][1], t_val)
    with pytest.raises(ShapeError, match="no validation"):
        split_validation(x[:3], t[:3], 0.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_validation(x, t, 1.0)


def record(trial, accuracy, search_id="abc"):
    """A record as run_search writes one (of a trial that diverged if ``accuracy`` is None)."""
    curve = [] if accuracy is None else [accuracy]
    return {
        "search_id": search_id,
        "trial": trial,
        "dataset": "mnist-5k",
        "seed": 5,
        "epochs": 1,
        "val_accuracy": accuracy,
        "val_loss": None if accuracy is None else 1.5,
        "train_accuracy": accuracy,
        "val_accuracies": curve,
        "train_accuracies": curve,
        "diverged": "loss became nan" if accuracy is None else None,
        "seconds": 2.5,
    }


def trial_record(search, trial, accuracy):
    """The record of ``search``'s trial ``trial``, as run_search writes it."""
    return {
        **record(trial, accuracy, search.id),
        **search.trial(trial),
        "search": search.describe(),
    }


def test_results_file_round_trip_and_ranking(tmp_path):
    path = tmp_path / "results.jsonl"
    assert read_results(path) == []
    written = [record(0, 0.5), record(1, None), record(2, 0.9), record(3, 0.5)]
    for r in written:
        append_result(path, r)
    assert read_results(path) == written
    assert [r["trial"] for r in rank(written)] == [2, 0, 3, 1]  # ties by trial, diverged last
    assert path.read_text().count("\n") == 4


def test_a_line_cut_short_by_a_crash_is_skipped_then_replaced(tmp_path):
    path = tmp_path / "results.jsonl"
    append_result(path, record(0, 0.5))
    with open(path, "a") as handle:
        handle.write('{"search_id": "abc", "trial": 1, "val_acc')  # a machine crashed here
    assert [r["trial"] for r in read_results(path)] == [0]
    append_result(path, record(1, 0.6))
    assert [r["trial"] for r in read_results(path)] == [0, 1]
    assert path.read_text().count("\n") == 2
    # a complete record that lacks its newline (written by hand) is kept
    with open(path, "a") as handle:
        handle.write(json.dumps(record(2, 0.7)))
    append_result(path, record(3, 0.8))
    assert [r["trial"] for r in read_results(path)] == [0, 1, 2, 3]


def test_a_file_of_another_search_or_of_garbage_is_refused(tmp_path):
    path = tmp_path / "results.jsonl"
    ours, theirs = Search(TINY, epochs=3), Search(TINY, epochs=5)
    append_result(path, trial_record(theirs, 0, 0.5))
    with pytest.raises(DataError, match=r"another search .*epochs 5 there, 3 here"):
        read_results(path, ours)
    assert read_results(path, theirs)[0]["trial"] == 0
    path.write_text(json.dumps(record(0, 0.5)) + '\nnot json\n{"trial": 1}\n')
    with pytest.raises(DataError, match="line 2: not a JSON record"):
        read_results(path)
    path.write_text('["a list"]\n')
    with pytest.raises(DataError, match="line 1: not a trial record"):
        read_results(path)


def test_a_trial_is_reproducible_from_its_settings(data):
    settings = Search(TINY, epochs=2, seed=0).trial(3)
    first = run_trial(settings, data, network_and_optimizer)
    again = run_trial(settings, data, network_and_optimizer)
    timing = ("seconds", "host", "worker")
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in again.items() if k not in timing
    }
    assert first["val_accuracy"] == first["val_accuracies"][-1]
    assert len(first["val_accuracies"]) == len(first["train_accuracies"]) == 2
    assert first["lr"] == settings["lr"] and first["diverged"] is None
    json.dumps(first, allow_nan=False)


def test_a_diverging_trial_is_recorded_not_raised(data, tmp_path):
    settings = {**Search(TINY, epochs=2).trial(0), "lr": 1e6, "weight_decay": 1e3}
    result = run_trial(settings, data, network_and_optimizer)
    assert result["val_accuracy"] is None and "loss became" in result["diverged"]
    append_result(tmp_path / "r.jsonl", {"trial": 0, **result})  # valid JSON: no NaN


def test_run_search_runs_only_the_trials_not_in_the_file(data, tmp_path):
    search, path = Search(TINY, epochs=1, seed=2), tmp_path / "results.jsonl"
    seen = []
    first = run_search(search, 3, data, network_and_optimizer, path, on_trial=seen.append)
    assert sorted(r["trial"] for r in first) == [0, 1, 2] == [r["trial"] for r in seen]
    assert first == rank(first)
    kept = path.read_text()
    seen.clear()
    second = run_search(search, 5, data, network_and_optimizer, path, on_trial=seen.append)
    assert [r["trial"] for r in seen] == [3, 4]  # the first three are not run again
    assert path.read_text().startswith(kept)
    assert sorted(r["trial"] for r in second) == list(range(5))
    assert all(r["search_id"] == search.id and r["search"] == search.describe() for r in second)


def misaligned(a):
    """A copy of ``a`` that starts one byte past an aligned address (as arrays a Dask worker
    receives may)."""
    raw = np.empty(a.nbytes + 1, np.uint8)[1:]
    copy = raw.view(a.dtype).reshape(a.shape)
    copy[...] = a
    assert not copy.flags.aligned
    return copy


def test_a_trial_copies_misaligned_data_to_aligned_memory(data, monkeypatch):
    import chainrule.search.trial

    seen = []

    def spy(network, optimizer, x_train, t_train, x_val, t_val, **options):
        seen.extend([x_train, t_train, x_val, t_val])
        return fit(network, optimizer, x_train, t_train, x_val, t_val, **options)

    fit = chainrule.search.trial.fit
    monkeypatch.setattr(chainrule.search.trial, "fit", spy)
    settings = Search(TINY, epochs=1).trial(0)
    odd = tuple(tuple(misaligned(a) for a in pair) for pair in data)
    result = run_trial(settings, odd, network_and_optimizer)
    assert len(seen) == 4  # the spy ran: run_trial looks fit up in chainrule.search.trial
    assert all(a.flags.aligned and a.flags.c_contiguous for a in seen)
    assert (
        result["val_accuracies"]
        == run_trial(settings, data, network_and_optimizer)["val_accuracies"]
    )


def test_bad_arguments_raise_the_projects_argument_error():
    cases = [
        lambda: LogUniform(0, 1),
        lambda: Choice(()),
        lambda: Search(TINY, epochs=0),
        lambda: Search(TINY, epochs=1, validation=1.5),
        lambda: split_validation(np.zeros((10, 2)), np.zeros(10), 1.0),
        lambda: scheduler_address("http://127.0.0.1:8786"),
    ]
    for case in cases:
        with pytest.raises(ArgumentError):
            case()


@pytest.mark.parametrize(
    "address",
    [
        "",
        " ",
        "http://127.0.0.1:8786",
        "garbage://x",
        "tcp://127.0.0.1",
        "tcp://:8786",
        "tcp://127.0.0.1:0",
        "tcp://127.0.0.1:70000",
        "127.0.0.1:8786",
        "tls://h:1 extra",
    ],
)
def test_a_scheduler_address_is_tcp_or_tls_with_a_host_and_a_port(address):
    with pytest.raises(ArgumentError, match="tcp://HOST:PORT or tls://HOST:PORT"):
        scheduler_address(address)


def test_scheduler_addresses_that_dask_can_reach_are_kept():
    for address in ("tcp://127.0.0.1:8786", "tls://node-1.example:1", "tcp://[::1]:8786"):
        assert scheduler_address(address) == address


GOOD = Search(TINY, epochs=1, seed=4)
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "line, message",
    [
        ({"val_accuracy": ...}, "trial 1 has no val_accuracy"),
        ({"val_accuracy": "high"}, 'trial 1\'s val_accuracy is "high", not null or a number'),
        ({"val_accuracy": 1.5}, "trial 1's val_accuracy is 1.5"),
        ({"seconds": -1}, "trial 1's seconds is -1"),
        ({"val_accuracies": "abc"}, 'trial 1\'s val_accuracies is "abc", not a list'),
        ({"val_accuracies": [0.5, 0.6]}, "2 validation accuracies but 1 training ones"),
        ({"trial": True}, "not a trial record"),
        ({"lr": 0.5}, "trial 1's lr is 0.5, but this search's trial 1 has "),
        ({"hidden": 10.0}, "trial 1's hidden is 10.0, but this search's trial 1 has 10"),
        ({"search_id": "x" * 500, "search": [1]}, "another search (line 2: search xxx"),
        ({"search_id": "other", "search": {"space": [1], "epochs": {"a": 1}}}, "epochs {"),
        (DEEP, "line 2: not a JSON record"),
        ("[1, 2", "line 2: not a JSON record"),
        ("1" * 5000, "line 2: not a JSON record"),
        ("[1]", "line 2: not a trial record"),
    ],
)
def test_each_bad_record_is_refused_in_one_line_naming_its_line(tmp_path, line, message):
    path = tmp_path / "results.jsonl"
    if isinstance(line, dict):
        bad = {**trial_record(GOOD, 1, 0.5), **line}
        line = json.dumps({k: v for k, v in bad.items() if v is not ...})
    lines = [json.dumps(trial_record(GOOD, 0, 0.5)), line, json.dumps(trial_record(GOOD, 2, 0.5))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        read_results(path, GOOD)
    text = str(error.value)
    assert message in text and "line 2" in text, text
    assert "\n" not in text and len(text) < 400


def test_a_results_path_that_is_not_a_regular_file_is_refused(tmp_path):
    for path in ("/dev/zero", "/dev/null"):
        with pytest.raises(DataError, match="not a regular file"):
            read_results(path)
        with pytest.raises(DataError, match="not a regular file"), results_lock(path):
            pass
    with pytest.raises(OSError), results_lock(tmp_path):
        pass


def test_a_trial_written_twice_is_read_once(tmp_path):
    path = tmp_path / "results.jsonl"
    for trial in (0, 1, 0):
        append_result(path, trial_record(GOOD, trial, 0.5))
    assert [r["trial"] for r in read_results(path, GOOD)] == [0, 1]


def test_a_second_search_on_the_same_results_file_is_refused(tmp_path, data):
    path = tmp_path / "results.jsonl"
    with results_lock(path):
        # another process holds the file: a child process tries to take it
        script = (
            "import sys\nfrom chainrule.search import results_lock\n"
            "try:\n    with results_lock(sys.argv[1]): pass\n"
            "except Exception as error:\n    print(type(error).__name__, error)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.stdout.startswith("SearchError") and "in use by another search" in done.stdout
        with results_lock(path):  # the same process: re-entrant (the CLI and run_search)
            run_search(Search(TINY, epochs=1), 1, data, network_and_optimizer, path)
    assert len(read_results(path)) == 1
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout == ""  # released at the end


def test_the_lock_removes_the_empty_file_it_created(tmp_path):
    path = tmp_path / "results.jsonl"
    with results_lock(path):
        assert path.is_file()
    assert not path.exists()


@pytest.mark.parametrize("epochs", [1, 2, 3, 7])
def test_the_plots_epoch_axis_has_whole_epochs_only(epochs, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from chainrule.viz.search_plot import _figure, plot_search

    curve = [0.1 * (e + 1) for e in range(epochs)]
    records = [
        {**record(n, curve[-1]), "val_accuracies": curve, "train_accuracies": curve}
        for n in range(3)
    ]
    figure = _figure(records, 20, [], "")
    FigureCanvasAgg(figure).draw()  # the ticks of the laid-out panels, as saved
    for ax in figure.axes[:3]:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        if epochs == 1:  # a line of one point is invisible: its points are drawn
            assert [line.get_marker() for line in ax.get_lines()] == ["o", "o"]
    assert plot_search(records, tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
