"""Command line: `python -m devstack run` starts the local stack (see docs/OPERATIONS.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devstack.environment import PROJECT_DIR

STATE_DIR = PROJECT_DIR / "build" / "devstack"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="moto + table + stream runner + chalice local")
    run.add_argument("--port", type=int, default=8000, help="chalice local (default 8000)")
    run.add_argument("--moto-port", type=int, default=8001, help="moto server (default 8001)")
    run.add_argument("--stage", default="local", help="Chalice stage (default local)")
    run.add_argument("--state-dir", type=Path, default=STATE_DIR,
                     help="where parked records go (default build/devstack)")
    run.add_argument("--no-reload", action="store_true",
                     help="chalice local without its file-watching reloader (tests, benchmarks)")
    run.add_argument("--no-moto", action="store_true",
                     help="use the AWS settings you have (a real table); create nothing")
    run.add_argument("--no-streams", action="store_true",
                     help="no stream runner (deployed follow-ups already consume the stream)")
    run.add_argument("--table", help="table name (default: the stage's TABLE_NAME)")

    streams = commands.add_parser("streams", help="only the stream runner, on any table")
    streams.add_argument("--stage", default="local")
    streams.add_argument("--table", help="table name (default: the stage's TABLE_NAME)")
    streams.add_argument("--park-file", type=Path, default=STATE_DIR / "parked.jsonl")
    streams.add_argument("--poll-interval", type=float,
                         help="seconds between reads of an idle stream "
                              "(default 0.025 on moto, 0.25 on AWS)")
    streams.add_argument("--max-attempts", type=int, default=3,
                         help="tries before a failing record is parked")
    streams.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)

    replay = commands.add_parser("replay", help="deliver parked records to their handlers again")
    replay.add_argument("--stage", default="local")
    replay.add_argument("--table", help="table name (default: the stage's TABLE_NAME)")
    replay.add_argument("--park-file", type=Path, default=STATE_DIR / "parked.jsonl")
    replay.add_argument("--moto-port", type=int, default=8001,
                        help="the running local stack's moto (stage local only; default 8001)")

    moto = commands.add_parser("moto", help="only the moto server")
    moto.add_argument("--host", default="127.0.0.1")
    moto.add_argument("--port", type=int, default=8001)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from devstack.supervisor import Stack, run

        return run(Stack(args.port, args.moto_port, args.stage, args.state_dir,
                         use_moto=not args.no_moto, reload=not args.no_reload,
                         streams=not args.no_streams, table=args.table))
    if args.command == "streams":
        from devstack.runner import main as streams

        return streams(args.stage, args.table, args.park_file, args.poll_interval,
                       args.max_attempts, args.ready_fd)
    if args.command == "replay":
        from devstack.environment import moto_environment
        from devstack.runner import replay as replay_parked

        if args.stage == "local":
            local = moto_environment(os.environ, f"http://127.0.0.1:{args.moto_port}")
            os.environ.clear()
            os.environ.update(local)
        return replay_parked(args.stage, args.table, args.park_file)
    from devstack.motoserver import serve

    serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Tearing down moto's and boto3's thousands of modules takes most of a
    # second; the stack's children have nothing left to clean up.
    os._exit(code)
