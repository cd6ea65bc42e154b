"""The alerting rules shipped in docs/ are valid Prometheus rules and name real metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from lbmanager.runtime.metrics import REGISTRY

RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus" / "alerts.yml"


def test_alert_rules_pass_promtool() -> None:
    """`promtool check rules` accepts docs/prometheus/alerts.yml."""
    result = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_use_only_metrics_lbmanager_exports() -> None:
    """Every lbmanager_* name in the rules is a series of the process registry."""
    metrics = list(REGISTRY.collect())
    # A labelled counter has no sample before its first count: name its series by its type.
    exported = {m.name + ("_total" if m.type == "counter" else "") for m in metrics}
    used = set(re.findall(r"lbmanager_[a-z0-9_]+", RULES.read_text()))
    assert used
    assert used <= exported, used - exported
