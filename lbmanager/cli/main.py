"""Entry point of `lbmanager`: parse, build the command's settings, set up logging, dispatch."""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from lbmanager.cli import flags
from lbmanager.errors import EXIT_USAGE, StoreRefused, SyncError, usage_error
from lbmanager.presence.settings import AgentSettings, RegisterSettings
from lbmanager.runtime.logs import setup_logging
from lbmanager.settings import (
    ForgetSettings,
    LocalSettings,
    LogSettings,
    MemberAddSettings,
    MemberLsSettings,
    MemberRmSettings,
    PlanSettings,
    ReleaseSettings,
    RenderSettings,
    Settings,
    StatusSettings,
)


@dataclass(frozen=True, slots=True)
class Command:
    """A command but `local`: its settings (its flags), its coroutine, its help line."""

    settings: type[LogSettings]
    # "module:function", imported only when the command runs, so --help stays fast.
    handler: str
    help: str


# "member add" is the `add` subcommand of `member`; `local` is added after these.
COMMANDS = {
    "run": Command(Settings, "lbmanager.cli.sync:run", "run the sync service"),
    "plan": Command(
        PlanSettings,
        "lbmanager.cli.sync:plan",
        "print pending changes; exit 0 in sync, 3 pending, 1 on errors",
    ),
    "member add": Command(MemberAddSettings, "lbmanager.cli.members:add", "put a member key"),
    "member rm": Command(MemberRmSettings, "lbmanager.cli.members:remove", "delete a member key"),
    "member ls": Command(MemberLsSettings, "lbmanager.cli.members:listing", "list member keys"),
    "forget": Command(
        ForgetSettings,
        "lbmanager.cli.members:forget",
        "drop a target from the managed record; the cloud is untouched",
    ),
    "release": Command(
        ReleaseSettings,
        "lbmanager.cli.release:release",
        "let removals held until a release go ahead (the tree went empty: SPEC §10)",
    ),
    "register": Command(
        RegisterSettings,
        "lbmanager.cli.presence:register",
        "hold member keys on an etcd lease while this process (or --exec CMD) runs",
    ),
    "agent": Command(
        AgentSettings,
        "lbmanager.cli.presence:agent",
        "hold presence keys for the running Docker containers that opt in (labels)",
    ),
    "render": Command(
        RenderSettings,
        "lbmanager.cli.render:render",
        "render the nginx/haproxy templates of --config from the tree (no AWS)",
    ),
    "status": Command(
        StatusSettings,
        "lbmanager.cli.status:status",
        "print the running service's status; exit 0 when no target is in error, 1 otherwise",
    ),
}
_GROUPS = {"member": "add, remove or list member keys"}
_LOCAL = "local"
EXIT_INTERRUPTED = 128 + 2  # 128 + SIGINT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line naming the problem, exit status 2 (SPEC §5)."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    """`--version`, looked up only when asked: the lookup costs tens of milliseconds."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: Any) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print the version and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> NoReturn:
        """Print `lbmanager X.Y.Z` and exit 0."""
        from importlib.metadata import version  # noqa: PLC0415 - only for --version

        print(f"lbmanager {version('lbmanager')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The `lbmanager` command line: each command lists the fields of its settings class."""
    parser = _Parser(prog="lbmanager", description="Keep load balancers equal to etcd.")
    parser.add_argument("--version", action=_Version)
    top = parser.add_subparsers(required=True, parser_class=_Parser)
    groups = {"": top}
    for name, command in COMMANDS.items():
        group, _, leaf = name.rpartition(" ")
        if group not in groups:  # created at its first subcommand, to keep the listed order
            groups[group] = top.add_parser(group, help=_GROUPS[group]).add_subparsers(
                required=True, parser_class=_Parser
            )
        sub = groups[group].add_parser(leaf, help=command.help)
        flags.add_arguments(sub, command.settings)
        sub.set_defaults(command_name=name)
    local = top.add_parser(_LOCAL, help="run on a private etcd and AWS emulator (demo)")
    flags.add_arguments(local, LocalSettings)
    local.set_defaults(command_name=_LOCAL)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lbmanager` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    # `register ... --exec -- CMD ARGS`: the child's argv is everything after the first `--`.
    after_dashes = words[words.index("--") + 1 :] if "--" in words else []
    words = words[: words.index("--")] if "--" in words else words
    args = vars(build_parser().parse_args(words))
    if args["command_name"] == _LOCAL:
        local = flags.load(LocalSettings, args)
        from lbmanager.cli.local import run_local  # noqa: PLC0415 - needs the `local` extra

        # The service's settings are built there, once its private etcd has a port.
        return run_local(not local.no_demo, functools.partial(flags.load, Settings))
    command = COMMANDS[args["command_name"]]
    settings = flags.load(command.settings, args, after_dashes)
    setup_logging(settings.log_level, settings.log_format)
    try:
        return _dispatch(command, settings)
    except KeyboardInterrupt:
        # Ctrl-C in a one-shot command (long-running ones stop on SIGINT by themselves, exit 0):
        # the usual status of a process SIGINT ended, without a traceback.
        return EXIT_INTERRUPTED


def _dispatch(command: Command, settings: LogSettings) -> int:
    import uvloop  # noqa: PLC0415 - imported late so --help and flag errors stay fast

    from lbmanager.render.config import ConfigError  # noqa: PLC0415 - the same

    module, _, function = command.handler.partition(":")
    handler = getattr(importlib.import_module(module), function)
    try:
        status: int = uvloop.run(handler(settings))
    except ConfigError as error:  # a bad render configuration, read before anything starts
        return usage_error(str(error))
    except (StoreRefused, ExceptionGroup) as error:
        # etcd refused our certificate, password or permissions: configuration, so exit 2
        # (SPEC §10), also when it ended a task group of a long-running command.
        refusal = _refusal(error)
        if refusal is None:
            raise
        return usage_error(str(refusal))
    except SyncError as error:
        # etcd or AWS unreachable for a one-shot command: one line, not a traceback.
        print(f"lbmanager: error: {error}", file=sys.stderr)
        return 1
    return status


def _refusal(error: BaseException) -> StoreRefused | None:
    """The StoreRefused that ``error`` is or holds, if any."""
    if isinstance(error, StoreRefused):
        return error
    if isinstance(error, BaseExceptionGroup):
        return next(filter(None, map(_refusal, error.exceptions)), None)
    return None


if __name__ == "__main__":
    sys.exit(main())
