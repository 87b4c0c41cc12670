"""Fixtures shared by the command-line tests."""

import pytest

from chainrule.cli import main


@pytest.fixture
def usage_error(capsys):
    """Run the command line on ``args``; assert a usage error (exit 2) of one line on
    stderr, and return that line."""

    def run(args):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        return lines[0]

    return run
