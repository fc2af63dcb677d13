"""The SSE vs long-polling comparison counts what each client really did."""

from __future__ import annotations

from labsupport.labs.long_polling import comparison as push_comparison


def test_both_protocols_deliver_every_notification_and_count_requests():
    sse_row, polling_row = push_comparison.compare(count=20, gap=0.01)
    assert sse_row["received"] == polling_row["received"] == 20
    assert sse_row["requests"] == sse_row["connections_opened"] == 1
    assert polling_row["requests"] >= 2, "a long poll answers and a new one follows"
    assert 0 < sse_row["median_ms"] < 1000 and 0 < polling_row["median_ms"] < 1000
