"""``docker inspect`` JSON -> the ContainerView the labels are read against (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from lbmanager.presence.labels import Bindings, ContainerView


def view_from_inspect(inspect: Mapping[str, object]) -> ContainerView:
    """The view of one container from its ``docker inspect`` JSON (Engine API)."""
    config, state = _mapping(inspect.get("Config")), _mapping(inspect.get("State"))
    network = _mapping(inspect.get("NetworkSettings"))
    health = _mapping(state.get("Health")).get("Status")
    ports: dict[int, Bindings] = {}
    for spec, bindings in [
        *((s, None) for s in _mapping(config.get("ExposedPorts"))),
        *_mapping(network.get("Ports")).items(),
    ]:
        number, _, protocol = str(spec).partition("/")
        if protocol in ("", "tcp") and number.isascii() and number.isdigit():
            ports[int(number)] = ports.get(int(number), ()) + _bindings(bindings)
    return ContainerView(
        str(inspect.get("Id", "")),
        str(inspect.get("Name", "")).removeprefix("/"),
        labels={str(k): str(v) for k, v in _mapping(config.get("Labels")).items()},
        running=bool(state.get("Running")) and not state.get("Restarting"),
        paused=bool(state.get("Paused")),
        ports=ports,
        ip=_container_ip(network),
        health=str(health) if health and health != "none" else None,
        host_network=_mapping(inspect.get("HostConfig")).get("NetworkMode") == "host",
    )


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _bindings(value: object) -> Bindings:
    """``[{"HostIp": "0.0.0.0", "HostPort": "32768"}]`` (or null) as (ip, port) pairs."""
    found = [
        (str(b.get("HostIp") or ""), str(b.get("HostPort") or ""))
        for b in (value if isinstance(value, list) else [])
        if isinstance(b, Mapping)
    ]
    return tuple((ip, int(port)) for ip, port in found if port.isascii() and port.isdigit())


def _container_ip(network: Mapping[str, object]) -> str | None:
    """The default bridge address, else the first network's (by name); IPv4 before IPv6."""
    networks = _mapping(network.get("Networks"))
    sources = [network, *(_mapping(networks[name]) for name in sorted(networks))]
    found = [source.get(name) for name in ("IPAddress", "GlobalIPv6Address") for source in sources]
    return next((str(address) for address in found if address), None)
