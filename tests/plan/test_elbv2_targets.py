"""ELBv2 members resolved against their target group, and what counts as registered (pure)."""

from __future__ import annotations

import pytest

from lbmanager.plan.targets import Resolved, registered, resolve_targets

ID = "i-0123abcd"


@pytest.mark.parametrize(
    ("members", "port", "target_type", "expected"),
    [
        pytest.param({ID}, 80, "instance", Resolved(frozenset({f"{ID}:80"})), id="group-port"),
        pytest.param(
            {ID, f"{ID}:80"}, 80, "instance", Resolved(frozenset({f"{ID}:80"})), id="one-member"
        ),
        pytest.param(
            {ID, f"{ID}:8080"},
            80,
            "instance",
            Resolved(frozenset({f"{ID}:80", f"{ID}:8080"})),
            id="two-ports",
        ),
        pytest.param(
            {"10.0.0.7", "[2001:db8::7]", "10.0.0.8:81"},
            80,
            "ip",
            Resolved(frozenset({"10.0.0.7:80", "[2001:db8::7]:80", "10.0.0.8:81"})),
            id="ip",
        ),
        pytest.param(
            {"10.0.0.7", ID},
            80,
            "instance",
            Resolved(
                frozenset({f"{ID}:80"}),
                ("10.0.0.7: target group web (type instance) takes an instance id",),
            ),
            id="ip-in-instance-group",
        ),
        pytest.param(
            {ID, "10.0.0.7"},
            80,
            "ip",
            Resolved(
                frozenset({"10.0.0.7:80"}),
                (f"{ID}: target group web (type ip) takes an IP address",),
            ),
            id="instance-in-ip-group",
        ),
        pytest.param(
            {ID},
            None,
            "lambda",
            Resolved(frozenset(), (f"{ID}: target group web is of type lambda",)),
            id="lambda",
        ),
        pytest.param(
            {ID, f"{ID}:8080"},
            None,
            "instance",
            Resolved(
                frozenset({f"{ID}:8080"}),
                (f"{ID}: target group web has no port; give one ({ID}:80)",),
            ),
            id="no-port",
        ),
    ],
)
def test_resolve_targets(
    members: set[str], port: int | None, target_type: str, expected: Resolved
) -> None:
    """Each member gets the group's port unless it has its own; misfits are refused by name."""
    resolved = resolve_targets(members, group="web", port=port, target_type=target_type)
    assert resolved == expected


def test_draining_targets_are_not_registered() -> None:
    """Every listed state counts as registered but draining (unused: a group no LB uses)."""
    health = {"a:80": "healthy", "b:80": "draining", "c:80": "unused", "d:80": "initial"}
    assert registered(health) == {"a:80", "c:80", "d:80"}
