"""Asserting what ``check`` says about a reference solution and about wrong answers."""

from __future__ import annotations

from typing import Any

from labsupport import check
from labsupport.engine import get


def assert_passes(id: str, answer: Any = None) -> None:
    verdict = check(id, answer if answer is not None else get(id).reference)
    assert verdict.passed, str(verdict)
    assert "checks passed" in verdict.message


def assert_fails(id: str, answer: Any, expected: str) -> None:
    verdict = check(id, answer)
    assert not verdict.passed, f"a wrong answer passed: {verdict}"
    assert expected in verdict.message, f"expected {expected!r} in: {verdict}"
