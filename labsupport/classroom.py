"""Handing in progress: a learner exports a file, an instructor merges a folder of them.

In a notebook, at the end of a workshop::

    from labsupport.classroom import export_progress
    export_progress("Ada Lovelace")     # writes progress-ada-lovelace.json beside the notebook

From a shell, on the folder where the learners' files were collected::

    python -m labsupport.classroom merge DIR            # a Markdown table, one row per learner
    python -m labsupport.classroom merge DIR --csv      # the same as CSV, for a spreadsheet
    python -m labsupport.classroom export "Ada Lovelace" [--to DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import engine

__all__ = ["export_progress", "read_export", "merge", "class_table", "main"]

FORMAT = "protocol-lab-progress/1"


class NotAnExport(ValueError):
    """A file that is not a progress export; the message says why."""


@dataclass
class Handin:
    learner: str
    solved: dict[str, str]
    source: Path


def export_progress(learner: str, directory: str | Path = ".") -> Path:
    """Write this learner's solved exercises to ``progress-<learner>.json`` in ``directory``."""
    name = " ".join(learner.split())
    if not name:
        raise ValueError("give your name, as your instructor will recognise it")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "learner"
    path = Path(directory) / f"progress-{slug}.json"
    path.write_text(json.dumps({
        "format": FORMAT,
        "learner": name,
        "exported": dt.date.today().isoformat(),
        "solved": engine._read_solved(),
    }, indent=1, sort_keys=True))
    return path


def read_export(path: Path) -> Handin:
    """One learner's export; :class:`NotAnExport` saying what is wrong with anything else."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NotAnExport(f"{path.name}: not readable as JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NotAnExport(f"{path.name}: not a progress export (no \"format\": \"{FORMAT}\")")
    learner, solved = data.get("learner"), data.get("solved")
    if not isinstance(learner, str) or not learner.strip():
        raise NotAnExport(f"{path.name}: no learner name")
    if not isinstance(solved, dict) or not all(isinstance(k, str) for k in solved):
        raise NotAnExport(f"{path.name}: \"solved\" is not a map of exercise ids")
    return Handin(learner.strip(), {k: str(v) for k, v in solved.items()}, path)


def merge(directory: str | Path) -> tuple[list[Handin], list[str]]:
    """The exports in ``directory``, one per learner (files of one name merged), and problems."""
    folder = Path(directory)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    by_learner: dict[str, Handin] = {}
    problems = []
    for path in sorted(folder.glob("*.json")):
        try:
            handin = read_export(path)
        except NotAnExport as exc:
            problems.append(str(exc))
            continue
        known = by_learner.setdefault(handin.learner, Handin(handin.learner, {}, path))
        for id, day in handin.solved.items():
            known.solved[id] = min(day, known.solved.get(id, day))
    return sorted(by_learner.values(), key=lambda h: h.learner.casefold()), problems


def exercises_by_notebook() -> dict[str, list[str]]:
    """Every registered exercise id, grouped by notebook, in order."""
    exercises: dict[str, list[str]] = {}
    for ex in sorted(engine._load_all().values(), key=lambda e: (e.notebook, e.id)):
        exercises.setdefault(ex.notebook, []).append(ex.id)
    return exercises


def class_table(handins: Iterable[Handin], *, as_csv: bool = False,
                notebooks: dict[str, list[str]] | None = None) -> str:
    """One row per learner: exercises solved in each notebook, and in all.

    Markdown cells read "solved/total"; CSV cells hold the counts, the totals in the header.
    ``notebooks`` maps each notebook to its exercise ids (default: every registered one).
    """
    notebooks = exercises_by_notebook() if notebooks is None else notebooks
    total = sum(len(ids) for ids in notebooks.values())
    rows = []
    for handin in handins:
        counts = [sum(id in handin.solved for id in ids) for ids in notebooks.values()]
        rows.append((handin.learner, counts, sum(counts)))
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["learner", *(f"{nb} (of {len(ids)})" for nb, ids in notebooks.items()),
                         f"total (of {total})"])
        writer.writerows([learner, *counts, solved] for learner, counts, solved in rows)
        return out.getvalue()
    header = ["learner", *notebooks, "total"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for learner, counts, solved in rows:
        cells = [f"{n}/{len(ids)}" for n, ids in zip(counts, notebooks.values(), strict=True)]
        safe = learner.replace("|", "\\|")
        lines.append("| " + " | ".join([safe, *cells, f"{solved}/{total}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """The command line: ``merge DIR [--csv]`` or ``export NAME [--to DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m labsupport.classroom",
                                     description="Hand in and collect Protocol Lab progress.")
    commands = parser.add_subparsers(dest="command", required=True)
    merging = commands.add_parser("merge", help="merge a folder of exports into a class table")
    merging.add_argument("directory")
    merging.add_argument("--csv", action="store_true", help="CSV instead of a Markdown table")
    exporting = commands.add_parser("export", help="export this account's progress to a file")
    exporting.add_argument("learner")
    exporting.add_argument("--to", default=".", help="the folder to write to (default: here)")
    args = parser.parse_args(argv)
    if args.command == "export":
        print(export_progress(args.learner, args.to))
        return 0
    try:
        handins, problems = merge(args.directory)
    except NotADirectoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not handins:
        print(f"error: no progress exports in {args.directory}", file=sys.stderr)
        return 1
    sys.stdout.write(class_table(handins, as_csv=args.csv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
