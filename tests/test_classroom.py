"""Handing in progress: export a learner's file, merge a folder of them into a class table."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from labsupport import check
from labsupport.classroom import class_table, export_progress, merge, read_export
from labsupport.engine import get
from labsupport.labs import LABS

NOTEBOOKS = {"00-start-here": ["start.first-request"],
             "01-rest": ["rest.conditional-get", "rest.keyset", "rest.validation"]}


def handin(folder, name, learner, solved, **extra):
    data = {"format": "protocol-lab-progress/1", "learner": learner, "solved": solved, **extra}
    (folder / name).write_text(json.dumps(data))


def test_an_export_holds_what_the_learner_solved(tmp_path):
    assert check("start.first-request", get("start.first-request").reference).passed
    path = export_progress("  Ada   Lovelace ", tmp_path)
    assert path.name == "progress-ada-lovelace.json"
    exported = read_export(path)
    assert exported.learner == "Ada Lovelace"
    assert list(exported.solved) == ["start.first-request"]


def test_an_export_needs_a_name(tmp_path):
    with pytest.raises(ValueError, match="give your name"):
        export_progress("   ", tmp_path)


def test_merge_makes_one_row_per_learner_and_reports_what_it_skipped(tmp_path):
    handin(tmp_path, "a.json", "Grace", {"rest.keyset": "2026-11-27"})
    handin(tmp_path, "b.json", "Ada", {"start.first-request": "2026-11-27",
                                       "rest.validation": "2026-11-27", "no.longer": "2026-11-01"})
    handin(tmp_path, "c.json", "Grace", {"rest.validation": "2026-11-28"})  # a second hand-in
    (tmp_path / "notes.json").write_text('{"todo": []}')
    (tmp_path / "broken.json").write_text("{not json")
    handins, problems = merge(tmp_path)
    assert [h.learner for h in handins] == ["Ada", "Grace"]
    assert sorted(problems) == [
        "broken.json: not readable as JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        'notes.json: not a progress export (no "format": "protocol-lab-progress/1")']
    assert class_table(handins, notebooks=NOTEBOOKS).splitlines() == [
        "| learner | 00-start-here | 01-rest | total |",
        "|---|---|---|---|",
        "| Ada | 1/1 | 1/3 | 2/4 |",
        "| Grace | 0/1 | 2/3 | 2/4 |",
    ]


def test_the_csv_holds_counts_a_spreadsheet_can_add_up(tmp_path):
    handin(tmp_path, "a.json", "Lovelace, Ada", {"rest.keyset": "2026-11-27"})
    rows = list(csv.reader(io.StringIO(
        class_table(merge(tmp_path)[0], as_csv=True, notebooks=NOTEBOOKS))))
    assert rows == [["learner", "00-start-here (of 1)", "01-rest (of 3)", "total (of 4)"],
                    ["Lovelace, Ada", "0", "1", "1"]]


def test_a_learner_name_cannot_break_the_markdown_table(tmp_path):
    handin(tmp_path, "a.json", "a | b", {})
    assert "| a \\| b | 0/1 | 0/3 | 0/4 |" in class_table(merge(tmp_path)[0], notebooks=NOTEBOOKS)


@pytest.mark.parametrize("data, message", [
    ({"format": "protocol-lab-progress/1", "solved": {}}, "no learner name"),
    ({"format": "protocol-lab-progress/1", "learner": "Ada", "solved": ["rest.keyset"]},
     '"solved" is not a map of exercise ids'),
])
def test_a_malformed_export_is_named_with_its_fault(tmp_path, data, message):
    (tmp_path / "x.json").write_text(json.dumps(data))
    assert merge(tmp_path) == ([], [f"x.json: {message}"])


def run_command(*args):
    return subprocess.run([sys.executable, "-m", "labsupport.classroom", *args],
                          capture_output=True, text=True, timeout=60)


def test_the_command_merges_a_folder_into_a_table_of_every_notebook(tmp_path):
    handin(tmp_path, "a.json", "Ada", {"start.first-request": "2026-11-27"})
    (tmp_path / "stray.json").write_text("[]")
    done = run_command("merge", str(tmp_path))
    assert done.returncode == 0, done.stderr
    header, rule, row = done.stdout.splitlines()
    assert header.startswith("| learner | 00-start-here | 01-rest | 02-graphql |")
    assert row.startswith("| Ada | 1/1 | 0/")
    assert "skipped stray.json: not a progress export" in done.stderr
    as_csv = run_command("merge", str(tmp_path), "--csv")
    assert as_csv.stdout.splitlines()[1].startswith("Ada,1,0,")


def test_the_command_says_when_there_is_nothing_to_merge(tmp_path):
    empty = run_command("merge", str(tmp_path))
    assert empty.returncode == 1
    assert f"no progress exports in {tmp_path}" in empty.stderr
    missing = run_command("merge", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "is not a folder" in missing.stderr


def test_the_instructors_guide_is_linked_and_walks_through_every_notebook():
    root = Path(__file__).resolve().parent.parent
    guide = (root / "INSTRUCTORS.md").read_text()
    assert "(INSTRUCTORS.md)" in (root / "README.md").read_text()
    for lab in LABS:
        if not lab.draft:
            assert f"`{lab.notebook}.ipynb`" in guide, f"the guide never names {lab.notebook}"
    assert "python -m labsupport.classroom merge" in guide
