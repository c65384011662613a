"""Parse tests: the fail2ban agreement tables go into the end-of-run summary."""

from __future__ import annotations

import pytest

from tests.parse.fail2ban_corpus import TABLES_KEY


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    tables = config.stash.get(TABLES_KEY, [])
    if tables:
        terminalreporter.write_sep("=", "fail2ban corpus agreement")
        for table in tables:
            terminalreporter.write_line(table)
