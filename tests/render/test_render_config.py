"""The render configuration (TOML): defaults, paths, commands, and errors naming where (pure)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
from pathlib import Path

import pytest

from lbmanager.render.config import ConfigError, Wait, load_render_config
from lbmanager.render.unit import load_templates, template_target

TRUE = shutil.which("true") or "/bin/true"
ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def toml_file(tmp_path: Path, text: str, name: str = "render.toml") -> Path:
    """``text`` written as ``name`` in ``tmp_path``."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_defaults(tmp_path: Path) -> None:
    """source + destination alone: name from the file name, documented defaults elsewhere."""
    config = load_render_config(
        toml_file(
            tmp_path,
            """
[[template]]
source = "nginx"
destination = "/etc/nginx/nginx.conf"
""",
        )
    )
    (entry,) = config.template
    assert entry.name == "nginx.conf"
    assert entry.source == "nginx"
    assert entry.builtin()
    assert entry.destination == Path("/etc/nginx/nginx.conf")
    assert (entry.check_command, entry.reload_command, entry.owner, entry.upstreams) == (
        None,
        None,
        None,
        None,
    )
    assert (entry.mode, entry.backups, entry.command_timeout) == (0o644, 3, 30.0)
    assert entry.wait == Wait(min=0.25, max=5.0)
    assert entry.vars == {}


def test_full_config(tmp_path: Path) -> None:
    """Every field of a [[template]] entry is read, in two entries."""
    config = load_render_config(
        toml_file(
            tmp_path,
            f"""
[[template]]
name = "edge"
source = "haproxy"
destination = "/srv/haproxy.cfg"
check_command = ["{TRUE}", "-c", "-f", "{{staged}}"]
reload_command = ["{TRUE}", "reload", "{{destination}}"]
command_timeout = 2.5
mode = "0600"
owner = "{ME}:{MY_GROUP}"
backups = 0
wait = {{ min = 0, max = 1.5 }}
upstreams = ["web", "api.v2"]
vars = {{ listen = ":8080", maxconn = 100, debug = true, ratio = 0.5 }}

[[template]]
source = "nginx"
destination = "/srv/nginx.conf"
owner = "{ME}"
mode = "640"
""",
        )
    )
    edge, plain = config.template
    assert edge.name == "edge"
    assert edge.check_command == [TRUE, "-c", "-f", "{staged}"]
    assert edge.reload_command == [TRUE, "reload", "{destination}"]
    assert (edge.command_timeout, edge.mode, edge.backups) == (2.5, 0o600, 0)
    assert edge.owner == f"{ME}:{MY_GROUP}"
    assert edge.wait == Wait(min=0, max=1.5)
    assert edge.upstreams == ["web", "api.v2"]
    assert edge.vars == {"listen": ":8080", "maxconn": 100, "debug": True, "ratio": 0.5}
    assert (plain.name, plain.mode, plain.owner) == ("nginx.conf", 0o640, ME)


def test_string_commands_are_split_like_a_shell(tmp_path: Path) -> None:
    """A command given as a string becomes an argv list split by shlex (quotes kept together)."""
    config = load_render_config(
        toml_file(
            tmp_path,
            f"""
[[template]]
source = "nginx"
destination = "/srv/nginx.conf"
check_command = "{TRUE} -t -c '{{staged}} with space' \\"x;y\\""
reload_command = "{TRUE}   -s reload"
""",
        )
    )
    (entry,) = config.template
    assert entry.check_command == [TRUE, "-t", "-c", "{staged} with space", "x;y"]
    assert entry.reload_command == [TRUE, "-s", "reload"]


def test_relative_paths_are_taken_from_the_toml_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative destination and source are resolved against the TOML file's directory."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_render_config(
        toml_file(
            tmp_path / "conf",
            """
[[template]]
source = "templates/site.j2"
destination = "out/site.conf"

[[template]]
source = "nginx"
destination = "/abs/nginx.conf"
""",
        )
    )
    site, builtin = config.template
    base = (tmp_path / "conf").resolve()
    assert Path(site.source) == base / "templates" / "site.j2"
    assert site.destination == base / "out" / "site.conf"
    assert builtin.source == "nginx"
    assert builtin.destination == Path("/abs/nginx.conf")


HEAD = '[[template]]\nname = "web"\nsource = "nginx"\ndestination = "/srv/web.conf"\n'
FIRST = '[[template]]\nname = "first"\nsource = "nginx"\ndestination = "/srv/first.conf"\n'

ERRORS = [
    (
        "missing-source",
        '[[template]]\nname = "web"\ndestination = "/srv/x"\n',
        ["template 1 (web)", "source"],
    ),
    (
        "missing-destination",
        '[[template]]\nname = "web"\nsource = "nginx"\n',
        ["template 1 (web)", "destination"],
    ),
    ("unknown-field", FIRST + HEAD + "colour = 1\n", ["template 2 (web)", "colour"]),
    ("bad-mode", HEAD + 'mode = "0999"\n', ["template 1 (web)", "mode", "0999"]),
    ("bad-mode-text", HEAD + 'mode = "rw-r--r--"\n', ["template 1 (web)", "mode"]),
    ("mode-as-toml-number", HEAD + "mode = 0o644\n", ["template 1 (web)", "mode", "in quotes"]),
    (
        "wait-min-over-max",
        HEAD + "wait = { min = 5, max = 1 }\n",
        ["template 1 (web)", "wait", "min"],
    ),
    ("wait-unknown", HEAD + "wait = { least = 1 }\n", ["template 1 (web)", "wait.least"]),
    (
        "no-check-command",
        HEAD + 'check_command = ["/nonexistent/nginx", "-t"]\n',
        ["template 1 (web)", "check_command", "/nonexistent/nginx"],
    ),
    (
        "unsplittable-command",
        HEAD + 'reload_command = "nginx \'open"\n',
        ["template 1 (web)", "reload_command"],
    ),
    ("empty-command", HEAD + "reload_command = []\n", ["template 1 (web)", "reload_command"]),
    (
        "unknown-owner",
        HEAD + 'owner = "no-such-user-lbm"\n',
        ["template 1 (web)", "owner", "no-such-user-lbm"],
    ),
    (
        "unknown-group",
        HEAD + f'owner = "{ME}:no-such-group-lbm"\n',
        ["template 1 (web)", "owner", "no-such-group-lbm"],
    ),
    (
        "bad-upstream",
        FIRST + HEAD + 'upstreams = ["ok", "-bad"]\n',
        ["template 2 (web)", "upstreams.1", "-bad"],
    ),
    ("bad-name", HEAD.replace('"web"', '"we b"'), ["template 1 (we b)", "name"]),
    ("zero-timeout", HEAD + "command_timeout = 0\n", ["template 1 (web)", "command_timeout"]),
    ("too-many-backups", HEAD + "backups = 101\n", ["template 1 (web)", "backups"]),
    ("bad-var", HEAD + "vars = { listen = [80] }\n", ["template 1 (web)", "vars.listen"]),
    ("duplicate-name", HEAD + HEAD.replace("web.conf", "other.conf"), ["name", "web"]),
    (
        "duplicate-destination",
        HEAD + HEAD.replace('"web"', '"other"'),
        ["destination", "/srv/web.conf"],
    ),
    ("no-template", "", ["template"]),
    ("unknown-top-level", HEAD + "[global]\nx = 1\n", ["global"]),
    ("toml-syntax", '[[template]\nname = "web"\n', ["not valid TOML", "line 1"]),
]


@pytest.mark.parametrize(("text", "fragments"), [pytest.param(t, f, id=i) for i, t, f in ERRORS])
def test_errors_name_file_entry_and_field(tmp_path: Path, text: str, fragments: list[str]) -> None:
    """A bad configuration raises ConfigError naming the file, the entry and the field."""
    path = toml_file(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_render_config(path)
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("field", ["name", "destination"])
def test_duplicate_error_names_the_entry(tmp_path: Path, field: str) -> None:
    """A duplicate name or destination names the second entry's number and name."""
    second = (
        FIRST.replace("/srv/first.conf", "/srv/second.conf")
        if field == "name"
        else (FIRST.replace('"first"', '"second"'))
    )
    with pytest.raises(ConfigError, match=r"template 2 \((first|second)\)"):
        load_render_config(toml_file(tmp_path, FIRST + second))


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    """A missing configuration file is a ConfigError naming it."""
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_render_config(path)


def test_load_templates_compiles_each_template(tmp_path: Path) -> None:
    """load_templates gives one worker target per template, and knows who uses which upstream."""
    (tmp_path / "site.j2").write_text("{% for u in upstreams %}{{ u.name }}{% endfor %}\n")
    templates = load_templates(
        toml_file(
            tmp_path,
            """
[[template]]
source = "nginx"
destination = "nginx.conf"

[[template]]
name = "site"
source = "site.j2"
destination = "site.conf"
upstreams = ["api"]
""",
        )
    )
    assert templates.targets() == [template_target("nginx.conf"), template_target("site")]
    assert templates.using("api") == [template_target("nginx.conf"), template_target("site")]
    assert templates.using("web") == [template_target("nginx.conf")]
    assert load_templates(None).targets() == []


def test_jinja_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    """A custom template with a Jinja syntax error fails at load, naming the template and line."""
    (tmp_path / "broken.j2").write_text("line one\n{% for u in upstreams %}\n{{ u.name }\n")
    path = toml_file(
        tmp_path,
        """
[[template]]
name = "broken"
source = "broken.j2"
destination = "broken.conf"
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_templates(path)
    message = str(raised.value)
    assert "broken" in message
    assert "line 3" in message


def test_missing_template_source_is_a_config_error(tmp_path: Path) -> None:
    """A template whose source file does not exist fails at load, naming it and the template."""
    path = toml_file(
        tmp_path,
        """
[[template]]
name = "site"
source = "absent.j2"
destination = "site.conf"
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_templates(path)
    assert "site" in str(raised.value)
    assert "absent.j2" in str(raised.value)


def test_unknown_builtin_var_names_file_template_and_var(tmp_path: Path) -> None:
    """A misspelt setting of a built-in template fails at start-up, naming file, entry, var."""
    path = toml_file(tmp_path, HEAD + 'vars = { lisen = "127.0.0.1:80" }\n')
    with pytest.raises(ConfigError) as caught:
        load_templates(path)
    assert all(part in str(caught.value) for part in (str(path), "template web", "'lisen'"))


def test_one_destination_under_two_spellings_is_a_duplicate(tmp_path: Path) -> None:
    """a/../x.conf and x.conf are the same file: the second entry is refused, naming it."""
    (tmp_path / "a").mkdir()
    text = (
        '[[template]]\nname = "one"\nsource = "nginx"\ndestination = "x.conf"\n'
        '[[template]]\nname = "two"\nsource = "nginx"\ndestination = "a/../x.conf"\n'
    )
    with pytest.raises(ConfigError, match=r"template 2 \(two\): destination"):
        load_render_config(toml_file(tmp_path, text))
