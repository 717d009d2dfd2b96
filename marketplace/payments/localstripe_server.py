"""The development and test payment gateway: localstripe on 127.0.0.1 with its own state file.

    python -m marketplace.payments.localstripe_server --port 8420 --state-file instance/localstripe.pickle

localstripe 1.15.10 has no --host option (its `localstripe` command binds every interface) and pickles
its state to one fixed file in the system temporary folder, which two instances would share. This runs
the same aiohttp app on one address and keeps the state where it is told, written atomically so a
process killed mid-write (the tests do that) leaves the previous state whole."""
from __future__ import annotations

import argparse
import logging
import os
import pickle
from pathlib import Path

from aiohttp import web
from localstripe import resources
from localstripe.server import app

log = logging.getLogger(__name__)


def use_state_file(path: Path) -> None:
    """Point localstripe's store at `path` (its own methods name /tmp/localstripe.pickle)."""

    def load(store: resources.Store) -> None:
        try:
            with path.open("rb") as state:
                saved = pickle.load(state)
        except FileNotFoundError:
            return
        dict.clear(store)
        dict.update(store, saved)

    def dump(store: resources.Store) -> None:
        partial = path.with_name(path.name + ".part")
        with partial.open("wb") as state:
            pickle.dump(store, state, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="localstripe on one address, with its own state file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--from-scratch", action="store_true", help="forget the saved state")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.state_file.parent.mkdir(parents=True, exist_ok=True)
    use_state_file(args.state_file.resolve())
    if not args.from_scratch:
        resources.store.try_load_from_disk()
    log.info("localstripe on http://%s:%s, state in %s", args.host, args.port, args.state_file)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
