"""Member phases and the make-before-break switch (SPEC §8), pure."""

from __future__ import annotations

from lbmanager.plan.phases import (
    Phase,
    PollDelay,
    Switch,
    elb_phase,
    elbv2_phase,
    observed_phases,
    waiting_switch,
)

A, B = "i-0000000a", "i-0000000b"


def test_classic_elb_states_and_descriptions() -> None:
    """InService is healthy; OutOfService reads its description; Unknown is pending."""
    assert elb_phase("InService", "N/A") is Phase.HEALTHY
    assert elb_phase("OutOfService", "Instance deregistration currently in progress.") is (
        Phase.DRAINING
    )
    assert elb_phase("OutOfService", "Instance registration is still in progress.") is (
        Phase.PENDING
    )
    assert elb_phase(
        "OutOfService", "Instance is not currently registered with the LoadBalancer."
    ) is (Phase.GONE)
    assert elb_phase("OutOfService", "Instance has failed at least the UnhealthyThreshold number "
                     "of health checks consecutively.") is Phase.UNHEALTHY  # fmt: skip
    assert elb_phase("Unknown", "A transient error occurred.") is Phase.PENDING


def test_elbv2_states() -> None:
    """initial is pending, unavailable and unused are unhealthy, draining drains."""
    found = {s: elbv2_phase(s) for s in ("initial", "healthy", "unavailable", "unused", "draining")}
    assert found == {
        "initial": Phase.PENDING,
        "healthy": Phase.HEALTHY,
        "unavailable": Phase.UNHEALTHY,
        "unused": Phase.UNHEALTHY,
        "draining": Phase.DRAINING,
    }


def test_observed_phases_of_wanted_and_leaving_members() -> None:
    """Unobserved wanted members are pending; a leaving one no longer listed is gone."""
    health = {A: Phase.HEALTHY, "x": Phase.DRAINING}
    found = observed_phases({A, B}, frozenset({A, B}), health, leaving={"x", "y"})
    assert found == {A: Phase.HEALTHY, B: Phase.PENDING, "x": Phase.DRAINING, "y": Phase.GONE}


def test_a_single_switch_waits_for_the_new_member() -> None:
    """A stays until B is healthy; a rollback to a healthy A, `none`, or multiple: no wait."""
    current = frozenset({A})
    waiting = waiting_switch(frozenset({B}), current, {A: Phase.HEALTHY}, single=True, wait=True)
    assert waiting == Switch(frozenset({A}), frozenset({B}))
    assert waiting.describe() == f"switch {A} → {B} waits for {B} to be healthy"
    healthy = {A: Phase.HEALTHY, B: Phase.HEALTHY}
    assert waiting_switch(frozenset({B}), current, healthy, single=True, wait=True) is None
    both = frozenset({A, B})
    sick = {A: Phase.HEALTHY, B: Phase.UNHEALTHY}
    assert waiting_switch(frozenset({A}), both, sick, single=True, wait=True) is None
    assert waiting_switch(frozenset({B}), current, {}, single=True, wait=False) is None
    assert waiting_switch(frozenset({B}), current, {}, single=False, wait=True) is None


def test_poll_delay_doubles_to_its_cap_and_restarts_on_a_write() -> None:
    """1, 2, 4, 8, 10, 10; a write starts again at 1."""
    delay, waits, wait = PollDelay(), [], None
    for _ in range(6):
        wait = delay.after(wait, wrote=False)
        waits.append(wait)
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert delay.after(10.0, wrote=True) == 1.0
