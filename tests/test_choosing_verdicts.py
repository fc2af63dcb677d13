"""The verdict rule of the choosing lab's matrix: symmetric, intervals, capabilities."""

from __future__ import annotations

import pytest

from labsupport.labs.choosing import matrix
from labsupport.labs.choosing.driver import Result


@pytest.mark.parametrize(("factor", "fit", "unfit"), [
    (1.0, "confirmed", "contradicted"), (1.9, "confirmed", "contradicted"),
    (3.0, "nuanced", "nuanced"), (4.0, "contradicted", "confirmed"),
    (10.0, "contradicted", "confirmed")])
def test_the_rule_is_symmetric(factor, fit, unfit):
    assert matrix._verdict("✅ Perfect", factor) == matrix._verdict("⚡ Good", factor) == fit
    assert matrix._verdict("❌ Too slow", factor) == matrix._verdict("🔋 Battery drain",
                                                                      factor) == unfit


def test_an_interval_across_a_threshold_is_too_close_to_call():
    assert matrix._verdict("⚡ Good", 1.9, (1.5, 2.5)) == "too close to call"
    assert matrix._verdict("❌ Too slow", 4.5, (3.5, 6.0)) == "too close to call"
    assert matrix._verdict("⚡ Good", 1.2, (1.0, 1.8)) == "confirmed"


def capability_verdict(claim: str, protocol: str, result: Result) -> str:
    """The verdict on a claim that must be judged as a capability (not as fitness)."""
    judged = matrix._capability(claim, protocol, result)
    assert judged is not None, f"{claim!r} was not judged as a capability"
    return judged[0]


def test_capability_claims_are_judged_as_capabilities():
    delivered = Result("Real-time chat", "SSE", [0.01], extra={"delivered": "190/190"})
    assert capability_verdict("❌ One-way", "SSE", delivered) == "confirmed"
    assert capability_verdict("❌ One-way", "WebSockets", delivered) == "contradicted"
    lost = Result("Live updates", "GraphQL", [0.01], extra={"delivered": "29/30"})
    assert capability_verdict("🔄 Subscriptions", "GraphQL", lost) == "contradicted"
    assert capability_verdict("⚡ Possible", "Long Polling", delivered) == "confirmed"
    assert matrix._capability("✅ Perfect", "SSE", delivered) is None
    upload = Result("File upload", "gRPC", [], extra={"received": True})
    assert capability_verdict("✅ Streaming", "gRPC", upload) == "confirmed"
    torn = Result("File upload", "gRPC", [], extra={"received": False})
    assert capability_verdict("✅ Streaming", "gRPC", torn) == "contradicted"


def test_the_rule_is_stated():
    assert "2×" in matrix.RULE and "4×" in matrix.RULE and "too close to call" in matrix.RULE


def test_counted_rows_are_judged_on_the_production_model(monkeypatch):
    from labsupport.labs.choosing import evidence
    from labsupport.wire import Counts, profile

    def measured(name: str, round_trips: int, up: int, down: int) -> evidence.Measured:
        adapter = next(a for a in evidence.ADAPTERS if a.matrix == name)
        return evidence.Measured(adapter, 1, Counts(1, round_trips - 1, up, down, 4, 4),
                                 profile("cable"))

    production = [measured("REST", 5, 845, 943), measured("GraphQL", 5, 1275, 824),
                  measured("gRPC", 5, 675, 670)]
    figures = matrix._counted_figures("CRUD", production)
    assert figures["REST"] == pytest.approx(profile("cable").model_time(5, 845, 943))
    assert matrix._counted_figures("Real-time chat", production) == {}
    assert matrix._counted_figures("CRUD", None) == {}
    # ... and their "measured" column shows those counts, not the in-kernel loopback figures
    assert matrix._counted_measured(production)["gRPC"] == \
        "5 round trips, 675 + 670 B a cycle (production)"


def test_a_budget_verdict_needs_a_margin():
    from labsupport.labs.choosing import budgets

    assert budgets._verdict((0.020, 0.029), 1 / 30) == "within budget"
    assert budgets._verdict((0.031, 0.033), 1 / 30) == "too close to call"
    assert budgets._verdict((0.0336, 0.0347), 1 / 30) == "too close to call"
    assert budgets._verdict((0.040, 0.050), 1 / 30) == "over budget"


def test_a_cell_that_moved_between_runs_gets_no_verdict():
    from labsupport.labs.choosing import budgets

    assert ("Real-time chat", "WebSockets") in matrix.MOVED
    assert all(isinstance(why, str) and why for why in matrix.MOVED.values())
    assert {row for row, _ in matrix.MOVED} <= set(matrix.ROWS.values())
    assert {use_case for use_case, _ in budgets.MOVED} <= {b.row for b in budgets.BUDGETS}
