"""How each notebook is paced: where the learner first acts, and how long it takes to read.

    python -m tools.pacing

- first hands-on: the first cell the learner writes in (an exercise starter, metadata
  ``"exercise"``; a prediction, metadata ``"predict"``; or a cell the learner changes and runs
  again, metadata ``"your_turn"``), as a fraction of the cells before it;
- reading: words of prose at 200 words a minute, plus half a minute per code cell to run it and
  read what it shows (the exercises come on top), split into core and deep dives (sections whose
  heading ends "*(deep dive)*", up to the next heading of the same or a higher level).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
WORDS_PER_MINUTE = 200
MINUTES_PER_CODE_CELL = 0.5
DEEP_DIVE = "(deep dive)"
HEADING = re.compile(r"^(#{1,6}) ", re.MULTILINE)


@dataclass
class Pacing:
    notebook: str
    cells: int
    first_hands_on: int | None
    words: int
    code_cells: int
    exercises: int
    deep_dive_minutes: float

    @property
    def hands_on_fraction(self) -> float | None:
        return None if self.first_hands_on is None else self.first_hands_on / self.cells

    @property
    def reading_minutes(self) -> float:
        return self.words / WORDS_PER_MINUTE + self.code_cells * MINUTES_PER_CODE_CELL


def cell_minutes(cell: nbformat.NotebookNode) -> float:
    if cell.cell_type == "code":
        return MINUTES_PER_CODE_CELL
    if cell.cell_type == "markdown":
        return len(re.findall(r"\w+", cell.source)) / WORDS_PER_MINUTE
    return 0.0


def in_deep_dives(cells: list[nbformat.NotebookNode]) -> list[bool]:
    """For each cell, whether it belongs to a section marked as a deep dive."""
    deep_level, marks = None, []
    for cell in cells:
        if cell.cell_type == "markdown":
            fenced = False
            for line in cell.source.splitlines():
                fenced ^= line.startswith("```")  # a "# comment" in a code block is no heading
                heading = HEADING.match(line)
                if fenced or not heading:
                    continue
                level = len(heading.group(1))
                if DEEP_DIVE in line:
                    deep_level = level if deep_level is None else min(deep_level, level)
                elif deep_level is not None and level <= deep_level:
                    deep_level = None
        marks.append(deep_level is not None)
    return marks


def is_hands_on(cell: nbformat.NotebookNode) -> bool:
    """An exercise starter, a prediction, or a "your turn" cell the learner edits and re-runs."""
    metadata = cell.get("metadata", {})
    return bool(metadata.get("exercise") or metadata.get("predict") or metadata.get("your_turn"))


def pacing(path: Path) -> Pacing:
    """The pacing figures of one notebook."""
    cells = nbformat.read(path, as_version=4).cells
    hands_on = [i for i, cell in enumerate(cells) if is_hands_on(cell)]
    prose = " ".join(cell.source for cell in cells if cell.cell_type == "markdown")
    return Pacing(
        notebook=path.stem,
        cells=len(cells),
        first_hands_on=hands_on[0] if hands_on else None,
        words=len(re.findall(r"\w+", prose)),
        code_cells=sum(cell.cell_type == "code" for cell in cells),
        exercises=sum(bool(cell.get("metadata", {}).get("exercise")) for cell in cells),
        deep_dive_minutes=sum(cell_minutes(cell)
                              for cell, deep in zip(cells, in_deep_dives(cells), strict=True)
                              if deep),
    )


def report(paths: list[Path]) -> None:
    print(f"{'notebook':<24}{'cells':>6}{'first hands-on':>16}{'words':>7}{'code':>6}"
          f"{'reading':>9}{'of which deep':>15}{'exercises':>11}")
    for path in paths:
        p = pacing(path)
        where = "none" if p.first_hands_on is None else (
            f"{p.first_hands_on} ({p.hands_on_fraction:.0%})")
        print(f"{p.notebook:<24}{p.cells:>6}{where:>16}{p.words:>7}{p.code_cells:>6}"
              f"{p.reading_minutes:>7.0f} m{p.deep_dive_minutes:>13.0f} m{p.exercises:>11}")


if __name__ == "__main__":
    report([Path(a) for a in sys.argv[1:]] or sorted(NOTEBOOKS.glob("*.ipynb")))
