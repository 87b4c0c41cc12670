"""Training-step speed against PyTorch and the book's NumPy code (by hand, not in CI).

The benchmark lives in :mod:`chainrule.benchmark`, so that ``chainrule bench`` runs it
too; this script is the same entry point for a checkout: ``python bench/bench_train.py``.
"""

import sys

from chainrule.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
