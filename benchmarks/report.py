"""The summary table: figures, targets, and whether each target was met."""

from __future__ import annotations

import statistics

from balancers import Balancer
from coldstart import ColdResult
from live import POLL_INTERVAL, BurstResult, LatencyResult
from throttled import ThrottledResult

Row = tuple[str, str, str, str]


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method, interpolated)."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def met(ok: bool) -> str:
    """The "met" column: whether a target was met (a miss stands out in bold)."""
    return "yes" if ok else "**no**"


def latency_rows(lb: Balancer, result: LatencyResult) -> list[Row]:
    """Figure 1: p50/p99 of the service and of the floor, and the ratio of the p50s."""
    p50, p99 = percentile(result.service, 50), percentile(result.service, 99)
    f50, f99 = percentile(result.floor, 50), percentile(result.floor, 99)
    ratio = p50 / f50
    n = len(result.service)
    return [
        (f"{lb.noun}: put → registered, p50 ({n} samples)", _ms(p50), "", ""),
        ("put → registered, p99", _ms(p99), "", ""),
        ("floor (put → watch event → direct register), p50", _ms(f50), "", ""),
        ("floor, p99", _ms(f99), "", ""),
        ("  of which put → watch event, p50", _ms(percentile(result.floor_watch, 50)), "", ""),
        ("ratio p50 / floor p50", f"{ratio:.2f}", "≤ 1.5", met(ratio <= 1.5)),
        ("register calls per put", f"{result.registers_per_put:.2f}", "1", ""),
    ]


def _spread(values: list[float], unit: str, digits: int) -> str:
    """Median, and min-max when there were several rounds."""
    median = f"{statistics.median(values):.{digits}f}{unit}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def burst_rows(lb: Balancer, results: list[BurstResult]) -> list[Row]:
    """Figure 2: write calls of the burst and the lag after the last put (median of rounds)."""
    first, limit = results[0], 2 * results[0].elbs
    calls = [float(r.register_calls) for r in results]
    most = [float(r.max_registers_per_elb) for r in results]
    return [
        (
            f"{lb.noun} burst: {first.keys} puts over {first.elbs} {lb.noun}s, put time",
            _spread([r.put_seconds for r in results], " s", 2),
            "",
            "",
        ),
        (
            f"burst: {lb.register_action} calls",
            _spread(calls, "", 0),
            f"≤ {limit}",
            met(statistics.median(calls) <= limit),
        ),
        (
            f"burst: most register calls for one {lb.noun}",
            _spread(most, "", 0),
            "≤ 2",
            met(statistics.median(most) <= 2),
        ),
        (
            f"burst: describe calls ({lb.noun}s new to the service)",
            _spread([float(r.describe_calls) for r in results], "", 0),
            "",
            "",
        ),
        (
            "burst: last put → last register answered",
            _spread([r.to_last_register for r in results], " s", 3),
            "",
            "",
        ),
        (
            f"burst: last put → all in sync (describe polled every {POLL_INTERVAL * 1000:.0f} ms)",
            _spread([r.to_in_sync_polled for r in results], " s", 3),
            "",
            "",
        ),
    ]


def throttled_rows(results: list[ThrottledResult]) -> list[Row]:
    """Figure 4: the calls a throttled change cost and its lag (median of rounds)."""
    first = results[0]
    head = (
        f"throttled: {first.members} members in {first.waves} waves, "
        f"{first.percent} % of writes throttled"
    )
    return [
        (
            f"{head}: DescribeLoadBalancers calls",
            _spread([float(r.describe_calls) for r in results], "", 0),
            "",
            "",
        ),
        (
            "throttled: register calls (throttled ones included)",
            _spread([float(r.register_calls) for r in results], "", 0),
            "",
            "",
        ),
        (
            "throttled: write calls throttled",
            _spread([float(r.throttled_calls) for r in results], "", 0),
            "",
            "",
        ),
        (
            f"throttled: last put → all in sync (polled every {POLL_INTERVAL * 1000:.0f} ms)",
            _spread([r.to_in_sync_polled for r in results], " s", 2),
            "",
            "",
        ),
    ]


def cold_rows(lb: Balancer, results: list[ColdResult]) -> list[Row]:
    """Figure 3: cold start times (median of runs) and peak RSS (the largest of runs)."""
    first = results[0]
    reads = [r.tree_read for r in results if r.tree_read is not None]
    first_plan = statistics.median(r.first_plan for r in results)
    rss = max(r.peak_rss_mb for r in results)
    writes = sum(r.write_calls for r in results)
    phase_writes = max(r.phase_writes for r in results)
    return [
        (
            f"{lb.noun} cold start ({first.keys} keys, {first.elbs} {lb.noun}s): "
            "start → tree read (log line)",
            _spread(reads, " s", 2) if reads else "n/a",
            "",
            "",
        ),
        (
            "cold start: start → 1st describe sent (tree built)",
            _spread([r.first_describe_sent for r in results], " s", 2),
            "",
            "",
        ),
        (
            "cold start: start → first plan (1st describe answered)",
            _spread([r.first_plan for r in results], " s", 2),
            "< 3 s",
            met(first_plan < 3),
        ),
        (
            f"cold start: start → all {first.elbs} checked ({first.describe_calls} describes)",
            _spread([r.all_checked for r in results], " s", 2),
            "",
            "",
        ),
        ("cold start: write calls (all already in sync)", str(writes), "0", met(writes == 0)),
        ("cold start: peak RSS (VmHWM, largest run)", f"{rss:.0f} MB", "< 250 MB", met(rss < 250)),
        (
            f"cold start: start → every phase key written ({first.phase_keys} keys, 1st run)",
            f"{first.phases_published:.1f} s",
            "",
            "",
        ),
        (
            "cold start: most writes of one phase key, after every run",
            str(phase_writes),
            "≤ 1",
            met(phase_writes <= 1 and all(r.phase_keys == r.elbs for r in results)),
        ),
        (
            f"moto alone: the same {first.describe_calls} describes, all at once",
            _spread([r.moto_describe_floor for r in results], " s", 2),
            "",
            "",
        ),
    ]


def table(rows: list[Row]) -> str:
    """A Markdown table of the rows."""
    header: Row = ("figure", "result", "target", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in [header, *rows]
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
