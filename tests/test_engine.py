"""The exercise engine: verdicts never raise, timeouts hold, hints step, progress persists."""

from __future__ import annotations

import json
import time

from labsupport import check, hint, progress, reveal, solution
from labsupport.engine import (
    Unmet,
    _exercises,
    exercise,
    expect,
    progress_path,
)


def reference(x):
    return x * 2


@exercise("test.double", title="Double it", notebook="zz-test",
          hints=["Multiply.", "By two."], reference=reference, timeout=0.5)
def check_double(fn):
    expect(fn(2) == 4, f"fn(2) should be 4, got {fn(2)!r}")
    return "fn(2) == 4"


def test_a_right_answer_passes_and_is_recorded():
    verdict = check("test.double", reference)
    assert verdict.passed
    assert str(verdict) == "✅ passed · test.double: checks passed: fn(2) == 4"
    assert json.loads(progress_path().read_text())["solved"].keys() == {"test.double"}


def test_a_wrong_answer_says_what_is_wrong_without_raising():
    verdict = check("test.double", lambda x: x + 1)
    assert not verdict.passed
    assert verdict.message == "fn(2) should be 4, got 3"
    assert str(verdict).startswith("❌ not yet · test.double: fn(2) should be 4, got 3")
    assert "hint('test.double')" in str(verdict)


def test_a_verdict_says_passed_or_not_yet_in_words_in_html_too():
    passed, failed = check("test.double", reference), check("test.double", lambda x: x + 1)
    assert ">passed</b> · <b>test.double</b>: checks passed" in passed._repr_html_()
    assert ">not yet</b> · <b>test.double</b>: fn(2) should be 4" in failed._repr_html_()


def test_an_exception_in_learner_code_is_reported():
    def broken(x):
        return x / 0

    verdict = check("test.double", broken)
    assert not verdict.passed
    assert verdict.message.startswith("your code raised ZeroDivisionError: division by zero")
    assert "return x / 0" in verdict.message


def test_a_hanging_answer_times_out():
    started = time.monotonic()
    verdict = check("test.double", lambda x: time.sleep(5))
    assert time.monotonic() - started < 2
    assert not verdict.passed
    assert "did not finish within 0.5 s" in verdict.message


def test_unknown_exercise_is_a_verdict_not_an_exception():
    verdict = check("no.such", reference)
    assert not verdict.passed
    assert "no exercise 'no.such'" in verdict.message


def test_verdict_html_escapes_messages():
    @exercise("test.html", title="t", notebook="zz-test", hints=["h"], reference=reference)
    def check_html(fn):
        raise Unmet("<script>alert(1)</script>")

    try:
        html = check("test.html", reference)._repr_html_()
    finally:
        del _exercises["test.html"]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_hints_come_one_at_a_time_then_stop():
    assert hint("test.double").startswith("Hint 1 of 2 for test.double; run again for hint 2:")
    assert hint("test.double").endswith("Hint 2 of 2 for test.double; that is all:\nBy two.")
    assert hint("test.double").startswith("Hint 2 of 2")


def test_solution_shows_the_reference_source():
    assert solution("test.double").startswith("def reference(x):")


def test_progress_lists_every_exercise_and_marks_solved(monkeypatch, tmp_path):
    monkeypatch.setenv("PROTOCOL_LAB_PROGRESS", str(tmp_path / "elsewhere" / "p.json"))
    before = str(progress())
    assert "⬜ not yet zz-test" in before and "rest.keyset" in before
    check("test.double", reference)
    after = progress()
    assert "✅ solved  zz-test          test.double" in str(after)
    assert (tmp_path / "elsewhere" / "p.json").exists()
    assert str(after).startswith("1 of ")


def test_a_corrupt_progress_file_counts_as_empty():
    progress_path().parent.mkdir(parents=True, exist_ok=True)
    progress_path().write_text("{not json")
    assert str(progress()).startswith("0 of ")
    assert check("test.double", reference).passed


def test_progress_of_one_notebook():
    report = str(progress("zz-test"))
    assert report.splitlines() == [
        "0 of 1 exercises solved", "⬜ not yet zz-test          test.double            Double it"]


def test_reveal_compares_a_prediction_with_what_happened():
    assert reveal(500, 500) == "You predicted 500: right.\nIt is 500."
    assert reveal(200, 500) == "You predicted 200; not quite.\nIt is 500."
    assert reveal(..., 500).startswith("No prediction yet")
    assert "&lt;b&gt;" in reveal("<b>", "x")._repr_html_()
