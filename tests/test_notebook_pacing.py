"""Every lab is paced for a workshop: it says what and how long, lets the learner act early,
marks what can be skipped, plots what it measures, and ends with a recap, the specifications,
the learner's progress and the way on."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tools.pacing import in_deep_dives, is_hands_on, pacing

ROOT = Path(__file__).resolve().parent.parent

NOTEBOOKS = ROOT / "notebooks"
LABS = ["00-start-here", "01-rest", "02-graphql", "03-grpc", "04-websockets", "05-sse",
        "06-long-polling", "07-queues-vs-direct", "08-choosing-a-protocol",
        "09-interview-questions"]
PLOTTED = ["02-graphql", "03-grpc", "04-websockets", "06-long-polling"]
#: Labs whose first quarter holds a checked exercise, not only a prediction.
CHECKED_EARLY = ["01-rest", "02-graphql", "03-grpc", "04-websockets", "05-sse",
                 "06-long-polling", "07-queues-vs-direct", "08-choosing-a-protocol",
                 "09-interview-questions"]


def cells(name: str) -> list[nbformat.NotebookNode]:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells


@pytest.mark.parametrize("name", LABS)
def test_the_opening_says_what_you_learn_need_how_long_and_what_is_core(name):
    opening = cells(name)[0].source
    for words in ("**You will learn**", "**You need**", "**How long:** about",
                  "**Core and deep dives:**"):
        assert words in opening, f"{name} does not open with {words!r}"
    assert re.search(r"\*\*How long:\*\* about \d+ minutes", opening)


@pytest.mark.parametrize("name", LABS[1:])
def test_deep_dives_are_marked_in_their_headings(name):
    notebook = cells(name)
    marked = in_deep_dives(notebook)
    assert any(marked), f"{name} marks no section as a deep dive"
    assert not any(marked[:2]), "the opening itself is core"
    stubs = [i for i, cell in enumerate(notebook) if cell.metadata.get("exercise")]
    assert not any(marked[i] for i in stubs), "exercises are never inside a deep dive"


@pytest.mark.parametrize("name", LABS)
def test_the_learner_acts_within_the_first_quarter(name):
    paced = pacing(NOTEBOOKS / f"{name}.ipynb")
    assert paced.first_hands_on is not None
    assert paced.hands_on_fraction <= 0.25, f"{name}: first hands-on cell at {paced}"


@pytest.mark.parametrize("name", CHECKED_EARLY)
def test_code_of_the_learners_own_is_checked_within_the_first_quarter(name):
    notebook = cells(name)
    first = next(i for i, cell in enumerate(notebook) if cell.metadata.get("exercise"))
    assert first <= 0.25 * len(notebook), f"{name}: first exercise at {first} of {len(notebook)}"


@pytest.mark.parametrize("name", LABS)
def test_a_prediction_runs_unanswered_and_is_then_revealed(name):
    notebook = cells(name)
    for i, cell in enumerate(notebook):
        if cell.metadata.get("predict"):
            variable = re.fullmatch(r"(\w+) = \.\.\.  # .+", cell.source)
            assert variable, f"a prediction is `name = ...  # what to guess`: {cell.source!r}"
            later = "".join(c.source for c in notebook[i + 1:i + 4])
            assert f"reveal({variable.group(1)}, " in later


@pytest.mark.parametrize("name", LABS)
def test_every_hands_on_cell_is_a_code_cell(name):
    assert all(cell.cell_type == "code" for cell in cells(name) if is_hands_on(cell))


@pytest.mark.parametrize("name", LABS)
def test_the_closing_has_a_recap_specifications_progress_and_the_way_on(name):
    notebook = cells(name)
    recap = [cell.source for cell in notebook if re.search(r"^## Recap$", cell.source, re.M)]
    assert len(recap) == 1, f"{name} has no single recap"
    specifications = recap[0].partition("### Specifications")[2]
    assert re.search(r"\]\(https://", specifications), f"{name} links to no specification"
    assert any(cell.cell_type == "code" and cell.source == f'progress("{name}")'
               for cell in notebook), f'{name} does not end with progress("{name}")'
    way_on = notebook[-1].source
    assert "**Next:**" in way_on
    assert name == "00-start-here" or "**Previous:**" in way_on
    for target in re.findall(r"\]\(([\w.-]+\.ipynb)\)", way_on):
        assert (NOTEBOOKS / target).exists(), f"{name} links to {target}"


@pytest.mark.parametrize("name", PLOTTED)
def test_measured_numbers_are_plotted_by_the_cells(name):
    plotted = [cell for cell in cells(name)
               if cell.cell_type == "code" and "plots.ratio_bars(" in cell.source]
    assert plotted, f"{name} plots nothing"
    for cell in plotted:
        shown = [output.get("data", {}) for output in cell.outputs]
        assert any("image/png" in data for data in shown), "the stored figure is missing"
        assert any(re.fullmatch(r"<Figure size \d+x\d+ with 1 Axes>", data.get("text/plain", ""))
                   for data in shown)


#: Labs of questions, each question followed by its own checked practice (issue 20).
PRACTICE_PER_QUESTION = {"09-interview-questions": r"^## Q\d "}


@pytest.mark.parametrize("name", list(PRACTICE_PER_QUESTION))
def test_a_checked_practice_follows_each_question(name):
    notebook = cells(name)
    starts = [i for i, cell in enumerate(notebook) if cell.cell_type == "markdown"
              and re.search(PRACTICE_PER_QUESTION[name], cell.source, re.M)]
    ends = [*starts[1:], next(i for i, cell in enumerate(notebook)
                              if i > starts[-1] and cell.source.startswith("## "))]
    unpractised = [notebook[a].source.splitlines()[0] for a, b in zip(starts, ends, strict=True)
                   if not any(cell.metadata.get("exercise") for cell in notebook[a:b])]
    assert not unpractised, f"no checked practice after {unpractised}"


@pytest.mark.parametrize("name", [lab for lab in LABS[1:] if lab not in PRACTICE_PER_QUESTION])
def test_three_to_five_exercises(name):
    """Three to five exercises; a lab whose first quarter holds one (the learner's first
    checked code) may have a sixth."""
    notebook = cells(name)
    stubs = [i for i, cell in enumerate(notebook) if cell.metadata.get("exercise")]
    early = [i for i in stubs if i <= 0.25 * len(notebook)]
    assert len(early) <= 1, f"{name} has {len(early)} exercises in its first quarter"
    assert 3 <= pacing(NOTEBOOKS / f"{name}.ipynb").exercises <= 5 + len(early)
