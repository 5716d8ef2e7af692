"""The ``kubestream`` command.

Exit codes: 0 success, 1 the agent failed, 2 configuration or usage error, 3 the sink is
unusable (bad credentials, missing bucket, read-only directory), 130 interrupted.

Heavy modules (the agent, aiohttp, the simulator) are imported inside the commands that need
them, so ``kubestream version`` and ``kubestream validate`` start fast and work even where the
agent's optional parts are missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import kubestream
from kubestream.config.loader import load_config
from kubestream.config.settings import LogSettings, Settings
from kubestream.errors import ConfigError, KubestreamError
from kubestream.obs.logging import setup_logging

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2
EXIT_SINK: Final = 3
EXIT_INTERRUPTED: Final = 130

CONFIG_ENV: Final = "KUBESTREAM_CONFIG"
_PASSTHROUGH: Final = ("sim", "demo")
_GLOBAL_OPTIONS_WITH_VALUE: Final = ("--log-format", "--log-level")

log = logging.getLogger("kubestream.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    own, passthrough = _split_passthrough(args_list)
    args = build_parser().parse_args(own)
    try:
        if args.command in _PASSTHROUGH:
            return _run_passthrough(args, passthrough)
        if args.command == "version":
            print(version_text())
            return EXIT_OK
        if args.command == "validate":
            from kubestream.cli.validate import validate_command

            return validate_command(_config_path(args), check_sinks=args.check_sinks, server_host=args.server_host)
        if args.command == "compact":
            return _compact_command(args)
        if args.command in ("query", "timeline"):
            return _read_command(args)
        return _run_command(args)
    except ConfigError as exc:
        print(f"kubestream: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands run, validate, version, sim, demo)."""
    logging_options = argparse.ArgumentParser(add_help=False)
    _add_logging_options(logging_options, default=argparse.SUPPRESS)
    config_option = argparse.ArgumentParser(add_help=False)
    config_option.add_argument(
        "--config", "-c", type=Path, default=None,
        help=f"configuration file, YAML or JSON (default: ${CONFIG_ENV})")
    # For configurations that cannot say it themselves: a k8stream config.json has no server
    # section, yet in a pod the probes need a non-loopback address.
    config_option.add_argument(
        "--server-host", default=None, metavar="ADDRESS",
        help="listen address of /metrics, /healthz and /readyz (overrides server.host)")

    parser = argparse.ArgumentParser(
        prog="kubestream", description="Kubernetes Events and container logs into an exactly-once archive.")
    _add_logging_options(parser, default=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", parents=[config_option, logging_options], help="run the agent")
    run.add_argument("--ready-file", type=Path, default=None,
                     help="write this file once the agent is ready (for exec probes and scripts)")
    validate = commands.add_parser(
        "validate", parents=[config_option, logging_options], help="check a configuration file and exit")
    validate.add_argument("--check-sinks", action="store_true",
                          help="also connect to the sink and verify it is writable")
    from kubestream.cli.compact import add_parser as add_compact_parser

    add_compact_parser(commands, [config_option, logging_options])
    from kubestream.cli.query import add_query_parser
    from kubestream.cli.timeline import add_timeline_parser

    add_query_parser(commands, [logging_options])
    add_timeline_parser(commands, [logging_options])
    commands.add_parser("version", help="print versions and exit")
    commands.add_parser("sim", add_help=False, help="run the simulated cluster (arguments: kubestream sim --help)")
    commands.add_parser("demo", add_help=False, help="run the demo (arguments: kubestream demo --help)")
    return parser


def version_text() -> str:
    """``kubestream <version>`` and the versions that matter in a bug report."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        client = version("kubernetes")
    except PackageNotFoundError:
        client = "not installed"
    python = sys.version.split()[0]
    return f"kubestream {kubestream.__version__}\nPython {python}\nkubernetes client {client}"


def _add_logging_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    group = parser.add_argument_group("logging (overrides the configuration's log section)")
    group.add_argument("--log-format", choices=["text", "json"], default=default)
    group.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=default)


def _split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``[globals..., sim|demo, rest...]`` so ``rest`` reaches that command untouched.

    argparse's REMAINDER cannot do this: it still claims options like ``--help`` or ``--port``
    that belong to the sub-command.
    """
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if token.startswith("-"):
            i += 1
            continue
        if token in _PASSTHROUGH:
            return argv[: i + 1], argv[i + 1 :]
        break
    return argv, []


def _config_path(args: argparse.Namespace) -> Path:
    path: Path | None = args.config
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None:
        raise ConfigError(f"no configuration file: pass --config FILE or set {CONFIG_ENV}")
    return path


def _log_settings(configured: LogSettings, args: argparse.Namespace) -> LogSettings:
    """The configuration's log section with the command line's overrides applied."""
    overrides = {name: getattr(args, f"log_{name}", None) for name in ("format", "level")}
    return configured.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _run_command(args: argparse.Namespace) -> int:
    loaded = load_config(_config_path(args))
    log_settings = _log_settings(loaded.settings.log, args)
    setup_logging(log_settings)
    update: dict[str, object] = {"log": log_settings}
    if args.server_host is not None:
        update["server"] = loaded.settings.server.model_copy(update={"host": args.server_host})
    settings: Settings = loaded.settings.model_copy(update=update)
    # Debug, not info: a configuration the preflight then refuses must leave exactly one line.
    log.debug("configuration loaded", extra={"path": str(loaded.path), "k8stream_compat": loaded.k8stream_compat})
    from kubestream.agent.runner import run_agent

    try:
        return run_agent(settings, ready_file=args.ready_file)
    except ConfigError:
        raise
    except KubestreamError as exc:
        print(f"kubestream: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _compact_command(args: argparse.Namespace) -> int:
    from kubestream.cli.compact import compact_command

    loaded = load_config(_config_path(args))
    log_settings = _log_settings(loaded.settings.log, args)
    setup_logging(log_settings)
    return compact_command(loaded.settings.model_copy(update={"log": log_settings}), args)


def _read_command(args: argparse.Namespace) -> int:
    """``query`` and ``timeline``: warnings only (one line per skipped object), on stderr."""
    setup_logging(_log_settings(LogSettings(level="warning"), args))
    if args.command == "query":
        from kubestream.cli.query import query_command

        return query_command(args)
    from kubestream.cli.timeline import timeline_command

    return timeline_command(args)


def _run_passthrough(args: argparse.Namespace, rest: list[str]) -> int:
    setup_logging(_log_settings(LogSettings(), args))
    if args.command == "sim":
        from kubestream.sim.cli import main as sim_main

        return int(sim_main(rest))
    from kubestream.cli.demo import main as demo_main

    return int(demo_main(rest))


if __name__ == "__main__":
    sys.exit(main())
