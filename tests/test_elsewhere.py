"""A learner's function run in fresh interpreters, as other processes of theirs would run it."""

from __future__ import annotations

import hashlib

import pytest

from labsupport.elsewhere import call_elsewhere, uses
from labsupport.engine import Unmet


def partitions_by_hash(keys, partitions):
    """Python's hash() of a string: the same within one process, not across processes."""
    return [hash(key) % partitions for key in keys]


def partitions_by_digest(keys, partitions):
    return [int(hashlib.sha256(key.encode()).hexdigest(), 16) % partitions for key in keys]


def first_time(key):
    """Memory kept in the module: right within one process only."""
    seen = globals().setdefault("_seen", set())
    fresh = key not in seen
    seen.add(key)
    return fresh


def fails(x):
    return 1 / (x - 1)


KEYS = [f"order-{n}" for n in range(20)]


def test_each_interpreter_hashes_with_the_seed_it_is_given():
    one = call_elsewhere(partitions_by_hash, [(KEYS, 8)], hash_seed=1)
    assert one == call_elsewhere(partitions_by_hash, [(KEYS, 8)], hash_seed=1)
    assert one != call_elsewhere(partitions_by_hash, [(KEYS, 8)], hash_seed=2)  # alike ~1e-18
    for seed in (1, 2):   # a digest is the same everywhere; the module it uses comes along
        assert call_elsewhere(partitions_by_digest, [(KEYS, 8)], hash_seed=seed) == [
            ("ok", partitions_by_digest(KEYS, 8))]


def test_calls_in_one_interpreter_share_its_state_and_no_other():
    assert first_time("a") and not first_time("a")
    assert call_elsewhere(first_time, [("a",), ("a",)], hash_seed=1) == [("ok", True),
                                                                         ("ok", False)]
    assert call_elsewhere(first_time, [("a",)], hash_seed=1) == [("ok", True)]


def test_a_failing_call_is_reported_with_the_others_going_on():
    assert call_elsewhere(fails, [(1,), (2,)], hash_seed=1) == [
        ("error", "ZeroDivisionError: division by zero"), ("ok", 1.0)]


def test_a_lambda_goes_along_with_what_it_closes_over():
    partitions = 8
    assert call_elsewhere(lambda key: len(key) % partitions, [("abc",)], hash_seed=1) == [
        ("ok", 3)]


def test_a_function_without_source_is_unmet():
    made = eval("lambda key: 0")  # no file holds its source
    with pytest.raises(Unmet, match="could not read its source"):
        call_elsewhere(made, [("a",)], hash_seed=1)


def test_uses_sees_names_inside_inner_functions():
    def outer(keys):
        return [(lambda k: hash(k))(key) for key in keys]

    assert uses(outer, "hash") and not uses(outer, "hashlib")
