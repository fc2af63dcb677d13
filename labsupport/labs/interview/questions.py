"""The interview questions, and ``ask()``: a mock interview, one question at a time.

``ask()`` picks a question you have not practised yet (or the one you name),
shows it with a time box, and waits for your attempt. ``reveal()`` then shows
the outline of a strong answer and the cells of the notebook that hold its
evidence, and records the question as practised in your progress file.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass

from ...engine import mark, marked

__all__ = ["Question", "QUESTIONS", "ask", "practised", "Asked"]

NOTEBOOK = "09-interview-questions"
SECTION = "practised"


@dataclass(frozen=True)
class Question:
    id: str
    level: str
    minutes: int
    text: str
    outline: tuple[str, ...]
    evidence: tuple[str, ...]   # headings of the notebook's sections to revisit


QUESTIONS: dict[str, Question] = {q.id: q for q in (
    Question("q1", "basic", 5, "What are the main differences between REST and GraphQL?", (
        "Shape of data: fixed resources vs client-chosen fields; count bytes and requests.",
        "Caching: REST GETs are cacheable by URL and revalidate with ETag/304; GraphQL POSTs "
        "are not HTTP-cacheable, so it caches in the client (normalised) or with persisted "
        "queries over GET.",
        "Errors: HTTP status codes vs 200 with an errors array.",
        "Cost control: REST bounds each endpoint; GraphQL needs depth/complexity limits and "
        "DataLoaders against N+1.",
        "Evolution: REST versions; GraphQL deprecates fields.",
    ), ("Q1", "Q7")),
    Question("q2", "basic", 5, "When would you use WebSockets over HTTP?", (
        "Both sides send, often: WebSocket frames cost bytes, not a request each.",
        "Browsers allow about 6 HTTP/1.1 connections per host; HTTP/2 multiplexes streams on "
        "one connection, which removes most of that limit for request/response and SSE.",
        "WebSockets lose HTTP's caching, status codes and retries: you build "
        "reconnection, resume and backpressure yourself.",
        "Scaling: long-lived connections pin clients to processes; fan out through a broker.",
    ), ("Q2", "Fan-out across processes", "Backpressure")),
    Question("q3", "basic", 5,
             "Explain the difference between Server-Sent Events and Long Polling.", (
        "SSE: one response that never ends; long polling: one response per delivery.",
        "Reconnection is built into EventSource, but resuming without loss needs id: lines "
        "and Last-Event-ID: show both.",
        "Long polling: a cursor per client, no lost wake-ups, every tab gets every message.",
        "Measured: requests, connections and tail latency for the same stream.",
    ), ("Q3",)),
    Question("q4", "intermediate", 15, "Design an API for a social media platform. Which "
             "communication protocols would you use and why?", (
        "Start from requirements per feature: direction, latency budget, fan-out, cacheability.",
        "REST for CRUD and cacheable reads; GraphQL where screens need many related objects.",
        "Push: SSE for one-way feeds and notifications, WebSocket where the client sends "
        "often (chat, typing).",
        "Idempotency keys on writes that clients retry.",
    ), ("Q4", "Idempotency keys")),
    Question("q5", "intermediate", 15, "How would you implement real-time notifications for a "
             "web application?", (
        "A queue between the API and the notification service: buffering, retries, dead "
        "letters.",
        "Presence: push to online users, store for offline users, deliver on return.",
        "Per-user rate limiting and preferences applied before delivery.",
        "Fan-out across server processes through the broker.",
    ), ("Q5", "Fan-out across processes")),
    Question("q6", "advanced", 20, "Design a real-time multiplayer game communication system.", (
        "WebSocket (TCP) for browsers; UDP-like delivery in a browser means WebRTC data "
        "channels or WebTransport, not raw UDP.",
        "Tick rate and message schema decide the bandwidth: full vs delta vs batched, "
        "measured.",
        "Client-side prediction with reconciliation; interpolation of others; server-side "
        "lag compensation by rewinding history.",
        "Authoritative server; REST for login, stats, leaderboards.",
    ), ("Q6",)),
    Question("q7", "advanced", 15, "How would you handle API versioning in a microservices "
             "architecture?", (
        "Prefer evolving without breaking: additive changes, never reuse numbers or names.",
        "When you must break: a new version beside the old, Deprecation and Sunset headers, "
        "410 after the sunset.",
        "protobuf: field numbers are the contract; reserve what you remove; check in CI with a "
        "breaking-change detector.",
        "GraphQL: @deprecated fields and usage checks instead of versions.",
    ), ("Q7",)),
    Question("x1", "extra", 15, "How do you scale WebSocket or SSE fan-out across several server "
             "processes?", (
        "Each process holds only its own connections; a broker subject per topic or user "
        "carries every event to every process.",
        "Sticky sessions are not needed for delivery, only for connection state.",
        "Resume after reconnecting to another process: ids that are global (the stream's "
        "sequence), not per process.",
    ), ("Fan-out across processes",)),
    Question("x2", "extra", 10, "How do you make a payment POST safe to retry?", (
        "The client sends an Idempotency-Key; the server stores the key, a fingerprint of "
        "the body and the response.",
        "Same key and body: replay the response; other body: 422; still running: 409.",
        "Retry with backoff and jitter, with the same key each time.",
    ), ("Idempotency keys",)),
    Question("x3", "extra", 10, "What happens when a consumer is slower than its producer?", (
        "Something gives: memory (unbounded queue), the producer (blocking), or data "
        "(dropping); choose per stream.",
        "TCP already pushes back; an application queue in between hides it.",
        "Measure queue depth and delay; alert on growth, not only on errors.",
    ), ("Backpressure",)),
)}


def practised() -> dict[str, str]:
    """The questions practised with ``ask()``, and when."""
    return {id: day for id, day in marked(SECTION).items() if id in QUESTIONS}


class Asked:
    """A question on the table: shown now, its outline when you call ``reveal()``."""

    def __init__(self, question: Question) -> None:
        self.question = question

    def __str__(self) -> str:
        q = self.question
        return (f"{q.id.upper()} ({q.level}, about {q.minutes} min): {q.text}\n"
                "Answer out loud or in a cell, then call .reveal()")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        q = self.question
        return (f"<div style='border-left:4px solid #0969da;padding:4px 10px'>"
                f"<b>{q.id.upper()}</b> ({q.level}, about {q.minutes} min)<br>"
                f"{html.escape(q.text)}<br><i>Answer out loud or in a cell, then call "
                f"<code>.reveal()</code></i></div>")

    def reveal(self) -> Outline:
        """The outline of a strong answer; records the question as practised."""
        mark(self.question.id, SECTION)
        return Outline(self.question)


class Outline:
    def __init__(self, question: Question) -> None:
        self.question = question

    def __str__(self) -> str:
        q = self.question
        points = "\n".join(f"- {point}" for point in q.outline)
        return (f"A strong answer to {q.id.upper()} covers:\n{points}\n"
                f"Evidence in this notebook: {', '.join(q.evidence)}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        q = self.question
        points = "".join(f"<li>{html.escape(point)}</li>" for point in q.outline)
        return (f"<div><b>A strong answer to {q.id.upper()} covers:</b><ul>{points}</ul>"
                f"Evidence in this notebook: {html.escape(', '.join(q.evidence))}</div>")


def ask(id: str | None = None, *, rng: random.Random | None = None) -> Asked:
    """A question to answer: the one named, else one not practised yet, else any."""
    if id is not None:
        if id.lower() not in QUESTIONS:
            raise KeyError(f"no question {id!r}; they are {', '.join(QUESTIONS)}")
        return Asked(QUESTIONS[id.lower()])
    done = practised()
    choices = [q for q in QUESTIONS.values() if q.id not in done] or list(QUESTIONS.values())
    return Asked((rng or random.Random()).choice(choices))
