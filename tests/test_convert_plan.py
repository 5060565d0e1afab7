"""The convert plan, entry by entry: what is mapped, transformed, cast, allowed, skipped or refused."""

from __future__ import annotations

import re

import pytest

from inspector.align.transforms import Transform
from inspector.convert_emit import transform_expr
from inspector.convert_plan import ConvertError, check_dtype, compile_regex, plan_conversion, split_source
from inspector.diffing import DiffEntry, Status
from inspector.records import VariableRecord


def linen(path: str, shape=(4, 2), dtype="float32", collection="params", type_="Param") -> VariableRecord:
    return VariableRecord(tuple(path.split("/")), type_, shape, dtype, 8, 32, collection)


def nnx_(path: str, shape=(4, 2), dtype="float32", type_="Param") -> VariableRecord:
    keys = tuple(int(k) if k.isdigit() else k for k in path.split("/"))
    return VariableRecord(keys, type_, shape, dtype, 8, 32)


KERNEL, LINEAR = linen("Dense_0/kernel"), nnx_("linear/kernel")
RNG_KEY = nnx_("dropout/rngs/key", (), "key<fry>", "RngKey")

CASES = [
    ("renamed", [DiffEntry(Status.RENAMED, KERNEL, LINEAR)], {"moves": 1}),
    ("transpose", [DiffEntry(Status.TRANSFORMED, KERNEL, nnx_("linear/weight", (2, 4)),
                             transform=Transform.transpose((1, 0)))], {"moves": 1, "transformed": 1}),
    ("concat q k", [DiffEntry(Status.TRANSFORMED, linen("q/kernel"), nnx_("qk/kernel", (4, 4)),
                              transform=Transform.concat(1), left_parts=(linen("q/kernel"), linen("k/kernel")))],
     {"moves": 1, "transformed": 1}),
    ("split gating", [DiffEntry(Status.TRANSFORMED, linen("mlp/gating", (2, 4, 3)), nnx_("mlp/gate", (4, 3)),
                                transform=Transform.chain(Transform.split(0, 0, 2), Transform.reshape((4, 3))))],
     {"moves": 1, "transformed": 1}),
    ("transform that does not fit", [DiffEntry(Status.TRANSFORMED, KERNEL, nnx_("linear/weight", (4, 2)),
                                               transform=Transform.transpose((1, 0)))], {"refused": 1}),
    ("cast", [DiffEntry(Status.DTYPE, KERNEL, nnx_("linear/kernel", dtype="bfloat16"), ("dtype",))],
     {"moves": 1, "casts": 1}),
    ("shape without transform", [DiffEntry(Status.SHAPE, KERNEL, nnx_("linear/kernel", (2, 4)), ("shape",))],
     {"refused": 1}),
    ("kind", [DiffEntry(Status.TYPE, KERNEL, nnx_("linear/kernel", type_="BatchStat"), ("type",))], {"refused": 1}),
    ("rng kept", [DiffEntry(Status.RNG_ONLY, None, RNG_KEY)], {"rng": 1}),
    ("missing", [DiffEntry(Status.RIGHT_ONLY, None, LINEAR)], {"refused": 1}),
    ("unused", [DiffEntry(Status.LEFT_ONLY, KERNEL, None)], {"refused": 1}),
    ("optimizer state", [DiffEntry(Status.LEFT_ONLY, linen("opt_state/0/count", (), "int32", None, "OptState"),
                                   None)], {"not_converted": 1}),
]


@pytest.mark.parametrize("entries, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_entry_is_accounted_for(entries, expected):
    plan = plan_conversion(entries)
    got = {"moves": len(plan.moves), "transformed": len(plan.transformed), "casts": len(plan.casts),
           "rng": len(plan.rng), "refused": len(plan.refused), "not_converted": len(plan.not_converted)}
    assert {k: v for k, v in got.items() if v} == expected
    assert plan.ok == (not expected.get("refused"))


def test_refusals_name_the_nearest_candidate_and_render_as_json():
    entries = [DiffEntry(Status.LEFT_ONLY, linen("Dense_0/kernal"), None),
               DiffEntry(Status.RIGHT_ONLY, None, nnx_("dense/kernel")),
               DiffEntry(Status.RIGHT_ONLY, None, nnx_("other/bias", (7,)))]
    plan = plan_conversion(entries)
    by_right = {r.right.name if r.right else None: r for r in plan.refused}
    assert by_right[None].nearest == "dense/kernel"
    assert by_right["dense/kernel"].nearest == "params/Dense_0/kernal"
    data = plan.to_json()
    assert not data["ok"] and {"status", "left", "right", "reason", "nearest"} <= set(data["refused"][0])
    assert "initial value" in by_right["dense/kernel"].reason


def test_allow_regexes_match_paths_without_the_collection():
    entries = [DiffEntry(Status.LEFT_ONLY, linen("head/kernel"), None),
               DiffEntry(Status.RIGHT_ONLY, None, nnx_("lora/a"))]
    plan = plan_conversion(entries, allow_unused=re.compile(r"^head/"), allow_missing=re.compile("lora"))
    assert plan.ok and [(a.side, a.record.name) for a in plan.allowed] == [("unused", "head/kernel"),
                                                                          ("missing", "lora/a")]
    assert not plan_conversion(entries, allow_unused=re.compile(r"^params/head")).ok  # collection not in the path


def test_dtype_override_applies_to_float_weights_only():
    count = nnx_("count", (), "int32", "Counter")
    plan = plan_conversion([DiffEntry(Status.RENAMED, KERNEL, LINEAR),
                            DiffEntry(Status.RENAMED, linen("count", (), "int32", "counter", "counter"), count)],
                           dtype="bfloat16")
    assert [(m.right.name, m.dtype) for m in plan.moves] == [("linear/kernel", "bfloat16"), ("count", "int32")]
    assert [c["to"] for c in plan.to_json()["casts"]] == ["bfloat16"]


def test_trainstate_optimizer_state_and_step_are_never_aligned():
    weights, skipped = split_source([KERNEL, linen("step", (), "int32", None, "OptState")])
    assert weights == [KERNEL] and [r.name for r in skipped] == ["step"]


@pytest.mark.parametrize("call, message", [
    (lambda: compile_regex("(", "--allow-missing"), "--allow-missing '\\(' is not a regular expression"),
    (lambda: check_dtype("floot32"), "is not a dtype"),
    (lambda: check_dtype("int8"), "not a floating-point dtype"),
], ids=["regex", "dtype name", "integer dtype"])
def test_bad_options_are_named(call, message):
    with pytest.raises(ConvertError, match=message):
        call()


@pytest.mark.parametrize("transform, args, expected", [
    (Transform.transpose((1, 0)), ["x"], "x.transpose((1, 0))"),
    (Transform.concat(1), ["a", "b"], "np.concatenate([a, b], axis=1)"),
    (Transform.chain(Transform.split(0, 1, 2), Transform.reshape((4, 3))), ["g"],
     "np.split(g, 2, axis=0)[1].reshape((4, 3))"),
], ids=["transpose", "concat", "split then reshape"])
def test_emitted_expressions_read_like_numpy(transform, args, expected):
    assert transform_expr(transform, args) == expected


def test_alignment_observations_are_carried_as_notes():
    entry = DiffEntry(Status.RENAMED, KERNEL, LINEAR, info=("ambiguous: two same-shape candidates",))
    plan = plan_conversion([entry])
    assert plan.ok and plan.to_json()["notes"] == ["params/Dense_0/kernel → linear/kernel: ambiguous: two "
                                                   "same-shape candidates"]
