"""Random search over training hyperparameters, as chapter 6 of the book does it.

The book draws ``lr = 10**U(-6, -2)`` and ``weight decay = 10**U(-8, -4)`` a hundred
times, trains each draw on the training data less a held-out 20%, and ranks the draws by
their accuracy on that held-out validation set (the test set is never used to choose).
This package does the same, for any of ``chainrule train``'s hyperparameters, one job
to a module:

* ``space``: a *space* maps each hyperparameter to a :class:`LogUniform` range, a
  :class:`Choice` or a fixed value; :meth:`Search.trial` turns a trial's number into its
  settings, a pure function of ``(seed, number)``, so a trial is the same whichever
  process runs it, in whatever order, in whichever run of a resumed search;
* ``trial``: :func:`split_validation` holds out the validation data, :func:`run_trial`
  trains one trial and returns its record (the settings, the final and per-epoch
  validation accuracy, the time);
* ``results``: a results file of JSON lines, one record per finished trial
  (:func:`read_results`, which checks every record, :func:`append_result`), makes a
  search resumable: trials already in it are not run again; :func:`results_lock` keeps
  it to one search at a time, and :func:`rank` orders the records, best first;
  ``records`` says what a record must hold;
* ``cluster``: :func:`dask_client` gives a Dask cluster, worker processes on this
  machine behind TLS or a scheduler's workers anywhere, every wait on it bounded;
* ``running``: :func:`run_search` runs the trials left, one after another in this
  process, or in parallel on a cluster's workers.

Like :func:`chainrule.train.fit`, nothing here prints: :func:`run_search` reports each
finished trial through ``on_trial``. Dask (the ``search`` extra) is imported only when a
cluster is used.
"""

# Every name that was importable when search was one module; the ``X as X`` ones are
# public but, as then, not part of ``import *``.
from chainrule.search.cluster import TLSFiles as TLSFiles
from chainrule.search.cluster import answer_seconds as answer_seconds
from chainrule.search.cluster import check_workers as check_workers
from chainrule.search.cluster import dask_client
from chainrule.search.cluster import scheduler_address as scheduler_address
from chainrule.search.cluster import tls_configured as tls_configured
from chainrule.search.results import MAX_RECORD_BYTES as MAX_RECORD_BYTES
from chainrule.search.results import append_result, rank, read_results, results_lock
from chainrule.search.running import run_search
from chainrule.search.space import BOOK_SPACE, Choice, LogUniform, Search
from chainrule.search.trial import Build as Build
from chainrule.search.trial import Data as Data
from chainrule.search.trial import run_trial, split_validation

__all__ = [
    "BOOK_SPACE",
    "Choice",
    "LogUniform",
    "Search",
    "append_result",
    "dask_client",
    "rank",
    "read_results",
    "results_lock",
    "run_search",
    "run_trial",
    "split_validation",
]
