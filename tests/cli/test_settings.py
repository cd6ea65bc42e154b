"""The settings classes: SPEC §6 defaults, LBMANAGER_* variables, validation (no I/O)."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from lbmanager.cli import flags
from lbmanager.plan.policy import Policy
from lbmanager.presence.settings import AgentSettings, RegisterSettings
from lbmanager.settings import (
    MemberAddSettings,
    MemberLsSettings,
    PlanSettings,
    Settings,
    service_settings,
)

KEY = "elb/us-east-1/web/multiple/i-0123456789abcdef0"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no LBMANAGER_* variable but the ones they set."""
    for name in list(os.environ):
        if name.upper().startswith("LBMANAGER_"):
            monkeypatch.delenv(name)


def test_defaults_match_spec() -> None:
    """Without flags or variables every setting has its SPEC §6 default."""
    settings = Settings()
    assert settings.etcd_endpoints == "http://127.0.0.1:2379"
    assert settings.prefix == "/lbManager"
    assert settings.state_prefix == "/lbManagerState"
    assert settings.resync_interval == 60
    assert settings.route53_ttl == 60
    assert settings.route53_rps == 5
    assert settings.policy is Policy.SYNC
    assert settings.dry_run is False
    assert settings.log_format == "text"
    assert settings.status_addr == "127.0.0.1:9180"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every setting can come from LBMANAGER_<NAME>."""
    env = {
        "ETCD_ENDPOINTS": "http://127.0.0.1:1,http://127.0.0.2:2",
        "PREFIX": "/lb/",
        "STATE_PREFIX": "/lbstate",
        "RESYNC_INTERVAL": "2.5",
        "ROUTE53_TTL": "300",
        "ROUTE53_RPS": "1",
        "POLICY": "upsert-only",
        "DRY_RUN": "true",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
        "STATUS_ADDR": "0.0.0.0:9999",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"LBMANAGER_{name}", value)
    settings = Settings()
    assert settings.etcd_endpoints == "http://127.0.0.1:1,http://127.0.0.2:2"
    assert settings.prefix == "/lb"
    assert settings.state_prefix == "/lbstate"
    assert settings.resync_interval == 2.5
    assert settings.route53_ttl == 300
    assert settings.route53_rps == 1
    assert settings.policy is Policy.UPSERT_ONLY
    assert settings.dry_run is True
    assert settings.log_level == "debug"
    assert settings.log_format == "json"
    assert settings.status_addr == "0.0.0.0:9999"


def test_explicit_value_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag (passed as a keyword) overrides its LBMANAGER_* variable."""
    monkeypatch.setenv("LBMANAGER_RESYNC_INTERVAL", "5")
    assert Settings(resync_interval=7).resync_interval == 7


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("RESYNC_INTERVAL", "0", "resync_interval"),
        ("RESYNC_INTERVAL", "-1", "resync_interval"),
        ("RESYNC_INTERVAL", "soon", "resync_interval"),
        ("ROUTE53_RPS", "0", "route53_rps"),
        ("ROUTE53_TTL", "-1", "route53_ttl"),
        ("POLICY", "x", "policy"),
        ("LOG_FORMAT", "xml", "log_format"),
        ("LOG_LEVEL", "loud", "log_level"),
        ("ETCD_ENDPOINTS", "ftp://x", "etcd_endpoints"),
        ("ETCD_ENDPOINTS", "http://127.0.0.1:99999", "etcd_endpoints"),
        ("ETCD_ENDPOINTS", ",", "etcd_endpoints"),
        ("PREFIX", "lbManager", "prefix"),
        ("PREFIX", "/a//b", "prefix"),
        ("STATE_PREFIX", "state", "state_prefix"),
        ("STATUS_ADDR", "9180", "status_addr"),
        ("STATUS_ADDR", "127.0.0.1:0", "status_addr"),
    ],
)
def test_bad_value_names_its_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    """A bad LBMANAGER_* value raises a ValidationError that names the setting."""
    monkeypatch.setenv(f"LBMANAGER_{name}", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


@pytest.mark.parametrize(
    ("prefix", "state_prefix"),
    [("/a", "/a/b"), ("/a/b", "/a"), ("/a", "/a"), ("/a/", "/a")],
)
def test_overlapping_prefixes_are_refused(prefix: str, state_prefix: str) -> None:
    """The tree and the managed-target record must not contain one another."""
    with pytest.raises(ValidationError, match="must not contain one another"):
        Settings(prefix=prefix, state_prefix=state_prefix)


def test_prefixes_that_only_share_text_are_fine() -> None:
    """/lbManager and /lbManagerState share a text prefix but are separate key ranges."""
    settings = Settings(prefix="/a", state_prefix="/ab")
    assert (settings.prefix, settings.state_prefix) == ("/a", "/ab")


def test_settings_are_frozen_and_closed() -> None:
    """Settings are built once: no mutation, no unknown keyword."""
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.prefix = "/x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Settings(bogus=1)  # type: ignore[call-arg]


def test_register_reads_its_variables_and_a_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """LBMANAGER_TTL and LBMANAGER_HEALTH_URL set register's flags; a flag given wins."""
    monkeypatch.setenv("LBMANAGER_TTL", "30")
    monkeypatch.setenv("LBMANAGER_HEALTH_URL", "http://127.0.0.1:8080/health")
    settings = flags.load(RegisterSettings, {"keys": [KEY]})
    assert (settings.ttl, settings.health_url) == (30, "http://127.0.0.1:8080/health")
    assert flags.load(RegisterSettings, {"keys": [KEY], "ttl": "7"}).ttl == 7


def test_agent_match_variable_is_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """LBMANAGER_MATCH holds a JSON list (a regex may contain a comma); booleans are true/false."""
    monkeypatch.setenv("LBMANAGER_MATCH", '["^web-{1,2}=elb/us-east-1/web", "^api=upstream/api"]')
    monkeypatch.setenv("LBMANAGER_KEEP_ON_EXIT", "true")
    settings = AgentSettings()
    assert settings.match == ("^web-{1,2}=elb/us-east-1/web", "^api=upstream/api")
    assert settings.keep_on_exit is True


def test_positional_arguments_are_never_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LBMANAGER_TARGET, _KEY and _COMMAND do not stand in for positional arguments."""
    monkeypatch.setenv("LBMANAGER_TARGET", "elb/us-east-1/other")
    monkeypatch.setenv("LBMANAGER_KEY", KEY)
    monkeypatch.setenv("LBMANAGER_COMMAND", '["true"]')
    assert MemberLsSettings().target == ""
    with pytest.raises(ValidationError) as caught:
        MemberAddSettings()
    assert [error["loc"] for error in caught.value.errors()] == [("key",)]
    assert RegisterSettings(keys=(KEY,)).command == ()


def test_variables_of_settings_a_command_lacks_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bad values of other commands' variables do not concern `member add`."""
    for name in ("ROUTE53_TTL", "DRY_RUN", "TTL", "STATE_PREFIX", "STATUS_ADDR"):
        monkeypatch.setenv(f"LBMANAGER_{name}", "-1")
    assert MemberAddSettings(key=KEY).key == KEY


def test_exec_and_command_go_together() -> None:
    """register's --exec needs a command after --, and a command needs --exec."""
    assert RegisterSettings(keys=(KEY,), exec=True, command=("true",)).command == ("true",)
    for given in ({"exec": True}, {"command": ("true",)}):
        with pytest.raises(ValidationError, match="--exec needs a command"):
            RegisterSettings(keys=(KEY,), **given)


def test_service_settings_keep_the_commands_values_and_default_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`plan`'s settings become the controller's Settings; what plan lacks keeps its default,
    whatever LBMANAGER_* says."""
    monkeypatch.setenv("LBMANAGER_RESYNC_INTERVAL", "0")
    monkeypatch.setenv("LBMANAGER_DRY_RUN", "true")
    service = service_settings(PlanSettings(prefix="/a", route53_ttl=5))
    assert (service.prefix, service.route53_ttl) == ("/a", 5)
    assert (service.resync_interval, service.dry_run) == (60, False)
