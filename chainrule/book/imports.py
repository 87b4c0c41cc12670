"""The import hook that gives a script of the book's repository chainrule's modules.

:func:`stand_ins` installs two finders on ``sys.meta_path``: the first answers the
book's module names (:data:`chainrule.book.STAND_INS`) with chainrule's modules, before
any file of the checkout is looked at; the last supplies empty ``common`` and
``dataset`` packages when no folder of that name is on ``sys.path``. A module the
book has and chainrule does not replace is found in the checkout as usual.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from chainrule.book import BOOK_LAYERS_KEEPS, CHAPTER_MODULES, STAND_INS

__all__ = ["chosen_stand_ins", "stand_ins"]


def chosen_stand_ins(chapter: str, book_layers: bool = False) -> dict[str, str]:
    """The stand-ins for a script in the folder ``chapter`` (``"ch07"`` …): every module
    of :data:`STAND_INS`, less the chapter-local modules of other chapters, and less the
    book's network files with ``book_layers``."""
    chosen = {}
    for name, target in STAND_INS.items():
        if CHAPTER_MODULES.get(name, chapter) != chapter:
            continue
        if book_layers and name in BOOK_LAYERS_KEEPS:
            continue
        chosen[name] = target
    return chosen


class _Alias(importlib.abc.Loader):
    """Loads a book's module name as the chainrule module that stands in for it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the chainrule module is imported already."""


class _StandInFinder(importlib.abc.MetaPathFinder):
    def __init__(self, modules: Mapping[str, str]) -> None:
        self.modules = dict(modules)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.modules:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(self.modules[fullname]))


class _EmptyPackage(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default: an empty module

    def exec_module(self, module: ModuleType) -> None:
        module.__path__ = []  # a package with no folder: its modules are the stand-ins


class _PackageFinder(importlib.abc.MetaPathFinder):
    def __init__(self, packages: set[str]) -> None:
        self.packages = packages

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.packages:
            return None
        return importlib.machinery.ModuleSpec(fullname, _EmptyPackage(), is_package=True)


@contextmanager
def stand_ins(modules: Mapping[str, str]) -> Iterator[None]:
    """Within the block, importing a name of ``modules`` gives its chainrule module.

    On leaving, the finders go, and so do the modules imported under the book's names,
    so that a next run in the same process looks for them afresh."""
    parents = {name.rpartition(".")[0] for name in modules} - {""}
    first, last = _StandInFinder(modules), _PackageFinder(parents)
    sys.meta_path.insert(0, first)
    sys.meta_path.append(last)
    try:
        yield
    finally:
        sys.meta_path.remove(first)
        sys.meta_path.remove(last)
        for name in (*modules, *parents):
            sys.modules.pop(name, None)
