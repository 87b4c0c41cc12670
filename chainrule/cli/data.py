"""The data sets as the commands load them: :func:`chainrule.data.load_mnist`, with the
--data-dir checked first and a download bar per file on a terminal."""

from __future__ import annotations

from pathlib import Path

from chainrule.cli.args import PROG
from chainrule.cli.progress import tqdm_class
from chainrule.errors import DataError

__all__ = ["check_data_dir", "load_data"]


def load_data(
    dataset: str,
    data_dir: str | None,
    quiet: bool,
    flatten: bool = True,
    remembered_by: str | None = None,
):
    """The data set's two splits, ``((x_train, t_train), (x_test, t_test))``, as
    ``chainrule train``, ``evaluate``, ``search`` and ``mistakes`` use them.
    ``remembered_by``: the checkpoint that named ``data_dir`` (not the user's
    --data-dir), for the message when that folder is gone."""
    from chainrule.data import mnist

    check_data_dir(dataset, data_dir, remembered_by)
    tqdm = tqdm_class(quiet)
    bars = []

    def download_progress(done: int, total: int | None) -> None:
        if not bars or done < bars[-1].n:  # a file's first chunk, or a retry's
            if bars:
                bars[-1].close()
            bars.append(tqdm(total=total, unit="B", unit_scale=True, leave=False, desc="download"))
        bars[-1].update(done - bars[-1].n)

    try:
        progress = download_progress if tqdm is not None else None
        return mnist.load_mnist(
            dataset=dataset, data_dir=data_dir, progress=progress, flatten=flatten
        )
    finally:
        for bar in bars:
            bar.close()


def check_data_dir(dataset: str, data_dir: str | None, remembered_by: str | None = None) -> None:
    """A --data-dir must be an existing folder: one the user named is never created, and
    nothing is downloaded into a folder that was mistyped."""
    if data_dir is None or dataset == "mnist-5k":
        return
    folder = Path(data_dir).expanduser()
    if folder.is_dir():
        return
    if remembered_by is not None:
        raise DataError(
            f"{remembered_by} was trained on {dataset} from {data_dir}, which is no longer a "
            "folder; pass the folder that holds the files now with --data-dir DIR"
        )
    if folder.exists():
        raise DataError(f"--data-dir {data_dir} is a file, not a folder of IDX files")
    raise DataError(
        f"--data-dir {data_dir}: no such folder ({PROG} fetch {dataset} {data_dir} "
        "downloads the files into it)"
    )
