"""chainrule.search: the book's sampling, the validation split, the results file, trials."""

import json
import math

import numpy as np
import pytest

from chainrule.cli.training import network_and_optimizer
from chainrule.data import load_mnist
from chainrule.errors import DataError, ShapeError
from chainrule.search import (
    BOOK_SPACE,
    Choice,
    LogUniform,
    Search,
    append_result,
    rank,
    read_results,
    run_search,
    run_trial,
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
    return {"search_id": search_id, "trial": trial, "val_accuracy": accuracy}


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
    append_result(path, {**record(0, 0.5, theirs.id), "search": theirs.describe()})
    with pytest.raises(DataError, match=r"another search .*epochs 5 there, 3 here"):
        read_results(path, ours)
    assert read_results(path, theirs)[0]["trial"] == 0
    path.write_text('{"trial": 0}\nnot json\n{"trial": 1}\n')
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
    import chainrule.search

    seen = []

    def spy(network, optimizer, x_train, t_train, x_val, t_val, **options):
        seen.extend([x_train, t_train, x_val, t_val])
        return fit(network, optimizer, x_train, t_train, x_val, t_val, **options)

    fit = chainrule.search.fit
    monkeypatch.setattr(chainrule.search, "fit", spy)
    settings = Search(TINY, epochs=1).trial(0)
    odd = tuple(tuple(misaligned(a) for a in pair) for pair in data)
    result = run_trial(settings, odd, network_and_optimizer)
    assert all(a.flags.aligned and a.flags.c_contiguous for a in seen)
    assert (
        result["val_accuracies"]
        == run_trial(settings, data, network_and_optimizer)["val_accuracies"]
    )
