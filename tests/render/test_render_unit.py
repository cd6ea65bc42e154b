"""One template's pipeline: render, check, backup, atomic swap, reload, rollback (local files)."""

from __future__ import annotations

import os
import pwd
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from render_helpers import script, tree_of, unit_for, upstream_key

from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.render.config import TemplateConfig
from lbmanager.render.files import pending_path, staged_path
from lbmanager.render.unit import TemplateUnit, template_target

TEMPLATE = (
    "{% for u in upstreams %}\n{{ u.name }}:{% for s in u.servers %} {{ s.address }}"
    "{% endfor %}\n\n{% endfor %}"
)
OLD = b"old config\n"


class Rig:
    """A destination, a template, a tree, and commands that log their calls, in ``tmp``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.destination = tmp / "out" / "site.conf"
        self.destination.parent.mkdir()
        self.log = tmp / "calls.log"
        self.source = tmp / "site.j2"
        self.source.write_text(TEMPLATE)
        self.tree = tree_of((upstream_key("web", "10.0.0.1:80"), b""))

    def command(self, what: str, fail_when: str = "false") -> list[str]:
        """A command that logs ``what`` and the file it is given, then fails when the shell
        condition ``fail_when`` holds (``$n``: how many times it has run)."""
        path = script(
            self.tmp / f"{what}.sh",
            f"""
echo "{what} $(cat "$1" | head -c 200 | tr '\\n' '|')" >> {self.log}
n=$(grep -c "^{what} " {self.log})
echo "{what} output $n"
if {fail_when}; then exit 1; fi""",
        )
        return [str(path), "{staged}" if what == "check" else "{destination}"]

    def calls(self) -> list[str]:
        """The commands run so far, each with the text of the file it saw."""
        return self.log.read_text().splitlines() if self.log.exists() else []

    def unit(self, apply: bool = True, **fields: Any) -> TemplateUnit:
        """The pipeline of the template with ``fields``, over this rig's tree."""
        for what in ("check", "reload"):
            if f"{what}_command" not in fields:  # not setdefault: that would rewrite the script
                fields[f"{what}_command"] = self.command(what)
        config = TemplateConfig(
            name="site", source=str(self.source), destination=self.destination, **fields
        )
        return unit_for(config, self.tree, apply)

    def add(self, member: str) -> None:
        """Add a member to upstream web, so the next render differs."""
        self.tree.put(upstream_key("web", member), self.tree.revision + 100, b"")


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    """A fresh rig in tmp_path."""
    return Rig(tmp_path)


async def test_first_sync_checks_writes_and_reloads(rig: Rig) -> None:
    """A new render is checked as the staged file, swapped in, then reloaded."""
    [result] = await rig.unit().sync(False)
    assert rig.destination.read_text() == "web: 10.0.0.1:80\n"
    assert rig.calls() == ["check web: 10.0.0.1:80|", "reload web: 10.0.0.1:80|"]
    assert result.target == template_target("site")
    assert result.error is None
    assert "wrote" in result.changes[0]
    assert not staged_path(rig.destination).exists()


async def test_check_gets_the_staged_path(rig: Rig) -> None:
    """{staged} is a hidden file next to the destination; {destination} is the live file."""
    seen = rig.tmp / "argv"
    check = script(rig.tmp / "argv.sh", f'echo "$@" >> {seen}')
    await rig.unit(
        check_command=[str(check), "-c", "{staged}"], reload_command=[str(check), "{destination}"]
    ).sync(False)
    assert seen.read_text().splitlines() == [
        f"-c {staged_path(rig.destination)}",
        str(rig.destination),
    ]
    assert staged_path(rig.destination).parent == rig.destination.parent


async def test_unchanged_bytes_write_nothing(rig: Rig) -> None:
    """Rendering the bytes already live: no write, no check, no reload, no backup."""
    unit = rig.unit()
    await unit.sync(False)
    before = rig.destination.stat()
    [result] = await unit.sync(True)
    after = rig.destination.stat()
    assert result.changes == ()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(rig.calls()) == 2
    assert not rig.destination.with_name("site.conf.2").exists()


async def test_failing_check_leaves_the_live_file(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed check: live file untouched, staged file removed, no reload, error names template."""
    rig.destination.write_bytes(OLD)
    unit = rig.unit(check_command=rig.command("check", fail_when="true"))
    with pytest.raises(PermanentError) as raised:
        await unit.sync(False)
    assert "site" in str(raised.value)
    assert "check output 1" in str(raised.value)  # the command's last output line
    assert "check output 1" in caplog.text
    assert rig.destination.read_bytes() == OLD
    assert not staged_path(rig.destination).exists()
    assert rig.calls() == ["check web: 10.0.0.1:80|"]
    assert not rig.destination.with_name("site.conf.1").exists()


async def test_failing_reload_is_rolled_back(rig: Rig) -> None:
    """A failed reload puts the previous file back, reloads again, and reports the error."""
    rig.destination.write_bytes(OLD)
    unit = rig.unit(reload_command=rig.command("reload", fail_when='[ "$n" -eq 1 ]'))
    with pytest.raises(PermanentError) as raised:
        await unit.sync(False)
    assert "site" in str(raised.value)
    assert "restored" in str(raised.value)
    assert "failed too" not in str(raised.value)
    assert rig.destination.read_bytes() == OLD
    assert rig.calls() == [
        "check web: 10.0.0.1:80|",
        "reload web: 10.0.0.1:80|",
        "reload old config|",
    ]


async def test_reload_failing_twice_says_so(rig: Rig) -> None:
    """When reloading the restored file fails as well, the error says both failed."""
    rig.destination.write_bytes(OLD)
    unit = rig.unit(reload_command=rig.command("reload", fail_when="true"))
    with pytest.raises(PermanentError, match="failed too"):
        await unit.sync(False)
    assert rig.destination.read_bytes() == OLD
    assert [c.split()[0] for c in rig.calls()] == ["check", "reload", "reload"]


async def test_failing_first_reload_keeps_the_new_file(rig: Rig) -> None:
    """No previous file (the server not running yet): a failed reload keeps the new file and
    reports the error; the same bytes are not reloaded again until a full sync, whose
    successful reload (the server started meanwhile) clears the error."""
    started = rig.tmp / "server-started"
    unit = rig.unit(reload_command=rig.command("reload", fail_when=f"[ ! -e {started} ]"))
    with pytest.raises(PermanentError) as raised:
        await unit.sync(False)
    assert "reload command exited 1: reload output 1" in str(raised.value)
    assert "no previous file" in str(raised.value)
    assert rig.destination.read_text() == "web: 10.0.0.1:80\n"
    with pytest.raises(PermanentError) as again:
        await unit.sync(False)
    assert str(again.value) == str(raised.value)
    assert [c.split()[0] for c in rig.calls()] == ["check", "reload"]
    started.touch()
    [result] = await unit.sync(True)
    assert result.changes == (f"reload {rig.destination}: its last reload failed or was cut short",)
    assert not pending_path(rig.destination).exists()
    assert [c.split()[0] for c in rig.calls()] == ["check", "reload", "reload"]
    [result] = await unit.sync(False)
    assert result.changes == ()
    assert rig.destination.read_text() == "web: 10.0.0.1:80\n"


async def test_rejected_bytes_are_retried_only_on_full_sync(rig: Rig) -> None:
    """Bytes that failed their check are not checked again until a full sync or a new render."""
    allowed = rig.tmp / "allowed"
    unit = rig.unit(check_command=rig.command("check", fail_when=f"[ ! -e {allowed} ]"))
    with pytest.raises(PermanentError) as first:
        await unit.sync(False)
    allowed.touch()
    with pytest.raises(PermanentError) as again:
        await unit.sync(False)
    assert str(again.value) == str(first.value)
    assert len(rig.calls()) == 1
    await unit.sync(True)
    assert [c.split()[0] for c in rig.calls()] == ["check", "check", "reload"]
    assert rig.destination.read_text() == "web: 10.0.0.1:80\n"


async def test_new_render_after_rejection_is_tried(rig: Rig) -> None:
    """After a rejection, different bytes are tried on a non-full sync."""
    unit = rig.unit(check_command=rig.command("check", fail_when='[ "$n" -eq 1 ]'))
    with pytest.raises(PermanentError):
        await unit.sync(False)
    rig.add("10.0.0.2:80")
    await unit.sync(False)
    assert rig.destination.read_text() == "web: 10.0.0.1:80 10.0.0.2:80\n"


async def test_backups_keep_n_versions_newest_first(rig: Rig) -> None:
    """Each swap copies the live file to dest.1 after shifting older ones; N versions kept."""
    rig.destination.write_bytes(OLD)
    unit = rig.unit(backups=3)
    written = []
    for member in ("10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80"):
        await unit.sync(False)
        written.append(rig.destination.read_text())
        rig.add(member)
    backups = [rig.destination.with_name(f"site.conf.{n}") for n in (1, 2, 3, 4)]
    assert [b.read_text() for b in backups[:3]] == [written[2], written[1], written[0]]
    assert not backups[3].exists()  # OLD, the oldest version, rotated out


async def test_retried_reload_does_not_rotate_backups_away(rig: Rig) -> None:
    """Retrying a rejected render (full resyncs) keeps the backups: no copies of one file."""
    rig.destination.write_bytes(OLD)
    unit = rig.unit(backups=2, reload_command=rig.command("reload", "true"))
    older = rig.destination.with_name("site.conf.1")
    older.write_bytes(b"older\n")
    for _ in range(3):
        with pytest.raises(PermanentError):
            await unit.sync(True)
    assert rig.destination.read_bytes() == OLD
    assert older.read_bytes() == OLD
    assert rig.destination.with_name("site.conf.2").read_bytes() == b"older\n"


async def test_no_backups_when_zero(rig: Rig) -> None:
    """backups = 0 keeps no previous version."""
    rig.destination.write_bytes(OLD)
    await rig.unit(backups=0).sync(False)
    assert sorted(p.name for p in rig.destination.parent.iterdir()) == ["site.conf"]


@pytest.mark.parametrize("mode", ["0600", "0640", "0755"])
async def test_mode_is_applied(rig: Rig, mode: str) -> None:
    """The written file has the configured mode, whatever the umask, and the configured owner."""
    await rig.unit(mode=mode, owner=pwd.getpwuid(os.getuid()).pw_name).sync(False)
    assert stat.S_IMODE(rig.destination.stat().st_mode) == int(mode, 8)
    assert rig.destination.stat().st_uid == os.getuid()


async def test_dry_run_returns_a_diff_and_writes_nothing(rig: Rig) -> None:
    """With apply off, the result is the unified diff; no file written, no command run."""
    rig.destination.write_bytes(OLD)
    [result] = await rig.unit(apply=False).sync(False)
    assert result.changes[0] == f"--- {rig.destination} (live)"
    assert result.changes[1] == f"+++ {rig.destination} (rendered)"
    assert "-old config" in result.changes
    assert "+web: 10.0.0.1:80" in result.changes
    assert rig.destination.read_bytes() == OLD
    assert sorted(p.name for p in rig.destination.parent.iterdir()) == ["site.conf"]
    assert rig.calls() == []


@pytest.mark.parametrize(
    "text",
    [
        "{{ no_such_name }}",
        "{{ upstreams[0].nope.deeper }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ upstreams[0].__class__.__init__.__globals__ }}",
        "{{ range(10**9) | list }}",
        "{{ vars.update({'n': 1}) }}",  # a template cannot keep state between renders
    ],
)
async def test_template_error_at_render_time(rig: Rig, text: str) -> None:
    """An undefined name or a sandbox violation is the template's PermanentError; nothing run."""
    rig.destination.write_bytes(OLD)
    rig.source.write_text(text)
    with pytest.raises(PermanentError, match="site"):
        await rig.unit().sync(False)
    assert rig.destination.read_bytes() == OLD
    assert rig.calls() == []


async def test_unencodable_render_is_a_template_error(rig: Rig) -> None:
    """A render that cannot be encoded as UTF-8 is the template's PermanentError."""
    rig.source.write_text('{{ "\\udcff" }}')
    with pytest.raises(PermanentError, match="site"):
        await rig.unit().sync(False)


async def test_command_timeout_kills_the_command(rig: Rig) -> None:
    """A check that outlives command_timeout is killed and reported; the live file stays."""
    rig.destination.write_bytes(OLD)
    pid_file = rig.tmp / "pid"
    hang = script(rig.tmp / "hang.sh", f"echo $$ > {pid_file}\nexec sleep 30")
    started = time.monotonic()
    with pytest.raises(PermanentError, match="timed out"):
        await rig.unit(check_command=[str(hang)], command_timeout=0.5).sync(False)
    assert time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    assert rig.destination.read_bytes() == OLD


async def test_command_that_cannot_start_is_reported(rig: Rig, tmp_path: Path) -> None:
    """A command removed after start-up is reported as not starting; the live file stays."""
    gone = script(tmp_path / "gone.sh", "exit 0")
    unit = rig.unit(check_command=[str(gone)])
    gone.unlink()
    rig.destination.write_bytes(OLD)
    with pytest.raises(PermanentError, match="could not start"):
        await unit.sync(False)
    assert rig.destination.read_bytes() == OLD


async def test_unit_reports_on_its_template_target(rig: Rig) -> None:
    """A template unit reports on template/NAME and ignores added upstream targets."""
    unit = rig.unit()
    unit.add(Target("upstream", "", "web"))
    assert unit.targets() == [template_target("site")]
    assert unit.settle.quiet == 0.25
    assert unit.settle.maximum == 5.0
