"""Every reference solution has type hints (CONTRIBUTING.md, "Type hints (one rule)").

A learner reads a reference with ``solution(id)``, and ``tests/test_notebook_solutions.py``
runs it in the notebook's exercise cell, where (without ``from __future__ import
annotations``) its annotations are evaluated: so they also have to name what that notebook
imports. This test checks that they are there: every parameter and every return of a
function, and of a class the ``__init__`` and public methods it defines.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from labsupport.engine import Exercise, _load_all
from labsupport.labs import LABS

LAB_MODULES = {f"{lab.package}.exercises" for lab in LABS}


def lab_exercises() -> list[Exercise]:
    """The exercises the labs register (not those tests register for themselves)."""
    registry = _load_all()
    return [registry[id] for id in sorted(registry)
            if registry[id].checker.__module__ in LAB_MODULES]


def functions_of(reference: Callable[..., Any]) -> list[tuple[str, Any, bool]]:
    """``(name, function, takes self or cls first)`` for what a reference shows the learner:
    the function itself, or the ``__init__`` and public methods a class defines."""
    if not inspect.isclass(reference):
        return [(reference.__qualname__, reference, False)]
    source_file = inspect.getsourcefile(reference)
    found = []
    for name, member in vars(reference).items():
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            continue  # private helpers may leave hints out
        bound = not isinstance(member, staticmethod)
        function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
        # Only what the class's source shows: not what @dataclass generates.
        if inspect.isfunction(function) and function.__code__.co_filename == source_file:
            found.append((f"{reference.__qualname__}.{name}", function, bound))
    return found


def missing_hints(function: Any, bound: bool) -> list[str]:
    """The parameters (and ``return``) of ``function`` without an annotation."""
    annotations = function.__annotations__  # as written; evaluating is the notebook's test
    parameters = list(inspect.signature(function).parameters)
    if bound:
        parameters = parameters[1:]  # self, cls
    return [name for name in [*parameters, "return"] if name not in annotations]


EXERCISES = lab_exercises()


def test_the_labs_register_exercises() -> None:
    assert len(EXERCISES) > 30


@pytest.mark.parametrize("ex", EXERCISES, ids=[ex.id for ex in EXERCISES])
def test_the_reference_solution_has_type_hints(ex: Exercise) -> None:
    unannotated = {name: missing for name, function, bound in functions_of(ex.reference)
                   if (missing := missing_hints(function, bound))}
    assert not unannotated, (
        f"{ex.id}: the reference solution lacks type hints (CONTRIBUTING.md, 'Type hints'): "
        + "; ".join(f"{name}: {', '.join(missing)}" for name, missing in unannotated.items())
        + ". Annotate them with names its notebook imports before the exercise cell.")


def test_missing_hints_are_found() -> None:
    def untyped(a, b: int = 1):
        return a

    @dataclasses.dataclass
    class Typed:
        x: int

        def __post_init__(self) -> None:
            self.x += 1

        @staticmethod
        def make(y) -> int:
            return 1

        def _helper(self, z):
            return z

    assert missing_hints(untyped, bound=False) == ["a", "return"]
    assert [(name, missing_hints(f, bound)) for name, f, bound in functions_of(Typed)] == [
        ("test_missing_hints_are_found.<locals>.Typed.__post_init__", []),
        ("test_missing_hints_are_found.<locals>.Typed.make", ["y"]),
    ]
