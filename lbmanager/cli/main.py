"""Argument parsing only: every command's flags, turned into one Settings object."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from pydantic import ValidationError

from lbmanager.errors import EXIT_USAGE, SyncError, usage_error
from lbmanager.runtime.logs import setup_logging
from lbmanager.settings import Settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line naming the problem, exit status 2 (SPEC §5)."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


_FLAG_HELP = {
    "etcd_endpoints": "comma-separated etcd URLs (default http://127.0.0.1:2379)",
    "prefix": "key prefix of the member tree (default /lbManager)",
    "state_prefix": "key prefix of the managed-target record (default /lbManagerState)",
    "resync_interval": "seconds between full resyncs that correct drift (default 60)",
    "route53_ttl": "TTL of the record sets lbmanager writes (default 60)",
    "route53_rps": "Route53 requests per second for the whole account (default 5)",
    "policy": "sync: add and remove; upsert-only: never remove (default sync)",
    "log_level": "debug, info, warning or error (default info)",
    "log_format": "text or json (default text)",
    "status_addr": "HOST:PORT of the status API (default 127.0.0.1:9180; reserved)",
    "render_config": "TOML file of nginx/haproxy templates to render (docs/local.md)",
}


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _settings_flags() -> _Parser:
    common = _Parser(add_help=False)
    for field, help_text in _FLAG_HELP.items():
        # SUPPRESS: a flag left out falls back to LBMANAGER_* and then to the default.
        common.add_argument(_flag(field), dest=field, default=argparse.SUPPRESS, help=help_text)
    common.add_argument("--dry-run", dest="dry_run", action="store_const", const=True,
                        default=argparse.SUPPRESS, help="log planned changes, write nothing")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The `lbmanager` command line."""
    common = _settings_flags()
    parser = _Parser(prog="lbmanager", description="Keep load balancers equal to etcd.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     metavar="{run,plan,member,forget,register,agent,render,local}")
    commands.add_parser("run", parents=[common], help="run the sync service")
    commands.add_parser("plan", parents=[common],
                        help="print pending changes; exit 0 in sync, 3 pending, 1 on errors")
    member = commands.add_parser("member", help="add, remove or list member keys")
    member_commands = member.add_subparsers(dest="member_command", required=True,
                                            parser_class=_Parser, metavar="{add,rm,ls}")
    add = member_commands.add_parser("add", parents=[common], help="put a member key")
    add.add_argument("key", help="KIND/REGION/NAME[/FQDN]/CLASS/MEMBER (or a full key)")
    add.add_argument("--value", default="", help="value to store (default empty)")
    remove = member_commands.add_parser("rm", parents=[common], help="delete a member key")
    remove.add_argument("key", help="KIND/REGION/NAME[/FQDN]/CLASS/MEMBER (or a full key)")
    listing = member_commands.add_parser("ls", parents=[common], help="list member keys")
    listing.add_argument("target", nargs="?", default="", help="only keys under this path")
    forget = commands.add_parser(
        "forget", parents=[common],
        help="drop a target from the managed record; the cloud is untouched")
    forget.add_argument("target", help="KIND/REGION/NAME[/FQDN], e.g. elb/us-east-1/web")
    _add_register(commands, common)
    _add_agent(commands, common)
    render = commands.add_parser(
        "render", parents=[common],
        help="render the nginx/haproxy templates of --config from the tree (no AWS)")
    render.add_argument("--config", dest="render_config", default=argparse.SUPPRESS,
                        metavar="FILE", help="the render configuration (same as --render-config)")
    render.add_argument("--once", action="store_true",
                        help="render each template once and exit (1 if any failed)")
    local = commands.add_parser("local", help="run on a private etcd and AWS emulator (demo)")
    local.add_argument("--no-demo", action="store_true", help="do not create the demo ELB/zone")
    return parser


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
        return value

    return convert


def _add_register(commands: Any, common: _Parser) -> None:
    register = commands.add_parser(
        "register", parents=[common],
        help="hold member keys on an etcd lease while this process (or --exec CMD) runs")
    register.add_argument("keys", nargs="+", metavar="KEY",
                          help="KIND/REGION/NAME[/FQDN]/CLASS/MEMBER (or a full key)")
    register.add_argument("--ttl", type=_positive(int), default=15,
                          help="lease TTL in seconds: keys vanish this long after a crash")
    register.add_argument("--value", default="", help="value to store (default empty)")
    register.add_argument("--health-url", help="put the keys only while this URL answers 2xx")
    register.add_argument("--health-interval", type=_positive(float), default=2.0,
                          help="seconds between health checks (default 2)")
    register.add_argument("--health-timeout", type=_positive(float), default=1.0,
                          help="seconds before a health check fails (default 1)")
    register.add_argument("--healthy-threshold", type=_positive(int), default=2,
                          help="2xx answers in a row that make it healthy (default 2)")
    register.add_argument("--unhealthy-threshold", type=_positive(int), default=2,
                          help="failures in a row that make it unhealthy (default 2)")
    register.add_argument("--exec", action="store_true", dest="exec_",
                          help="run the command after -- as a child; exit with its status")
    register.add_argument("--drain", type=_positive(float), default=None,
                          help="with --exec: seconds between withdrawing and stopping the child")


def _add_agent(commands: Any, common: _Parser) -> None:
    agent = commands.add_parser(
        "agent", parents=[common],
        help="hold presence keys for the running Docker containers that opt in (labels)")
    agent.add_argument("--docker", help="Docker daemon URL (default: DOCKER_HOST, else the "
                       "local socket)")
    agent.add_argument("--ttl", type=_positive(int), default=15,
                       help="lease TTL in seconds: keys vanish this long after a crash")
    agent.add_argument("--instance-id", help="this host's EC2 instance id (default: metadata)")
    agent.add_argument("--host-ip", help="this host's address (default: metadata public IPv4)")
    agent.add_argument("--internal", action="store_true",
                       help="ELBv2/upstream members are container IP and port, not host ones")
    agent.add_argument("--match", action="append", default=[], metavar="REGEX=KIND/TARGET",
                       help="containers whose name matches join TARGET (repeatable)")
    agent.add_argument("--keep-on-exit", action="store_true",
                       help="on SIGTERM leave the keys to expire instead of revoking them")


def load_settings(args: argparse.Namespace) -> Settings:
    """Settings from the given flags over LBMANAGER_* over defaults; bad ones exit 2."""
    given = {field: getattr(args, field) for field in [*_FLAG_HELP, "dry_run"]
             if hasattr(args, field)}
    try:
        return Settings(**given)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = _flag(field) if field else "--prefix/--state-prefix"
        env = f"LBMANAGER_{field.upper()}" if field else ""
        where = f"{name} (or {env})" if env else name
        print(f"lbmanager: error: {where}: {first['msg']}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _run_async(main: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    import uvloop  # noqa: PLC0415 - imported late so --help stays fast

    return uvloop.run(main()) or 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lbmanager` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    # `register ... --exec -- CMD ARGS`: the child's argv is everything after the first `--`.
    command = words[words.index("--") + 1 :] if "--" in words else []
    words = words[: words.index("--")] if "--" in words else words
    parser = build_parser()
    args = parser.parse_args(words)
    if args.command == "register" and bool(args.exec_) != bool(command):
        parser.error("register: --exec needs a command after --, and a command needs --exec")
    if args.command == "local":
        from lbmanager.cli.local import run_local  # noqa: PLC0415 - needs the `local` extra

        return run_local(demo=not bool(args.no_demo))
    settings = load_settings(args)
    if args.command == "render" and settings.render_config is None:
        parser.error("render: --config FILE is required (or LBMANAGER_RENDER_CONFIG)")
    setup_logging(settings.log_level, settings.log_format)
    from lbmanager.cli import commands  # noqa: PLC0415 - keeps --help and flag errors fast
    from lbmanager.cli import render as render_command  # noqa: PLC0415 - the same
    from lbmanager.render.config import ConfigError  # noqa: PLC0415 - the same
    from lbmanager.render.unit import load_templates  # noqa: PLC0415 - the same

    try:  # validated before anything starts (SPEC §5); only these commands render
        templates = load_templates(
            settings.render_config if args.command in ("run", "plan", "render") else None)
    except ConfigError as error:
        return usage_error(str(error))

    handlers: dict[str, Callable[[], Coroutine[Any, Any, int | None]]] = {
        "run": lambda: commands.run(settings, templates),
        "plan": lambda: commands.plan(settings, templates),
        "forget": lambda: commands.forget(settings, args.target),
        "member": lambda: commands.member(settings, args),
        "register": lambda: commands.register(settings, args, command),
        "agent": lambda: commands.agent(settings, args),
        "render": lambda: render_command.render(settings, templates, bool(args.once)),
    }
    try:
        return _run_async(handlers[args.command])
    except SyncError as error:
        # etcd or AWS unreachable for a one-shot command: one line, not a traceback.
        print(f"lbmanager: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
