"""Command line: `python -m devstack run` starts the local stack (see docs/OPERATIONS.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devstack.environment import PROJECT_DIR
from devstack.ports import PortError, flag, port_number

STATE_DIR = PROJECT_DIR / "build" / "devstack"


def _port(text: str) -> int:
    try:
        return port_number(text)
    except PortError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _flag(text: str) -> bool:
    try:
        return flag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="moto + table + stream runner + chalice local")
    run.add_argument("--port", type=_port, default=8000, help="chalice local (default 8000)")
    run.add_argument("--moto-port", type=_port, default=8001,
                     help="moto server (default 8001)")
    run.add_argument("--stage", default="local", help="Chalice stage (default local)")
    run.add_argument("--state-dir", type=Path, default=STATE_DIR,
                     help="saved table, stream position, parked records, stack.log "
                          "(default build/devstack)")
    run.add_argument("--reload", type=_flag, default=None, metavar="1|0",
                     help="chalice local's file-watching reloader: 1/true/yes or 0/false/no")
    run.add_argument("--no-reload", action="store_true",
                     help="chalice local without its file-watching reloader (tests, benchmarks)")
    run.add_argument("--fresh", action="store_true",
                     help="forget the saved table, stream position and parked records "
                          "(`make reset`)")
    run.add_argument("--verbose", "-v", type=_flag, nargs="?", const=True, default=False,
                     metavar="1|0", help="the stream runner logs one line per batch")
    run.add_argument("--tail-remote", action="store_true",
                     help="with --no-moto: run the stream runner on a table in AWS")
    run.add_argument("--no-moto", action="store_true",
                     help="use the AWS settings you have (a real table); create nothing")
    run.add_argument("--no-streams", action="store_true",
                     help="no stream runner (deployed follow-ups already consume the stream)")
    run.add_argument("--table", help="table name (default: the stage's TABLE_NAME)")
    run.add_argument("--ttl-interval", type=float, default=60.0, metavar="SECONDS",
                     help="expire items past their TTL every SECONDS, as DynamoDB's TTL "
                          "does (default 60; 0: never)")

    streams = commands.add_parser("streams", help="only the stream runner, on any table")
    streams.add_argument("--stage", default="local")
    streams.add_argument("--table", help="table name (default: the stage's TABLE_NAME)")
    streams.add_argument("--park-file", type=Path, default=STATE_DIR / "parked.jsonl")
    streams.add_argument("--poll-interval", type=float,
                         help="seconds between reads of an idle stream "
                              "(default 0.025 on moto, 0.25 on AWS)")
    streams.add_argument("--max-attempts", type=int, default=3,
                         help="tries before a failing record is parked")
    streams.add_argument("--checkpoint", type=Path,
                         help="keep each handler's stream position here, resume from it")
    streams.add_argument("--max-interval", type=float, default=0.5,
                         help="longest wait between reads of an idle stream (default 0.5)")
    streams.add_argument("--verbose", "-v", action="store_true",
                         help="one line per batch: handler, records, outcome, milliseconds")
    streams.add_argument("--tail-remote", action="store_true",
                         help="tail a table that is not the local stack's (a real one)")
    streams.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)

    replay = commands.add_parser("replay", help="deliver parked records to their handlers again")
    replay.add_argument("--stage", default="local")
    replay.add_argument("--table", help="table name (default: the stage's TABLE_NAME)")
    replay.add_argument("--park-file", type=Path, default=STATE_DIR / "parked.jsonl")
    replay.add_argument("--moto-port", type=_port, default=8001,
                        help="the running local stack's moto (stage local only; default 8001)")

    browser = commands.add_parser("browser", help="print the Chrome/Chromium the browser "
                                  "tests use (apt-get installs one on Debian/Ubuntu)")
    browser.add_argument("--no-install", action="store_true", help="only look")

    emulate = commands.add_parser("emulate", help="MiniStack with the emulated stage "
                                  "deployed to it, until Ctrl-C (`make emulate`)")
    emulate.add_argument("--port", type=_port, default=4566, help="MiniStack (default 4566)")
    emulate.add_argument("--api", choices=("rest", "http"), default="rest",
                         help="the API's front door (default rest)")
    emulate.add_argument("--state-dir", type=Path, default=PROJECT_DIR / "build" / "emulate",
                         help="MiniStack's log and working directory (default build/emulate)")

    moto = commands.add_parser("moto", help="only the moto server")
    moto.add_argument("--host", default="127.0.0.1")
    moto.add_argument("--port", type=_port, default=8001)
    moto.add_argument("--snapshot", type=Path, help="save this table's items here")
    moto.add_argument("--table", help="the table --snapshot saves")
    moto.add_argument("--ttl-interval", type=float, default=60.0,
                      help="seconds between TTL sweeps (0: items never expire)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from devstack.supervisor import Stack, run

        reload = args.reload if args.reload is not None else not args.no_reload
        return run(Stack(args.port, args.moto_port, args.stage, args.state_dir,
                         use_moto=not args.no_moto, reload=reload,
                         streams=not args.no_streams, table=args.table,
                         verbose=args.verbose, tail_remote=args.tail_remote,
                         fresh=args.fresh, ttl_interval=args.ttl_interval))
    if args.command == "streams":
        from devstack.runner import main as streams

        return streams(args.stage, args.table, args.park_file, args.poll_interval,
                       args.max_attempts, args.ready_fd, verbose=args.verbose,
                       tail_remote=args.tail_remote, checkpoint_file=args.checkpoint,
                       max_interval=args.max_interval)
    if args.command == "replay":
        from devstack.environment import moto_environment
        from devstack.runner import replay as replay_parked

        if args.stage == "local":
            local = moto_environment(os.environ, f"http://127.0.0.1:{args.moto_port}")
            os.environ.clear()
            os.environ.update(local)
        return replay_parked(args.stage, args.table, args.park_file)
    if args.command == "browser":
        from devstack.browser import main as browser_main

        return browser_main(install=not args.no_install)
    if args.command == "emulate":
        from devstack.emulator import run as emulate

        return emulate(args.port, api=args.api, state_dir=args.state_dir)
    from devstack.motoserver import serve

    serve(args.host, args.port, snapshot=args.snapshot, table_name=args.table,
          ttl_interval=args.ttl_interval)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Tearing down moto's and boto3's thousands of modules takes most of a
    # second; the stack's children have nothing left to clean up.
    os._exit(code)
