"""``python -m mgsk.mlflow sync``: send what mgsk.autolog spooled; ``... spool``: list it."""

import argparse
import sys


def _parser():
    parser = argparse.ArgumentParser(prog="python -m mgsk.mlflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [
        ("sync", "replay the spool to the tracking store (see mgsk.mlflow.sync)"),
        ("spool", "list the entries waiting in the spool, and why they were spooled"),
    ]:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--tracking-uri", help="the store (default: MLFLOW_TRACKING_URI, as MLflow)")
        command.add_argument("--spool-dir", help="the spool root (default: MGSK_SPOOL_DIR or ~/.cache/mgsk/spool)")
        if name == "sync":
            command.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for another replay")
    return parser


def _list(tracking_uri, spool_dir):
    from ._autolog.spool import Spool

    spool = Spool(tracking_uri, spool_dir)
    entries = spool.pending_entries()
    print(f"spool {spool.folder} -> {tracking_uri}: {len(entries)} entries pending")
    for entry in entries:
        record = entry.record
        run = record["run"].get("run_id") or "(new run)"
        state = entry.state()
        search = record.get("search")
        children = f"  with {len(search['children'])} child runs" if search else ""
        print(f"{entry.name}  run {run}{children}  experiment {record['experiment_id']}  {record['reason']}")
        if state:
            print(f"    replay so far: {state}")
    return 0


def main(argv=None):
    """Run the command line; return the exit status (1 when entries stay pending)."""
    import mlflow

    args = _parser().parse_args(argv)
    uri = args.tracking_uri or mlflow.get_tracking_uri()
    if args.command == "spool":
        return _list(uri, args.spool_dir)
    from ._autolog.replay import sync

    summary = sync(uri, spool_dir=args.spool_dir, timeout=args.timeout)
    print(summary)
    return 1 if summary.pending or summary.busy else 0


if __name__ == "__main__":
    sys.exit(main())
