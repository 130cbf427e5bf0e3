"""The fault plan's handshake gate (sans-IO): Origin policy, refuse and delay faults."""

from __future__ import annotations

from wsinspect.faults.origin import OriginPolicy
from wsinspect.faults.plan import FaultPlan
from wsinspect.faults.spec import parse_fault


def test_a_refused_origin_gets_403_with_a_body_naming_the_reason() -> None:
    plan = FaultPlan(OriginPolicy.build(["https://app.example.com"]))
    gate = plan.gate(1, "/", "https://evil.example")
    assert gate.refusal is not None
    assert gate.refusal.status == 403 and gate.refusal.rule == "allow-origin"
    assert gate.refusal.body is not None
    assert gate.refusal.body.startswith(b"403 Forbidden: Origin https://evil.example is not allowed")


def test_refuse_fault_with_status_and_body() -> None:
    plan = FaultPlan(faults=[parse_fault("refuse:status=503,body=down for maintenance")])
    gate = plan.gate(1, "/", None)
    assert gate.refusal is not None
    assert (gate.refusal.status, gate.refusal.body, gate.refusal.rule) == (503, b"down for maintenance\n", "fault:refuse")
    assert [a.fault for a in gate.actions] == ["refuse"]


def test_refuse_with_probability_repeats_with_a_seed() -> None:
    def refused(seed: int) -> list[bool]:
        plan = FaultPlan(faults=[parse_fault("refuse:p=0.5")], seed=seed)
        return [plan.gate(conn, "/", None).refused for conn in range(1, 41)]

    assert refused(4) == refused(4) and refused(4) != refused(5)
    assert 5 < sum(refused(4)) < 35


def test_delay_handshake_adds_up_and_is_reported() -> None:
    plan = FaultPlan(faults=[parse_fault("delay-handshake:ms=200"),
                             parse_fault("delay-handshake:ms=300,path=^/slow")])
    assert plan.gate(1, "/slow", None).delay == 0.5
    assert plan.gate(2, "/fast", None).delay == 0.2
    assert plan.gate(2, "/fast", None).actions[0].action == "handshake held 200 ms"


def test_an_empty_plan_is_inactive_and_lets_everything_through() -> None:
    plan = FaultPlan()
    assert not plan.active
    gate = plan.gate(1, "/", "https://x.example")
    assert not gate.refused and gate.delay == 0 and not gate.actions


def test_connection_faults_follow_path_filters() -> None:
    plan = FaultPlan(faults=[parse_fault("drop:path=^/chat"), parse_fault("refuse")])
    assert plan.for_connection(1, "/chat", None).c2s.active
    assert not plan.for_connection(2, "/feed", None).c2s.active  # and refuse is not frame-level
