"""Routing of targets to workers (pure): one worker per ELB, per hosted zone, per template."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import Any

from harness import FAST_BACKOFF
from servers import HOST

from lbmanager.controller.dispatcher import Dispatcher, local_kinds, unit_factory, workers_of
from lbmanager.controller.elb import ElbUnit
from lbmanager.controller.unit import Providers, SyncContext, SyncUnit, TargetResult
from lbmanager.controller.zone import ZoneUnit
from lbmanager.keys.paths import parse_target_path
from lbmanager.keys.target import Target
from lbmanager.providers.api import RecordChange, RecordSet
from lbmanager.render.unit import TemplateUnit
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Store

WEB = parse_target_path("elb/us-east-1/web")
SHOP = parse_target_path("elb/us-east-1/shop")
WEB_EU = parse_target_path("elb/eu-west-1/web")
WWW = parse_target_path("route53/us-east-1/Z1/www.example.com")
API = parse_target_path("route53/us-east-1/Z1/api.example.com")
MAIL = parse_target_path("route53/us-east-1/Z2/mail.example.org")
# Route53 is global per partition: a key's region only picks the partition's endpoint.
WWW_EU = parse_target_path("route53/eu-west-1/Z1/www.example.com")
WWW_CN = parse_target_path("route53/cn-north-1/Z1/www.example.com")
BACKEND = parse_target_path("upstream/backend")
STATIC = parse_target_path("upstream/static")
LONELY = parse_target_path("upstream/lonely")


def template(name: str) -> Target:
    """The pseudo-target of template ``name``."""
    return Target("template", "", name)


class FakeTemplates:
    """The TemplateSet Protocol over a table: template name -> upstreams it renders."""

    def __init__(self, renders: dict[str, set[str]]) -> None:
        self.renders = renders

    def targets(self) -> list[Target]:
        """One target per template."""
        return [template(name) for name in self.renders]

    def using(self, upstream: str) -> list[Target]:
        """The templates that render ``upstream``."""
        return [template(name) for name, ups in self.renders.items() if upstream in ups]

    def unit(self, name: str, context: SyncContext) -> SyncUnit:
        """Routing never builds a unit."""
        raise AssertionError(f"unit({name!r}) built while routing")


TEMPLATES = FakeTemplates({"site": {"backend", "static"}, "api": {"backend"}})


def routes(
    targets: Iterable[Target], providers: Providers, kinds: set[str] | None = None
) -> list[tuple[str, Target]]:
    """workers_of as a list."""
    return list(workers_of(targets, providers, kinds))


def test_one_worker_per_load_balancer() -> None:
    """Each classic ELB is its own worker, named by its target; regions are not merged."""
    assert routes([WEB, SHOP, WEB_EU], Providers()) == [
        ("elb/us-east-1/web", WEB),
        ("elb/us-east-1/shop", SHOP),
        ("elb/eu-west-1/web", WEB_EU),
    ]


def test_route53_names_share_their_zone_worker() -> None:
    """Names in one hosted zone share its worker; another zone has its own."""
    assert routes([WWW, API, MAIL], Providers()) == [
        ("route53/us-east-1/Z1", WWW),
        ("route53/us-east-1/Z1", API),
        ("route53/us-east-1/Z2", MAIL),
    ]


def test_zone_worker_is_per_partition_not_per_region() -> None:
    """The same zone id under another region of the same partition is the same target and
    worker; under the China partition it is another zone, with its own worker."""
    assert WWW_EU == WWW
    assert routes([WWW_EU, WWW_CN], Providers()) == [
        ("route53/us-east-1/Z1", WWW),
        ("route53/cn-northwest-1/Z1", WWW_CN),
    ]


def test_upstreams_go_to_the_templates_that_render_them() -> None:
    """An upstream has no worker of its own: each template rendering it is kicked instead;
    an upstream no template renders, or any upstream without templates, has no worker."""
    providers = Providers(templates=TEMPLATES)
    assert routes([BACKEND], providers) == [
        ("template/site", template("site")),
        ("template/api", template("api")),
    ]
    assert routes([STATIC], providers) == [("template/site", template("site"))]
    assert routes([LONELY], providers) == []
    assert routes([BACKEND, STATIC], Providers()) == []


def test_targets_of_other_kinds_get_no_worker() -> None:
    """With ``kinds`` given, only owners of those kinds get workers (what render runs)."""
    providers = Providers(templates=TEMPLATES)
    everything = [WEB, WWW, BACKEND, template("api")]
    assert routes(everything, providers, {"template"}) == [
        ("template/site", template("site")),
        ("template/api", template("api")),
        ("template/api", template("api")),
    ]
    assert routes(everything, providers, {"elb"}) == [("elb/us-east-1/web", WEB)]


def test_local_kinds_are_the_templates() -> None:
    """Only templates sync without an AWS client."""
    assert local_kinds() == {"template"}


def test_unit_factory_is_the_for_target_of_the_kind_s_unit() -> None:
    """Each kind with a unit builds it through its class's for_target."""
    assert unit_factory("elb") == ElbUnit.for_target
    assert unit_factory("route53") == ZoneUnit.for_target
    assert unit_factory("template") == TemplateUnit.for_target


class NoCalls:
    """A provider for both clouds that must not be called: routing only builds units."""

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """Never called."""
        raise AssertionError("called")

    async def register(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """Never called."""
        raise AssertionError("called")

    async def deregister(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """Never called."""
        raise AssertionError("called")

    async def zone_name(self, region: str, zone_id: str) -> str:
        """Never called."""
        raise AssertionError("called")

    async def record_sets(self, region: str, zone_id: str) -> list[RecordSet]:
        """Never called."""
        raise AssertionError("called")

    async def change(self, region: str, zone_id: str, changes: list[RecordChange]) -> None:
        """Never called."""
        raise AssertionError("called")


def dispatcher(spawned: list[str], kinds: set[str] | None = None) -> Dispatcher:
    """A Dispatcher whose spawn records each coroutine's name and closes it unrun."""

    def spawn(job: Coroutine[Any, Any, None]) -> None:
        spawned.append(job.__qualname__)
        job.close()

    def report(worker: str, results: list[TargetResult]) -> None:
        raise AssertionError("no worker runs here")

    managed = ManagedTargets(Store([(HOST, 1)]), "/lbManagerState", write=False)
    context = SyncContext(tree=Tree("/lbManager"), managed=managed)
    return Dispatcher(
        context,
        Providers(elb=NoCalls(), route53=NoCalls()),
        report,
        spawn,
        FAST_BACKOFF,
        kinds=kinds,
    )


def test_dispatcher_creates_and_spawns_one_worker_per_unit_once() -> None:
    """The first kick of a unit creates its worker and spawns its run once; later kicks reach
    the same worker, and names of a zone join its one unit."""
    spawned: list[str] = []
    fleet = dispatcher(spawned)
    fleet.kick([WEB, WWW, API])
    assert sorted(fleet.workers) == ["elb/us-east-1/web", "route53/us-east-1/Z1"]
    assert spawned == ["Worker.run", "Worker.run"]
    web, zone = fleet.workers["elb/us-east-1/web"], fleet.workers["route53/us-east-1/Z1"]
    assert isinstance(web.unit, ElbUnit)
    assert isinstance(zone.unit, ZoneUnit)
    assert zone.unit.targets() == [API, WWW]
    fleet.kick([WWW_EU, WEB], full=True)
    fleet.kick([parse_target_path("route53/us-east-1/Z1/new.example.com")])
    fleet.kick_all()
    assert fleet.workers == {"elb/us-east-1/web": web, "route53/us-east-1/Z1": zone}
    assert len(spawned) == 2
    assert [str(t) for t in zone.unit.targets()] == [
        "route53/us-east-1/Z1/api.example.com.",
        "route53/us-east-1/Z1/new.example.com.",
        "route53/us-east-1/Z1/www.example.com.",
    ]


def test_dispatcher_ignores_targets_of_other_kinds() -> None:
    """A dispatcher limited to some kinds creates no worker for the others."""
    spawned: list[str] = []
    fleet = dispatcher(spawned, kinds={"template"})
    fleet.kick([WEB, WWW, BACKEND])
    assert fleet.workers == {}
    assert spawned == []
