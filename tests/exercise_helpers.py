"""Asserting what ``check`` says about a reference solution and about wrong answers."""

from __future__ import annotations

import os
from typing import Any

from labsupport import check
from labsupport.engine import SEED_ENV, get


def assert_passes(id: str, answer: Any = None) -> None:
    verdict = check(id, answer if answer is not None else get(id).reference)
    assert verdict.passed, str(verdict)
    assert "checks passed" in verdict.message


def assert_fails(id: str, answer: Any, expected: str) -> None:
    verdict = check(id, answer)
    assert not verdict.passed, f"a wrong answer passed: {verdict}"
    assert expected in verdict.message, f"expected {expected!r} in: {verdict}"


def assert_fails_for_some_seed(id: str, answer: Any, expected: str, seeds: int = 10) -> None:
    """A sample-fitted answer fails on some drawn case: the check's seed is set to 0, 1, ...
    until it fails (each failure must teach ``expected``)."""
    before = os.environ.get(SEED_ENV)
    try:
        for seed in range(seeds):
            os.environ[SEED_ENV] = str(seed)
            verdict = check(id, answer)
            if not verdict.passed:
                assert expected in verdict.message, f"seed {seed}: expected {expected!r} in: " \
                                                    f"{verdict}"
                return
    finally:
        if before is None:
            os.environ.pop(SEED_ENV, None)
        else:
            os.environ[SEED_ENV] = before
    raise AssertionError(f"a wrong answer passed with seeds 0 to {seeds - 1}")
