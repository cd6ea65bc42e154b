"""The built-in templates' output for edge-case trees passes the real `nginx -t` and `haproxy -c`.

A file the real check refuses would block every later change of its template, so each tree here
is one an operator can produce with valid keys."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from render_helpers import compiled, meta, tree_of, upstream_key

from lbmanager.render.view import build_view, server_id

LONG_HOST = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
TREES: dict[str, list[tuple[str, bytes]]] = {
    "empty": [],
    "backup-only": [(upstream_key("web", "10.0.0.1:80"), meta(backup=True))],
    "cookie-backup-only": [(upstream_key("web", "10.0.0.1:80"), meta(cookie="SID", backup=True))],
    "cookie-and-backup": [
        (upstream_key("web", "10.0.0.1:80"), meta(cookie="SID")),
        (upstream_key("web", "10.0.0.2:80"), meta(cookie="SID", backup=True)),
    ],
    "longest-host": [(upstream_key("web", "10.0.0.1:80"), meta(host=LONG_HOST))],
    "longest-cookie": [(upstream_key("web", "10.0.0.1:80"), meta(cookie="C" * 64))],
    "names-differing-in-case": [
        (upstream_key("Web", "10.0.0.1:80"), b""),
        (upstream_key("web", "10.0.0.2:80"), b""),
    ],
    "ipv6-hostname-weights": [
        (upstream_key("web", "[2001:db8::1]:8080"), meta(weight=256)),
        (upstream_key("web", "localhost:8081"), meta(weight=1)),
    ],
    "same-path-other-hosts": [
        (upstream_key(f"u{n}", f"10.0.0.{n}:80"), meta(host=f"h{n}.example.com", path="/api"))
        for n in range(1, 30)
    ],
    "odd-names": [
        (upstream_key(name, "10.0.0.1:80"), meta(path=f"/{name}"))
        for name in ("a.b", "a-b", "a_b", "9")
    ],
}


def check_argv(source: str, path: Path) -> list[str]:
    """The real check of ``path``."""
    if source == "nginx":
        return ["nginx", "-t", "-q", "-c", str(path)]
    return ["haproxy", "-c", "-q", "-f", str(path)]


@pytest.mark.parametrize("source", ["nginx", "haproxy"])
@pytest.mark.parametrize("tree_name", sorted(TREES))
def test_builtin_render_passes_the_real_check(source: str, tree_name: str, tmp_path: Path) -> None:
    """Rendered for this tree, the built-in's file is accepted by the server's own check."""
    settings = (
        {
            "pid": str(tmp_path / "nginx.pid"),
            "error_log": str(tmp_path / "error.log"),
            "temp_dir": str(tmp_path),
        }
        if source == "nginx"
        else {}
    )
    text = compiled(source, vars=settings).render(build_view(tree_of(*TREES[tree_name]), None))
    path = tmp_path / f"{source}.conf"
    path.write_bytes(text)
    checked = subprocess.run(
        check_argv(source, path), capture_output=True, text=True, check=False, timeout=30
    )
    assert checked.returncode == 0, f"{checked.stdout}{checked.stderr}\n{text.decode()}"


def test_haproxy_server_lines_carry_weight_backup_check_and_cookie() -> None:
    """haproxy: each member is a health-checked server with its weight, backup flag and a
    cookie value of its own."""
    tree = tree_of(
        (upstream_key("web", "10.0.0.1:80"), meta(cookie="SID", weight=256)),
        (upstream_key("web", "10.0.0.2:80"), meta(cookie="SID", backup=True)),
    )
    text = compiled("haproxy").render(build_view(tree, None)).decode()
    servers = re.findall(r"^    server .*$", text, re.MULTILINE)
    first, second = server_id("10.0.0.1:80"), server_id("10.0.0.2:80")
    assert servers == [
        f"    server {first} 10.0.0.1:80 check weight 256 cookie {first}",
        f"    server {second} 10.0.0.2:80 check weight 1 backup cookie {second}",
    ]
