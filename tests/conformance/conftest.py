"""Prints the conformance summary (per group, strict verdicts) at the end of a pytest run."""

from __future__ import annotations

from typing import Any

from .harness import RESULTS, summarize


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("conformance summary")
    tr.write_line("strict verdicts against our fuzzing peer (direction, setup, group, OK/total):")
    for line in summarize(RESULTS).splitlines():
        tr.write_line(line)
    failed = [r for r in RESULTS if not r.ok]
    tr.write_line("%d case runs, %d met the expectation, %d did not (known ones: KNOWN.md)" % (
        len(RESULTS), len(RESULTS) - len(failed), len(failed)))
