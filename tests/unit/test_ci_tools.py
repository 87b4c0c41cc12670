"""A tool CI installs: missing, its tests skip on a developer's machine and fail in CI."""

import pytest
from ci_tools import needs_module, needs_tool


def outcome(check) -> tuple[type, str]:
    """What ``check`` raised (a skip, a failure), caught so that neither ends this test."""
    try:
        check()
    except BaseException as raised:  # pytest's outcomes are BaseExceptions
        return type(raised), str(raised)
    return type(None), ""


def test_a_missing_tool_skips_outside_ci_and_fails_in_it(monkeypatch):
    missing = lambda: needs_tool("chromium", None, "no chromium")  # noqa: E731
    monkeypatch.delenv("CI", raising=False)
    assert outcome(missing) == (pytest.skip.Exception, "no chromium")
    monkeypatch.setenv("CI", "true")
    failed = outcome(missing)
    assert failed[0] is pytest.fail.Exception
    assert failed[1] == "chromium is missing, but CI installs it: no chromium"
    present = lambda: needs_tool("chromium", "/usr/bin/chromium", "no chromium")  # noqa: E731
    assert outcome(present) == (type(None), "")


def test_a_missing_module_skips_outside_ci_and_fails_in_it(monkeypatch):
    missing = lambda: needs_module("chainrule_no_such_module", "not installed")  # noqa: E731
    monkeypatch.delenv("CI", raising=False)
    assert outcome(missing)[0] is pytest.skip.Exception
    monkeypatch.setenv("CI", "1")
    failed = outcome(missing)
    assert failed[0] is pytest.fail.Exception and "chainrule_no_such_module" in failed[1]
    assert needs_module("json", "not installed").dumps([1]) == "[1]"
