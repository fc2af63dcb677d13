"""How each notebook is paced: where the learner first acts, and how long it takes to read.

    python -m tools.pacing

- first hands-on: the first cell the learner writes in (an exercise starter, metadata
  ``"exercise"``; a prediction, metadata ``"predict"``; or a cell the learner changes and runs
  again, metadata ``"your_turn"``), as a fraction of the cells before it;
- reading: words of prose at 200 words a minute, plus half a minute per code cell to run it and
  read what it shows (the exercises come on top), split into core and deep dives (sections whose
  heading ends "*(deep dive)*", up to the next heading of the same or a higher level);
- sections: each heading of level 2 or 3 starts one, timed as its reading plus its exercises,
  each by the difficulty its heading (or prompt) states: ``EXERCISE_MINUTES``.

    python -m tools.pacing --sections   # every section of every notebook, in minutes
    python -m tools.pacing --paths      # INSTRUCTORS.md's paths, timed slot by slot
    python -m tools.pacing --guide      # INSTRUCTORS.md's table of sections (00-06)
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
#: Minutes a learner needs for an exercise (reading its prompt, writing, checking, one retry),
#: by the difficulty the notebook states for it.
EXERCISE_MINUTES = {"easy": 6, "medium": 10, "medium-hard": 14, "hard": 18}
DIFFICULTY = re.compile(r"[(,] ?(easy|medium-hard|medium|hard)\)")


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


@dataclass
class Section:
    """A part of a notebook that starts at a heading of level 2 or 3 (or the opening)."""

    notebook: str
    cell: int
    level: int
    heading: str
    deep: bool
    reading_minutes: float
    exercises: list[tuple[int, str]]  # (the exercise's number in its notebook, its difficulty)

    @property
    def exercise_minutes(self) -> float:
        return sum(EXERCISE_MINUTES[difficulty] for _, difficulty in self.exercises)


def _headings(source: str) -> list[tuple[int, str]]:
    found, fenced = [], False
    for line in source.splitlines():
        fenced ^= line.startswith("```")
        heading = HEADING.match(line)
        if heading and not fenced and len(heading.group(1)) in (2, 3):
            found.append((len(heading.group(1)), line[heading.end():].strip()))
    return found


def sections(path: Path) -> list[Section]:
    """The notebook's sections in order, each with its reading minutes and its exercises (an
    exercise's difficulty is the last one stated in the prose since the section began)."""
    cells = nbformat.read(path, as_version=4).cells
    deep = in_deep_dives(cells)
    found: list[Section] = []
    stated: str | None = None
    exercise = 0
    for i, cell in enumerate(cells):
        headings = _headings(cell.source) if cell.cell_type == "markdown" else []
        if headings or not found:
            level = min((lvl for lvl, _ in headings), default=2)
            title = " / ".join(text for _, text in headings) or "opening"
            found.append(Section(path.stem, i, level, title, deep[i], 0.0, []))
            stated = None
        section = found[-1]
        section.reading_minutes += cell_minutes(cell)
        if cell.cell_type == "markdown":
            stated = ([m.group(1) for m in DIFFICULTY.finditer(cell.source)] or [stated])[-1]
        if cell.get("metadata", {}).get("exercise"):
            exercise += 1
            if stated is None:
                raise ValueError(f"{path.stem}: exercise {exercise} states no difficulty")
            section.exercises.append((exercise, stated))
    return found


def section_report(paths: list[Path]) -> None:
    for path in paths:
        print(f"\n{path.stem}")
        for s in sections(path):
            marks = " (deep)" if s.deep else ""
            work = ", ".join(f"ex {n} {d}" for n, d in s.exercises)
            print(f"  {s.cell:>4} {'  ' * (s.level - 2)}{s.heading[:60]:<62}"
                  f"{s.reading_minutes:>5.1f} m{marks}  {work}")


def report(paths: list[Path]) -> None:
    print(f"{'notebook':<24}{'cells':>6}{'first hands-on':>16}{'words':>7}{'code':>6}"
          f"{'reading':>9}{'of which deep':>15}{'exercises':>11}")
    for path in paths:
        p = pacing(path)
        where = "none" if p.first_hands_on is None else (
            f"{p.first_hands_on} ({p.hands_on_fraction:.0%})")
        print(f"{p.notebook:<24}{p.cells:>6}{where:>16}{p.words:>7}{p.code_cells:>6}"
              f"{p.reading_minutes:>7.0f} m{p.deep_dive_minutes:>13.0f} m{p.exercises:>11}")




# --- workshop paths: what each slot asks, timed by the sections above ----------------------

#: The share of a slot its plan may fill: the rest is slack (questions, a slow start).
FILL = 0.9


@dataclass
class Slot:
    """One block of a workshop path: a notebook's chosen sections and exercises in a slot.

    ``sections`` are heading prefixes; a chosen level-2 section brings its level-3 sections
    along, except deep dives and exercises not listed in ``exercises`` (their numbers).
    ``minutes`` of a slot without a notebook (a break, the wrap-up) are simply the slot."""

    minutes: int
    notebook: str | None
    do: str
    cut: str = "—"
    sections: tuple[str, ...] = ()
    exercises: tuple[int, ...] = ()

    def planned_minutes(self) -> float:
        if self.notebook is None:
            return 0.0
        return sum(s.reading_minutes + s.exercise_minutes
                   for s in chosen_sections(self.notebook, self.sections, self.exercises))


def chosen_sections(notebook: str, keys: tuple[str, ...],
                    exercises: tuple[int, ...]) -> list[Section]:
    """The sections a slot reads: those whose heading starts with a key, their level-3
    sections that are neither deep dives nor unlisted exercises, and every listed exercise's
    section. A key that matches nothing is an error (a renamed heading must not go unseen)."""
    found = sections(NOTEBOOKS / f"{notebook}.ipynb")
    chosen: list[Section] = []
    for key in keys:
        matches = [i for i, s in enumerate(found) if s.heading.startswith(key)]
        if not matches:
            raise ValueError(f"{notebook}: no section starts with {key!r}")
        for i in matches:
            chosen.append(found[i])
            for child in found[i + 1:]:
                if child.level <= found[i].level:
                    break
                listed = all(n in exercises for n, _ in child.exercises)
                if not child.deep and listed and not any(
                        child.heading.startswith(k) for k in keys):
                    chosen.append(child)
    for section in found:
        if any(n in exercises for n, _ in section.exercises) and section not in chosen:
            chosen.append(section)
    missing = set(exercises) - {n for s in chosen for n, _ in s.exercises}
    if missing:
        raise ValueError(f"{notebook}: no exercise numbered {sorted(missing)}")
    return sorted(chosen, key=lambda s: s.cell)


BREAK = Slot(10, None, "break")
WRAP_UP = Slot(5, None, "learners export their progress (below); collect the files")

PATHS: dict[str, tuple[int, list[Slot]]] = {
    "three-hour workshop": (180, [
        Slot(16, "00-start-here", "everyone's environment runs; the prediction and the warm-up "
             "exercise", "skip the warm-up; it is homework",
             ("opening", "A lab server", "Exercises"), (1,)),
        Slot(35, "01-rest", "§1 with the prediction, §2 with exercise 1, §3, §5, §8 (the "
             "document's bugs, live)", "skip §5; exercises 2–5 are homework",
             ("opening", "1 ·", "2 ·", "3 ·", "5 ·", "8 ·"), (1,)),
        Slot(36, "02-graphql", "§1, §2 with exercise 1 (errors included), §4, §5 (the N+1 "
             "problem, counted and fixed)", "run §1 without reading it; exercises 2–5 are "
             "homework", ("opening", "1 ·", "2 ·", "4 ·", "5 ·"), (1,)),
        BREAK,
        Slot(31, "03-grpc", "§1–2 (the bytes plot and the varint prediction), §4 with "
             "exercise 1, §5 (the document's flaws, deep dives aside)",
             "skip §5.6–5.9; exercises 2–6 are homework",
             ("opening", "1 ·", "2 ·", "4 ·", "5 ·"), (1,)),
        Slot(25, "04-websockets", "the plain WebSocket chat: handshake, rooms, messages with "
             "exercise 1, typing, close codes; the Socket.IO deep dive is for afterwards",
             "skip typing and exercise 1; the exercises are homework",
             ("opening", "The document's chat, on plain WebSocket",
              "The server in the background", "The handshake", "Rooms", "Messages",
              "Typing", "Close codes"), (1,)),
        Slot(17, "05-sse", "the prediction, the document's five flaws, resume with "
             "`Last-Event-ID`", "skip flaws 3–5",
             ("opening", "The document's server", "What this example gets wrong",
              "Resume after a disconnect"), ()),
        Slot(5, "06-long-polling", "the document's server, then *SSE or long polling? "
             "Measured*: the plot, and why", "show the plot alone",
             ("The document's server", "SSE or long polling")),
        WRAP_UP,
    ]),
    "ninety-minute workshop": (90, [
        Slot(6, "00-start-here", "the prediction (set up beforehand: see below); the warm-up "
             "is homework", sections=("opening", "A lab server")),
        Slot(24, "01-rest", "§1 with the prediction, §2 with exercise 1, §3",
             "skip exercise 1; it is homework", ("opening", "1 ·", "2 ·", "3 ·"), (1,)),
        Slot(18, "02-graphql", "§2 (exact fetching, the bytes plot, errors), §5 (the N+1 "
             "problem counted)", "skip §5's DataLoader port; show only the counts",
             ("opening", "2 ·", "5 ·")),
        Slot(8, "03-grpc", "§2: the bytes plot and the varint prediction",
             "show the plot alone", ("opening", "2 ·")),
        Slot(11, "04-websockets", "the plain chat: its handshake, rooms, messages",
             "stop after the handshake",
             ("opening", "The document's chat, on plain WebSocket",
              "The server in the background", "The handshake", "Rooms", "Messages")),
        Slot(10, "05-sse", "the prediction (the document's stream fails), resume with "
             "`Last-Event-ID`", "stop after the prediction",
             ("opening", "The document's server", "Resume after a disconnect")),
        Slot(8, "06-long-polling", "the document's server, then *SSE or long polling? "
             "Measured*: 06 against the SSE just seen", "show the plot alone",
             ("opening", "The document's server", "SSE or long polling")),
        WRAP_UP,
    ]),
    "two-hour self-study": (120, [
        Slot(16, "00-start-here", "how the labs work; the prediction and the warm-up exercise",
             sections=("opening", "A lab server", "Exercises"), exercises=(1,)),
        Slot(34, "01-rest", "§1 with the prediction, §2 with exercise 1, §3, §5, §8",
             "leave §8 for the next session", ("opening", "1 ·", "2 ·", "3 ·", "5 ·", "8 ·"),
             (1,)),
        Slot(27, "02-graphql", "§2 with exercise 1, §5 (the N+1 problem)",
             "leave §5 for the next session", ("opening", "2 ·", "5 ·"), (1,)),
        Slot(5, None, "a break"),
        Slot(19, "03-grpc", "§2 (the bytes, the varint prediction), §4 with exercise 1",
             "leave exercise 1 for the next session", ("opening", "2 ·", "4 ·"), (1,)),
        Slot(11, "04-websockets", "the plain chat: its handshake, rooms, messages",
             "stop after the handshake",
             ("opening", "The document's chat, on plain WebSocket",
              "The server in the background", "The handshake", "Rooms", "Messages")),
        Slot(8, "05-sse", "the prediction: the document's stream, run",
             sections=("opening", "The document's server")),
    ]),
}


def path_table(name: str) -> str:
    """The path as the Markdown table INSTRUCTORS.md shows (tests compare the two)."""
    _, slots = PATHS[name]
    rows = ["| time | notebook | do | planned / slot | cut point if behind |",
            "|---|---|---|---|---|"]
    start = 0
    for slot in slots:
        what = f"`{slot.notebook}`" if slot.notebook else slot.do
        do = slot.do if slot.notebook else ""
        planned = f"{slot.planned_minutes():.0f} / {slot.minutes} min" if slot.notebook else (
            f"{slot.minutes} min")
        rows.append(f"| {start // 60}:{start % 60:02d} | {what} | {do} | {planned} | "
                    f"{slot.cut} |")
        start += slot.minutes
    return "\n".join(rows)


def section_table(notebooks: list[str]) -> str:
    """Every level-2 section of ``notebooks``: core and deep-dive minutes, and exercises."""
    rows = ["| notebook | section | core | deep dives | exercises |", "|---|---|---|---|---|"]
    for notebook in notebooks:
        found = sections(NOTEBOOKS / f"{notebook}.ipynb")
        for i, top in enumerate(found):
            if top.level != 2:
                continue
            group = [top]
            for child in found[i + 1:]:
                if child.level <= 2:
                    break
                group.append(child)
            core = sum(s.reading_minutes for s in group if not s.deep)
            deep = sum(s.reading_minutes for s in group if s.deep)
            work = ", ".join(f"{n} ({d}, {EXERCISE_MINUTES[d]} min)"
                             for s in group for n, d in s.exercises)
            heading = top.heading.split(" / ")[0].replace(" *(deep dive)*", "")
            deep_text = f"{deep:.1f}" if deep else "—"
            rows.append(f"| `{notebook}` | {heading} | {core:.1f} | {deep_text} | "
                        f"{work or '—'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    chosen = [Path(a) for a in arguments] or sorted(NOTEBOOKS.glob("*.ipynb"))
    if "--sections" in sys.argv:
        section_report(chosen)
    elif "--paths" in sys.argv:
        for name in PATHS:
            print(f"\n{name}\n\n{path_table(name)}")
    elif "--guide" in sys.argv:
        print(section_table([path.stem for path in sorted(NOTEBOOKS.glob("0[0-6]-*.ipynb"))]))
    else:
        report(chosen)
