"""A tool CI installs: missing, its tests skip on a developer's machine and fail in CI."""

import pytest
from ci_tools import needs_module, needs_tool


def test_a_missing_tool_skips_outside_ci_and_fails_in_it(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        needs_tool("chromium", None, "no chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is missing, but CI installs it"):
        needs_tool("chromium", None, "no chromium")
    needs_tool("chromium", "/usr/bin/chromium", "no chromium")  # present: nothing happens


def test_a_missing_module_skips_outside_ci_and_fails_in_it(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        needs_module("chainrule_no_such_module", "not installed")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="chainrule_no_such_module is missing"):
        needs_module("chainrule_no_such_module", "not installed")
    assert needs_module("json", "not installed").dumps([1]) == "[1]"
