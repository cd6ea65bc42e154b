"""Upstream member phases (SPEC §8): a member is `healthy` once every template of this process
that renders its upstream has a loaded file holding it (the reload finished), and `gone` once
none has; in between it is `pending` (joining) or `draining` (leaving). Several templates may
render one upstream (an nginx and a haproxy file), so the files' states are merged here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lbmanager.keys.target import Target
from lbmanager.plan.phases import Phase


class UpstreamLoads:
    """What each template's loaded file holds, per upstream: shared by the templates of one
    process (one `lbmanager render` or `run --render-config` per host: each host publishes its
    own files' view, the last writer's view stands for the upstream)."""

    def __init__(self) -> None:
        self._loaded: dict[str, dict[str, frozenset[str]]] = {}  # upstream -> template -> members
        self._touched: set[str] = set()

    def loaded(self, template: str, upstreams: Mapping[str, frozenset[str]]) -> set[str]:
        """Template ``template``'s file, as the server now runs it, holds ``upstreams`` (and
        no member of the upstreams it held before and no longer renders); return the names
        of the upstreams whose phases this may change."""
        for name, by_template in self._loaded.items():
            if template in by_template and name not in upstreams:
                by_template[template] = frozenset()
                self._touched.add(name)
        for name, members in upstreams.items():
            self._loaded.setdefault(name, {})[template] = members
        touched, self._touched = self._touched | set(upstreams), set()
        return touched

    def phases(
        self,
        upstream: str,
        active: frozenset[str],
        templates: Iterable[str],
        published: Mapping[str, str],
    ) -> dict[str, Phase]:
        """The phase of each member that is active, in a loaded file of the ``templates`` that
        render ``upstream``, or ``published`` and not yet `gone` (it is now, unless a file
        still holds it); a member published `gone` before is left out (absent means gone)."""
        files = [self._loaded.get(upstream, {}).get(t, frozenset()) for t in templates]
        leaving = {m for m, phase in published.items() if phase != Phase.GONE}
        phases: dict[str, Phase] = {}
        for member in set(active).union(leaving, *files):
            in_files = sum(member in held for held in files)
            if member in active:
                phases[member] = Phase.HEALTHY if in_files == len(files) else Phase.PENDING
            else:
                phases[member] = Phase.DRAINING if in_files else Phase.GONE
        return phases


def upstream_target(name: str) -> Target:
    """The target of upstream ``name``."""
    return Target("upstream", "", name)
