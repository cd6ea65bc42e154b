"""The process's Prometheus metrics (SPEC §9): one registry, every name `lbmanager_`.

Defined here, at the bottom of the package, so every layer can count what it does; the status
server only serves them. Labels take values from fixed sets only (kinds, AWS operations, the
operator's templates, results): never a member, an ELB or a zone.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

SYNCS = Counter(
    "lbmanager_syncs",
    "Sync attempts of the workers, by target kind and result (ok, error, transient).",
    ["kind", "result"],
    registry=REGISTRY,
)
SYNC_DURATION = Histogram(
    "lbmanager_sync_duration_seconds",
    "How long one sync attempt of a worker took, by target kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
    registry=REGISTRY,
)
AWS_REQUESTS = Counter(
    "lbmanager_aws_requests",
    "AWS API requests, by service, operation and result (ok, throttled, error).",
    ["service", "operation", "result"],
    registry=REGISTRY,
)
TARGETS_IN_ERROR = Gauge(
    "lbmanager_targets_in_error",
    "Targets whose last sync reported an error.",
    registry=REGISTRY,
)
MALFORMED_KEYS = Gauge(
    "lbmanager_malformed_keys",
    "Keys of the tree that are ignored because they are malformed.",
    registry=REGISTRY,
)
WATCH_RECONNECTS = Counter(
    "lbmanager_etcd_watch_reconnects",
    "Times the etcd watch was opened again after it broke or failed to open.",
    registry=REGISTRY,
)
WATCH_REVISION_LAG = Gauge(
    "lbmanager_etcd_watch_revision_lag",
    "etcd's revision in the latest watch response minus the revision applied (0: caught up).",
    registry=REGISTRY,
)
ROUTE53_CHANGES_PENDING = Gauge(
    "lbmanager_route53_changes_pending",
    "Route53 changes submitted and not yet INSYNC.",
    registry=REGISTRY,
)
RELOADS = Counter(
    "lbmanager_reloads",
    "Reload commands run, by template and result (ok, error).",
    ["template", "result"],
    registry=REGISTRY,
)
HELD_REMOVALS = Gauge(
    "lbmanager_held_removals",
    "Members whose removal the removal guard holds back, by reason (release, delay).",
    ["reason"],
    registry=REGISTRY,
)
MEMBERS = Gauge(
    "lbmanager_members",
    "Members of the targets by kind and published phase (pending, healthy, unhealthy, "
    "draining, gone).",
    ["kind", "phase"],
    registry=REGISTRY,
)
LEADER = Gauge(
    "lbmanager_leader",
    "1 while this process leads (writes to the cloud), else 0.",
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The metrics in Prometheus text format."""
    return generate_latest(REGISTRY)
