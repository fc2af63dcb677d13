"""The exercise engine: ``check``, ``hint``, ``solution`` and ``progress``.

An exercise is a checker function registered under an id such as
``"rest.etag"``. The checker receives the learner's code, drives it (often
through a live lab server) and raises :class:`Unmet` with a specific message at
the first expectation it does not meet. ``check`` turns that into a verdict
that shows as a short HTML block in Jupyter and as text elsewhere; it never
raises, so a notebook with unsolved exercises still runs top to bottom.
"""

from __future__ import annotations

import datetime as dt
import html
import inspect
import json
import os
import random
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Unmet", "Exercise", "Verdict", "exercise", "check", "hint", "solution", "progress",
    "progress_path", "expect", "reveal", "mark", "marked", "cases", "closed_port",
]

PROGRESS_ENV = "PROTOCOL_LAB_PROGRESS"
SEED_ENV = "PROTOCOL_LAB_SEED"
DEFAULT_TIMEOUT = 10.0


class Unmet(Exception):
    """An expectation the learner's code did not meet; the message says which."""


class NotAttempted(Unmet):
    """The starter stub is still in place."""


def expect(condition: object, message: str) -> None:
    """Raise :class:`Unmet` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Unmet(message)


def cases(seed: int | None = None) -> random.Random:
    """The random source a check draws its cases from, so no answer can be fitted to them.

    Seeded from ``seed``, else ``$PROTOCOL_LAB_SEED``, else afresh; a failure
    message names the concrete case it drew (the ids, sizes, orders), so a
    learner can reproduce it.
    """
    if seed is None:
        configured = os.environ.get(SEED_ENV)
        seed = int(configured) if configured else random.SystemRandom().randrange(2**32)
    return random.Random(seed)


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Exercise:
    id: str
    title: str
    notebook: str
    checker: Callable[..., str | None]
    hints: list[str]
    reference: Callable[..., Any]
    timeout: float = DEFAULT_TIMEOUT

    @property
    def solution_source(self) -> str:
        return inspect.getsource(self.reference)


_exercises: dict[str, Exercise] = {}
_hints_shown: dict[str, int] = {}


def exercise(
    id: str,
    *,
    title: str,
    notebook: str,
    hints: list[str],
    reference: Callable[..., Any],
    timeout: float = DEFAULT_TIMEOUT,
) -> Callable[[Callable[..., str | None]], Callable[..., str | None]]:
    """Register the decorated function as the checker of exercise ``id``.

    The checker returns a short summary of what it verified (shown on success)
    or raises :class:`Unmet`.
    """

    def register(checker: Callable[..., str | None]) -> Callable[..., str | None]:
        _exercises[id] = Exercise(id, title, notebook, checker, hints, reference, timeout)
        return checker

    return register


def _load_all() -> dict[str, Exercise]:
    from .labs import load_exercises

    load_exercises()

    return _exercises


def get(id: str) -> Exercise:
    registry = _load_all()
    if id not in registry:
        known = ", ".join(sorted(registry))
        raise KeyError(f"no exercise {id!r}; the exercises are: {known}")
    return registry[id]


# --- verdicts ---------------------------------------------------------------

@dataclass
class Verdict:
    """The outcome of one ``check``: shown as HTML in Jupyter, text elsewhere."""

    id: str
    passed: bool
    message: str
    details: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The verdict in words, so it reads without colour or an emoji font."""
        return "passed" if self.passed else "not yet"

    def __str__(self) -> str:
        mark = "✅" if self.passed else "❌"
        lines = [f"{mark} {self.status} · {self.id}: {self.message}"]
        return "\n".join(lines + [f"   {line}" for line in self.details])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#cf222e"
        mark = "✅" if self.passed else "❌"
        extra = "".join(f"<div>{html.escape(line)}</div>" for line in self.details)
        return (
            f'<div style="border-left:4px solid {colour};padding:4px 10px">'
            f'{mark} <b style="color:{colour}">{self.status}</b> · '
            f"<b>{html.escape(self.id)}</b>: {html.escape(self.message)}{extra}</div>"
        )


def _run_with_timeout(func: Callable[[], Any], timeout: float) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func()
        except BaseException as exc:  # reported to the learner, never raised
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="exercise-check", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"the check did not finish within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _where(exc: BaseException) -> str:
    """The learner-code line an exception came from, if it came from a cell."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "labsupport" not in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at line {frame.lineno}: {frame.line})" if frame.line else ""


def check(id: str, *args: Any, **kwargs: Any) -> Verdict:
    """Check the learner's answer to exercise ``id``; never raises."""
    try:
        ex = get(id)
    except KeyError as exc:
        return Verdict(id, False, str(exc.args[0]))
    try:
        summary = _run_with_timeout(lambda: ex.checker(*args, **kwargs), ex.timeout)
    except NotAttempted as exc:
        return Verdict(id, False, f"not solved yet: {exc}")
    except Unmet as exc:
        return Verdict(id, False, str(exc), [f"hint({id!r}) gives a hint."])
    except TimeoutError as exc:
        return Verdict(id, False, f"{exc}; is something waiting without a timeout?")
    except Exception as exc:
        message = f"your code raised {type(exc).__name__}: {exc}{_where(exc)}"
        return Verdict(id, False, message, [f"hint({id!r}) gives a hint."])
    _record_solved(id)
    return Verdict(id, True, "checks passed" + (f": {summary}" if summary else ""))


def hint(id: str) -> _Text:
    """Show the next hint for exercise ``id``, one more each call."""
    ex = get(id)
    shown = min(_hints_shown.get(id, 0) + 1, len(ex.hints))
    _hints_shown[id] = shown
    more = f"; run again for hint {shown + 1}" if shown < len(ex.hints) else "; that is all"
    return _Text(f"Hint {shown} of {len(ex.hints)} for {id}{more}:\n{ex.hints[shown - 1]}")


def solution(id: str) -> _Code:
    """Reveal the reference solution of exercise ``id``."""
    return _Code(get(id).solution_source)


def reveal(guess: Any, actual: Any) -> _Text:
    """Compare a learner's prediction with what really happened, in words."""
    if guess is Ellipsis:
        return _Text(f"No prediction yet (replace the ... with your guess).\nIt is {actual!r}.")
    if guess == actual:
        return _Text(f"You predicted {guess!r}: right.\nIt is {actual!r}.")
    return _Text(f"You predicted {guess!r}; not quite.\nIt is {actual!r}.")


class _Text(str):
    def _repr_html_(self) -> str:
        head, _, body = self.partition("\n")
        return f"<div><i>{html.escape(head)}</i><br>{html.escape(body)}</div>"

    def __repr__(self) -> str:
        return str(self)


class _Code(str):
    def _repr_markdown_(self) -> str:
        return f"```python\n{self}```"

    def __repr__(self) -> str:
        return str(self)


# --- progress ---------------------------------------------------------------

def progress_path() -> Path:
    """Where progress is kept: ``$PROTOCOL_LAB_PROGRESS`` or ``~/.protocol-lab/progress.json``."""
    configured = os.environ.get(PROGRESS_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".protocol-lab" / "progress.json"


_progress_lock = threading.Lock()


def _read_progress() -> dict[str, Any]:
    try:
        data = json.loads(progress_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def marked(section: str = "solved") -> dict[str, str]:
    """The ids recorded in one section of the progress file, with the date of each."""
    entries = _read_progress().get(section, {})
    return entries if isinstance(entries, dict) else {}


def mark(id: str, section: str = "solved") -> None:
    """Record ``id`` (once, with today's date) in ``section`` of the progress file."""
    with _progress_lock:
        data = _read_progress()
        entries = marked(section)
        entries.setdefault(id, dt.date.today().isoformat())
        data[section] = entries
        path = progress_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
            temporary.replace(path)
        except OSError:
            pass  # a read-only home must not break a check


def _solved_mark(solved: bool) -> str:
    return "✅ solved " if solved else "⬜ not yet"


def _read_solved() -> dict[str, str]:
    return marked("solved")


def _record_solved(id: str) -> None:
    mark(id, "solved")


class Progress:
    """Every exercise of the collection (or of one notebook), and which are solved."""

    def __init__(self, notebook: str | None = None) -> None:
        self.solved = _read_solved()
        chosen = [e for e in _load_all().values() if notebook in (None, e.notebook)]
        self.exercises = sorted(chosen, key=lambda e: (e.notebook, e.id))

    def __str__(self) -> str:
        done = sum(e.id in self.solved for e in self.exercises)
        lines = [f"{done} of {len(self.exercises)} exercises solved"]
        for ex in self.exercises:
            lines.append(f"{_solved_mark(ex.id in self.solved)} {ex.notebook:<16} {ex.id:<22} "
                         f"{ex.title}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        done = sum(e.id in self.solved for e in self.exercises)
        rows = "".join(
            f"<tr><td>{_solved_mark(ex.id in self.solved)}</td>"
            f"<td>{html.escape(ex.notebook)}</td><td><code>{html.escape(ex.id)}</code></td>"
            f"<td>{html.escape(ex.title)}</td></tr>"
            for ex in self.exercises
        )
        return (
            f"<p><b>{done} of {len(self.exercises)} exercises solved</b></p>"
            f"<table><tr><th></th><th>notebook</th><th>exercise</th><th>about</th></tr>"
            f"{rows}</table>"
        )


def progress(notebook: str | None = None) -> Progress:
    """What is solved across the whole collection, or in one notebook (``"01-rest"``)."""
    return Progress(notebook)
