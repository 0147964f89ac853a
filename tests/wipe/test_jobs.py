"""A job's plan of steps: one type per kind of step, stored as a tagged union; plans
written by an older daemon (every field on every step) still load and resume."""

from __future__ import annotations

import msgspec

from mfpsecd.wipe.jobs import (
    BytePass,
    CheckStep,
    DeviceStep,
    JobPlan,
    RandomPass,
    SampleStep,
    StepKind,
    VerifyStep,
    describe,
    last_pass,
    step_spec,
)
from mfpsecd.wipe.model.overwrite_plan import PassKind

OLD_PLAN = (
    b'{"standard":"DoD 5220.22-M","reason":"","steps":['
    b'{"kind":"byte","byte":255,"key":"","name":""},'
    b'{"kind":"random","byte":0,"key":"00112233","name":""},'
    b'{"kind":"verify","byte":0,"key":"","name":""}],"purge":null,"marker":null}'
)


def test_a_plan_from_an_older_daemon_loads_as_typed_steps() -> None:
    plan = msgspec.json.decode(OLD_PLAN, type=JobPlan)
    assert plan.steps == [BytePass(0xFF), RandomPass("00112233"), VerifyStep()]
    assert [s.kind for s in plan.steps] == [StepKind.BYTE, StepKind.RANDOM, StepKind.VERIFY]
    assert [describe(s) for s in plan.steps] == ["0xFF", "random", "verify"]
    assert last_pass(plan) == RandomPass("00112233")
    assert step_spec(last_pass(plan)).kind is PassKind.RANDOM


def test_each_step_stores_only_its_own_fields_and_comes_back() -> None:
    plan = JobPlan("NIST", "", [SampleStep(), DeviceStep("nvme-format-erase"), CheckStep()])
    data = msgspec.json.encode(plan)
    assert b'{"kind":"device","name":"nvme-format-erase"}' in data
    assert b'{"kind":"sample"}' in data and b'"byte"' not in data
    assert msgspec.json.decode(data, type=JobPlan) == plan
    assert [describe(s) for s in plan.steps] == ["sample", "nvme-format-erase", "check"]
