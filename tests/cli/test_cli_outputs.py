"""Output paths (--plot, --save, --json, -o) are checked before any work starts."""

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.cli import main
from chainrule.fileio import atomic_write
from chainrule.viz.curves import FORMATS as PLOT_FORMATS


def usage_error(args, capsys) -> str:
    """The one line a usage error prints; fails unless the exit status is 2."""
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no training header: nothing started
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["train", "--epochs", "1", "--plot"], "c.png"),
        (["train", "--epochs", "1", "--save"], "run.npz"),
        (["train", "--epochs", "1", "--json"], "m.json"),
        (["graph", "apple", "-o"], "g.png"),
        (["show-weights", "run.npz", "-o"], "w.png"),
    ],
)
def test_a_missing_folder_is_refused_at_once_by_the_users_name(tmp_path, capsys, args, name):
    path = str(tmp_path / "nodir" / name)
    message = usage_error([*args, path], capsys)
    assert f"cannot write {path}: no folder '{tmp_path / 'nodir'}'" in message
    assert ".tmp" not in message


def test_a_folder_or_a_file_where_a_folder_should_be(tmp_path, capsys):
    assert "that is a folder" in usage_error(["train", "--save", str(tmp_path)], capsys)
    (tmp_path / "notes.txt").write_text("x")
    plot = str(tmp_path / "notes.txt" / "c.png")
    assert "is a file, not a folder" in usage_error(["train", "--plot", plot], capsys)


def test_a_read_only_folder_is_refused(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    # os.access as the OS answers it, except that ``folder`` is read-only even for root.
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: path != folder and access(path, mode))
    message = usage_error(["train", "--json", str(folder / "m.json")], capsys)
    assert f"the folder '{folder}' is not writable" in message


@pytest.mark.parametrize(
    "args", [["train", "--plot"], ["show-weights", "run.npz", "-o"]], ids=["plot", "show-weights"]
)
def test_a_picture_without_matplotlib_is_refused_before_training(
    tmp_path, capsys, monkeypatch, args
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an optional extra, not installed
    message = usage_error([*args, str(tmp_path / "c.png")], capsys)
    assert "drawing needs matplotlib, not installed (pip install 'chainrule[plot]')" in message


def test_the_plot_suffixes_in_the_error_are_the_ones_the_help_lists(tmp_path, capsys):
    message = usage_error(["train", "--plot", str(tmp_path / "c.jpg")], capsys)
    listed = ".png, .svg or .pdf"
    assert PLOT_FORMATS == ("png", "svg", "pdf")
    assert f"use a name ending in {listed}" in message
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert f"({listed})" in " ".join(capsys.readouterr().out.split())


def test_graph_to_an_unknown_format_is_a_usage_error(tmp_path, capsys):
    message = usage_error(["graph", "apple", "-o", str(tmp_path / "a.pdf")], capsys)
    assert "a.pdf: use a name ending in .dot, .gv, .svg, .png or .html" in message
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_names_the_callers_path_not_its_temporary_file(tmp_path):
    target = tmp_path / "nodir" / "c.png"
    with pytest.raises(FileNotFoundError) as info, atomic_write(target) as handle:
        handle.write(b"never")
    assert str(info.value) == f"[Errno 2] No such file or directory: '{target}'"
    (tmp_path / "c.png").mkdir()
    with pytest.raises(IsADirectoryError) as info, atomic_write(tmp_path / "c.png") as handle:
        handle.write(b"never")
    assert ".tmp" not in str(info.value) and str(tmp_path / "c.png") in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary file left


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "run.npz"
    target.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # the disk fills as the data reaches it
    with pytest.raises(OSError) as info, atomic_write(target) as handle:
        handle.write(b"new")
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == f"[Errno 28] {os.strerror(errno.ENOSPC)}: '{target}'"
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


@pytest.mark.skipif(os.name != "posix", reason="process ids in temporary names: POSIX")
def test_stale_temporaries_of_the_target_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "run.npz"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    stale = [
        tmp_path / f".run.npz.{int(ended.stdout)}-0123456789ab.tmp",  # its writer has ended
        tmp_path / ".run.npz.0123456789ab.tmp",  # an older chainrule's name: no process id
    ]
    kept = [
        tmp_path / f".run.npz.{os.getpid()}-0123456789ab.tmp",  # a writer still running
        tmp_path / ".other.npz.0123456789ab.tmp",  # another target's
        tmp_path / "notes.tmp",
    ]
    for path in stale + kept:
        path.write_bytes(b"x")
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name] + [p.name for p in kept]
    )


def test_the_readmes_example_commands_overwrite_no_tracked_file():
    root = Path(__file__).resolve().parents[2]
    listed = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = set(listed.stdout.split())
    blocks = re.findall(r"```sh\n(.*?)```", (root / "README.md").read_text("utf-8"), re.S)
    flags = r"(?:-o|--plot|--save|--json|--results)"
    written = re.findall(rf"(?:^|\s){flags}\s+(\S+)", "\n".join(blocks))
    assert "training-curve.png" in written  # the pattern finds what the examples write
    assert [path for path in written if path in tracked] == []
