"""A target: the one thing a set of member keys keeps in sync (SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    """One thing kept in sync: an ELB, a Route53 name (zone + fqdn), an upstream, a template."""

    kind: str
    region: str
    name: str
    fqdn: str = ""

    def path(self) -> str:
        """The target as a relative key path, e.g. ``elb/us-east-1/web``."""
        return "/".join(s for s in (self.kind, self.region, self.name, self.fqdn) if s)

    def __str__(self) -> str:
        return self.path()
