"""Every lab is paced for a workshop: it says what and how long, lets the learner act early,
marks what can be skipped, plots what it measures, and ends with a recap, the specifications,
the learner's progress and the way on."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from labsupport import labs as registry
from tools.notebooks import refresh, reveals
from tools.pacing import (
    EXERCISE_MINUTES,
    FILL,
    PATHS,
    cell_minutes,
    in_deep_dives,
    is_hands_on,
    pacing,
    path_table,
    section_table,
    sections,
)

ROOT = Path(__file__).resolve().parent.parent

NOTEBOOKS = ROOT / "notebooks"
#: Every lab's notebook and its pacing facts, from the registry of labs.
LABS = [lab.notebook for lab in registry.LABS]
PLOTTED = [lab.notebook for lab in registry.LABS if lab.plotted]
#: Labs whose first quarter holds a checked exercise, not only a prediction.
CHECKED_EARLY = [lab.notebook for lab in registry.LABS if lab.checked_early]
DRAFTS = {lab.notebook for lab in registry.LABS if lab.draft}


def cells(name: str) -> list[nbformat.NotebookNode]:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells


def test_every_notebook_is_a_registered_lab():
    assert sorted(LABS) == sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))


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
    assert paced.hands_on_fraction is not None  # None: no hands-on cell at all
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
def test_a_predictions_answer_is_not_stored_before_the_learner_runs_it(name):
    """The cells from a prediction to its reveal that show the answer ship without output
    (``reveals``), and nbval runs them without comparing; the reveal cell is always one."""
    notebook = cells(name)
    for i, cell in enumerate(notebook):
        if cell.metadata.get("predict"):
            [revealing] = [j for j in range(i + 1, i + 4)
                           if "reveal(" in notebook[j].source]
            assert reveals(notebook[revealing]), f"{name}: cell {revealing} reveals, unmarked"
    for i, cell in enumerate(notebook):
        if reveals(cell):
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{name}: cell {i} stores the answer it reveals")
            assert "nbval-ignore-output" in cell.metadata.get("tags", []), (
                f"{name}: cell {i} has no stored output, so nbval must not compare it")


def test_a_refresh_leaves_the_revealing_cells_empty(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print('shown')"),
        nbformat.v4.new_code_cell("print('the answer')", metadata={"reveals": True}),
    ])
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    refresh([path])
    shown, hidden = nbformat.read(path, as_version=4).cells
    assert shown.outputs[0]["text"] == "shown\n"
    assert hidden.outputs == [] and hidden.execution_count is None


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
    plotted = [cell for cell in cells(name) if cell.cell_type == "code"
               and any("image/png" in output.get("data", {}) for output in cell.outputs)]
    assert plotted, f"{name} plots nothing"
    for cell in plotted:
        shown = [output.get("data", {}) for output in cell.outputs]
        assert any("image/png" in data for data in shown), "the stored figure is missing"
        assert any(re.fullmatch(r"<Figure size \d+x\d+ with \d+ Axes>", data.get("text/plain", ""))
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
    checked code) may have a sixth. A draft (``Lab.draft``, just scaffolded) is not held to it."""
    if name in DRAFTS:
        pytest.skip(f"{name} is a draft (labsupport.labs.LABS): three exercises make it whole")
    notebook = cells(name)
    stubs = [i for i, cell in enumerate(notebook) if cell.metadata.get("exercise")]
    early = [i for i in stubs if i <= 0.25 * len(notebook)]
    assert len(early) <= 1, f"{name} has {len(early)} exercises in its first quarter"
    assert 3 <= pacing(NOTEBOOKS / f"{name}.ipynb").exercises <= 5 + len(early)


GUIDE = ROOT / "INSTRUCTORS.md"
#: The labs the guide's paths use: its table of sections covers them.
PATH_LABS = LABS[:7]


@pytest.mark.parametrize("name", LABS)
def test_every_exercise_states_its_difficulty(name):
    """An exercise's minutes come from its difficulty, stated in its heading or prompt."""
    timed = [d for s in sections(NOTEBOOKS / f"{name}.ipynb") for _, d in s.exercises]
    assert len(timed) == pacing(NOTEBOOKS / f"{name}.ipynb").exercises
    assert set(timed) <= set(EXERCISE_MINUTES)


@pytest.mark.parametrize("name", PATHS)
def test_every_slot_of_a_path_fits_with_ten_percent_to_spare(name):
    length, slots = PATHS[name]
    assert sum(slot.minutes for slot in slots) == length, f"{name}: slots do not add up"
    for slot in slots:
        assert slot.planned_minutes() <= FILL * slot.minutes, (
            f"{name}, {slot.notebook}: {slot.planned_minutes():.1f} minutes planned in a "
            f"{slot.minutes}-minute slot (at most {FILL:.0%} of it)")


def test_a_plan_that_overfills_its_slot_is_caught():
    _, slots = PATHS["three-hour workshop"]
    crowded = next(slot for slot in slots if slot.notebook == "01-rest")
    everything = type(crowded)(crowded.minutes, "01-rest", "all", sections=("opening", "1 ·",
                               "2 ·", "3 ·", "5 ·", "6 ·", "8 ·", "10 ·"), exercises=(1, 2, 3))
    assert everything.planned_minutes() > FILL * crowded.minutes


@pytest.mark.parametrize("name", PATHS)
def test_the_guide_shows_each_path_as_the_pacing_tool_plans_it(name):
    assert path_table(name) in GUIDE.read_text(encoding="utf-8"), (
        f"INSTRUCTORS.md's {name} differs from tools.pacing.PATHS: paste "
        f"`python -m tools.pacing --paths`")


def test_the_guide_shows_the_time_of_every_section():
    assert section_table(PATH_LABS) in GUIDE.read_text(encoding="utf-8"), (
        "INSTRUCTORS.md's table of sections is stale: paste `python -m tools.pacing --guide`")


#: An opening's "How long": the core, deep dives and exercises, or one total.
HOW_LONG = re.compile(r"\*\*How long:\*\* about (\d+) minutes(?: to read and run the core, (\d+) "
                      r"more for the deep dives?, and about (\d+))?")


@pytest.mark.parametrize("name", LABS)
def test_the_opening_says_how_long_as_the_pacing_tool_counts(name):
    """The minutes a notebook's opening promises are the pacing tool's, to the nearest five."""
    path = NOTEBOOKS / f"{name}.ipynb"
    found = HOW_LONG.search("\n".join(cell.source for cell in cells(name)))
    assert found, f"{name}: no '**How long:** about N minutes' in its opening"
    deep = pacing(path).deep_dive_minutes
    core = sum(cell_minutes(cell) for cell in cells(name)) - deep
    exercises = sum(EXERCISE_MINUTES[d] for section in sections(path) for _, d in section.exercises)
    said = [int(n) for n in found.groups() if n is not None]
    counted = [core, deep, exercises] if len(said) == 3 else [core + deep + exercises]
    assert all(abs(s - c) <= 5 for s, c in zip(said, counted, strict=True)), (
        f"{name} says {said} minutes; tools.pacing counts {[round(c) for c in counted]}")
