"""A one-page summary of the numbers measured in this run, for revision away from Jupyter.

Cells call ``summary.record(question, what, value)`` as they measure; at the
end ``summary.page()`` shows the page, and ``summary.export("facts.md")`` or
``summary.export("facts.html")`` writes it. Every figure is what this run
measured, with the question it answers; nothing is typed in by hand.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Figure", "Summary", "summary"]


@dataclass(frozen=True)
class Figure:
    question: str
    what: str
    value: str


class Summary:
    """Measured figures by question, shown and exported as one page."""

    def __init__(self, title: str = "Protocol Lab: numbers to know") -> None:
        self.title = title
        self.figures: dict[tuple[str, str], Figure] = {}

    def record(self, question: str, what: str, value: str) -> None:
        """Keep one figure (re-running a cell replaces it rather than adding a copy)."""
        self.figures[(question, what)] = Figure(question, what, value)

    def _by_question(self) -> dict[str, list[Figure]]:
        grouped: dict[str, list[Figure]] = {}
        for figure in self.figures.values():
            grouped.setdefault(figure.question, []).append(figure)
        return grouped

    def markdown(self) -> str:
        lines = [f"# {self.title}", "",
                 "Measured in one run on this machine's loopback. Counts (requests, "
                 "connections, round trips, bytes) are the same on any machine; times are "
                 "this machine's, except a profile's model: round trips × RTT + bytes ÷ "
                 "bandwidth.", ""]
        for question, figures in self._by_question().items():
            lines += [f"## {question}", "", "| what | measured |", "|---|---|"]
            lines += [f"| {f.what.replace('|', '/')} | {f.value.replace('|', '/')} |"
                      for f in figures]
            lines.append("")
        return "\n".join(lines)

    def html(self) -> str:
        parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
                 "<style>body{font:14px sans-serif;max-width:50em;margin:2em auto}"
                 "td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}</style>",
                 f"<h1>{html.escape(self.title)}</h1><p>Measured on loopback in one run; ratios "
                 "travel between machines, absolute times do not.</p>"]
        for question, figures in self._by_question().items():
            rows = "".join(f"<tr><td>{html.escape(f.what)}</td><td>{html.escape(f.value)}</td></tr>"
                           for f in figures)
            parts.append(f"<h2>{html.escape(question)}</h2><table><tr><th>what</th>"
                         f"<th>measured</th></tr>{rows}</table>")
        return "\n".join(parts)

    def export(self, path: str | Path) -> Path:
        """Write the page as Markdown (``.md``) or HTML (``.html``); returns the path."""
        path = Path(path)
        if path.suffix not in (".md", ".html"):
            raise ValueError(f"export to a .md or .html file, not {path.name!r}")
        path.write_text(self.markdown() if path.suffix == ".md" else self.html(),
                        encoding="utf-8")
        return path

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()


summary = Summary()
