"""What a command that syncs needs, opened and closed together: the store, an empty sync
context, and the providers (AWS clients only for commands that talk to AWS)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

from lbmanager.controller.changes import ChangeTracker
from lbmanager.controller.guard import RemovalGuard
from lbmanager.controller.unit import Providers, SyncContext, TemplateSet
from lbmanager.keys.kinds import KINDS
from lbmanager.plan.guard import HoldReason
from lbmanager.plan.phases import Phase
from lbmanager.providers.aws import AwsClients
from lbmanager.providers.calls import CallLimits
from lbmanager.providers.elb import ElbProvider
from lbmanager.providers.elbv2 import Elbv2Provider
from lbmanager.providers.ratelimit import TokenBucket
from lbmanager.providers.route53 import Route53Provider
from lbmanager.runtime.metrics import HELD_REMOVALS, MEMBERS
from lbmanager.settings import Settings
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.phases import PhaseRecord
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Store


@contextlib.asynccontextmanager
async def open_context(
    settings: Settings, *, apply: bool, templates: TemplateSet | None = None, cloud: bool = True
) -> AsyncIterator[tuple[Store, SyncContext, Providers]]:
    """The store, an empty sync context and the providers, closed together; ``cloud`` False
    opens no AWS client (the providers then have none)."""
    store = Store(settings.endpoints(), security=settings.etcd_security())
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        providers = Providers(templates=templates)
        if cloud:
            clients = AwsClients(stack)
            route53 = Route53Provider(clients, TokenBucket(settings.route53_rps))
            providers = Providers(
                templates=templates,
                elb=ElbProvider(
                    clients,
                    _limits(
                        (settings.elb_describe_rps, settings.elb_describe_burst),
                        (settings.elb_write_rps, settings.elb_write_burst),
                    ),
                ),
                elbv2=Elbv2Provider(
                    clients,
                    _limits(
                        (settings.elbv2_describe_rps, settings.elbv2_describe_burst),
                        (settings.elbv2_write_rps, settings.elbv2_write_burst),
                    ),
                ),
                route53=route53,
                route53_changes=ChangeTracker(route53),
            )
        context = SyncContext(
            tree=Tree(settings.prefix),
            managed=ManagedTargets(store, settings.state_prefix, write=apply),
            policy=settings.policy,
            route53_ttl=settings.route53_ttl,
            apply=apply,
            guard=RemovalGuard(store, settings.state_prefix, settings.removal_delay),
            phases=PhaseRecord(store, settings.state_prefix, write=apply),
            switch_wait=settings.switch_wait == "health",
        )
        for kind in KINDS:
            for phase in Phase:
                MEMBERS.labels(kind, phase).set_function(
                    functools.partial(_count, context.phases, kind, phase)
                )
        for reason in HoldReason:
            HELD_REMOVALS.labels(reason).set_function(
                functools.partial(context.guard.members_held, reason)
            )
        yield store, context, providers


def _count(phases: PhaseRecord, kind: str, phase: Phase) -> int:
    """Members of ``kind`` published in ``phase`` (the gauge)."""
    return phases.counts(kind)[phase]


def _limits(describe: tuple[float, int], write: tuple[float, int]) -> CallLimits:
    """An API's describe and write buckets from their (rate, burst) settings."""
    return CallLimits(describe=TokenBucket(*describe), write=TokenBucket(*write))
