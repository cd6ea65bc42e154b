"""A FaultProxy that also records when each forwarded call was answered by moto."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from aiohttp import web
from fault_proxy import FaultProxy


@dataclass(frozen=True, slots=True)
class Answered:
    """One call moto answered: its action, form parameters, and times (time.perf_counter() in
    the benchmark process): ``sent`` when the proxy forwarded the request (it had just read
    it), ``at`` when it had read moto's whole response, just before handing it back."""

    action: str | None
    params: dict[str, list[str]]
    status: int
    sent: float
    at: float

    def instance_ids(self) -> set[str]:
        """Instance ids named in a (de)register call."""
        return {v[0] for k, v in self.params.items() if k.endswith(".InstanceId")}

    def names(self) -> list[str]:
        """Load balancer names named in the call (DescribeLoadBalancers or a register call)."""
        return [v[0] for k, v in sorted(self.params.items()) if k.startswith("LoadBalancerName")]


class TimedProxy(FaultProxy):
    """Records every answered call with its completion time; callers can await a match."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, rest_services=())
        self.answered: list[Answered] = []
        self._changed = asyncio.Condition()

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        sent = time.perf_counter()
        response = await super()._forward(request, body)
        at = time.perf_counter()
        form = request.content_type == "application/x-www-form-urlencoded"
        params = parse_qs(body.decode("utf-8", "replace")) if form else {}
        action = self.action_of(request, body)
        self.answered.append(Answered(action, params, response.status, sent, at))
        async with self._changed:
            self._changed.notify_all()
        return response

    def of(self, action: str) -> list[Answered]:
        """The answered calls of ``action``, in order."""
        return [a for a in self.answered if a.action == action]

    async def answered_call(self, match: Callable[[Answered], bool]) -> Answered:
        """The first answered call (seen so far or later) that satisfies ``match``."""
        async with self._changed:
            await self._changed.wait_for(lambda: any(map(match, self.answered)))
        return next(a for a in self.answered if match(a))

    async def answered_count(self, action: str, count: int) -> list[Answered]:
        """Wait until ``count`` calls of ``action`` were answered; return them in order."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.of(action)) >= count)
        return self.of(action)

    def reset(self) -> None:
        """Forget the calls seen so far (between scenarios)."""
        self.answered.clear()
        self.calls.clear()
