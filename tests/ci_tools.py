"""What the tests need from outside Python, checked one way: a missing tool skips its tests
on a developer's machine, but fails them in CI (``CI`` set), which installs it itself."""

import os

import pytest


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def needs_tool(name: str, present: object, reason: str) -> None:
    """Skip the calling test (or fixture) when ``present`` is false, naming ``reason``; in CI
    fail instead, since .ci/run installs ``name`` and its absence is a broken CI."""
    if present:
        return
    if in_ci():
        pytest.fail(f"{name} is missing, but CI installs it: {reason}", pytrace=False)
    pytest.skip(reason)


def needs_module(name: str, reason: str):
    """Import module ``name`` as ``pytest.importorskip`` does, but failing in CI."""
    if in_ci():
        try:
            return __import__(name, fromlist=["_"])
        except ImportError as error:
            pytest.fail(f"{name} is missing, but CI installs it: {error}", pytrace=False)
    return pytest.importorskip(name, reason=reason)
