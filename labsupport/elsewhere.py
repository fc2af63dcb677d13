"""Run a learner's function in fresh Python interpreters, as other processes of theirs would.

A check about processes (partitioning, deduplication across producers) cannot
run every "process" in the checking kernel: state kept in a module-level dict
and Python's per-process ``hash()`` of a str then look stable. ``call_elsewhere``
sends the function's source and the globals it uses (modules by name, values
pickled) to a new interpreter with its own ``PYTHONHASHSEED``, and calls it there.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import pickle
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from typing import Any

from .engine import Unmet

__all__ = ["call_elsewhere", "uses"]

_CHILD = r"""
import importlib, pickle, sys
payload = pickle.loads(sys.stdin.buffer.read())
namespace = {"__name__": "__elsewhere__"}
for name, (kind, value) in payload["globals"].items():
    namespace[name] = importlib.import_module(value) if kind == "module" else value
exec(compile(payload["source"], "<your function>", "exec"), namespace)
function = namespace[payload["name"]]
results = []
for args in payload["calls"]:
    try:
        results.append(("ok", function(*args)))
    except Exception as error:
        results.append(("error", f"{type(error).__name__}: {error}"))
sys.stdout.buffer.write(pickle.dumps(results))
"""


def _codes(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def uses(function: Callable[..., Any], name: str) -> bool:
    """Whether ``function`` (or a function inside it) refers to ``name``."""
    return any(name in code.co_names for code in _codes(function.__code__))


def _source(function: Callable[..., Any]) -> tuple[str, str]:
    """Source that defines ``function`` at module level, and the name it gets there."""
    code = function.__code__
    if function.__name__ != "<lambda>":
        return textwrap.dedent(inspect.getsource(function)), function.__name__
    text = "".join(linecache.getlines(code.co_filename))
    arguments = list(code.co_varnames[:code.co_argcount])
    for node in ast.walk(ast.parse(text)):
        if (isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno
                and [a.arg for a in node.args.args] == arguments):
            segment = ast.get_source_segment(text, node)
            if segment:
                return f"_function = {segment}\n", "_function"
    raise OSError("no source")


def _globals(function: Callable[..., Any]) -> dict[str, tuple[str, Any]]:
    """The globals and closure values ``function`` uses: modules by name, the rest pickled."""
    closure = dict(zip(function.__code__.co_freevars,
                       (cell.cell_contents for cell in function.__closure__ or ()), strict=True))
    found: dict[str, tuple[str, Any]] = {}
    names = {name for code in _codes(function.__code__)
             for name in (*code.co_names, *code.co_freevars)}
    for name in sorted(names):
        if name in closure:
            value = closure[name]
        elif name in function.__globals__:
            value = function.__globals__[name]
        else:
            continue
        if isinstance(value, types.ModuleType):
            found[name] = ("module", value.__name__)
            continue
        try:
            pickle.dumps(value)
        except Exception:  # a function of the notebook's, say: it is not there either
            continue
        found[name] = ("value", value)
    return found


def call_elsewhere(function: Callable[..., Any], calls: list[tuple[Any, ...]], *,
                   hash_seed: int, timeout: float = 10) -> list[tuple[str, Any]]:
    """``function(*args)`` for each of ``calls``, in a new interpreter: ("ok", result) or
    ("error", "Type: message") per call. Raises :class:`Unmet` if it cannot run there."""
    try:
        source, name = _source(function)
    except (OSError, TypeError, SyntaxError):
        raise Unmet(f"the check runs {function.__name__} in other processes, as other "
                    "producers would, and could not read its source: define it with def in "
                    "a cell of its own") from None
    payload = pickle.dumps({"source": source, "name": name, "globals": _globals(function),
                            "calls": calls})
    env = os.environ | {"PYTHONHASHSEED": str(hash_seed)}
    run = subprocess.run([sys.executable, "-c", _CHILD], input=payload, capture_output=True,
                         env=env, timeout=timeout, check=False)
    if run.returncode != 0:
        last = (run.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise Unmet(f"{function.__name__} fails in another process ({last}): everything it "
                    "uses must come with it (import modules at the top of the cell)")
    results: list[tuple[str, Any]] = pickle.loads(run.stdout)
    return results
