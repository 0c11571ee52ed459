"""Run each of `bench pipeline`'s modes in a fresh process (see ``emostream.bench.pipeline``)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection

from emostream.cli.logconfig import configure_logging


def _child(run_one: Callable[[str], list[dict]], mode: str, log_level: str, send: Connection):
    configure_logging(log_level)
    send.send(run_one(mode))
    send.close()


def results_apart(
    run_one: Callable[[str], list[dict]], modes: list[str], log_level: str = "INFO"
) -> list[dict]:
    """``run_one(mode)`` for each mode, each in a fresh spawned process, one after another.

    ``run_one`` must pickle (a module-level function or a partial of one).
    """
    spawn = multiprocessing.get_context("spawn")
    results: list[dict] = []
    for mode in modes:
        receive, send = spawn.Pipe(duplex=False)
        child = spawn.Process(target=_child, args=(run_one, mode, log_level, send))
        child.start()
        send.close()  # the child holds the only writer: its exit ends recv() below
        try:
            results += receive.recv()
        except EOFError:
            raise RuntimeError(
                f"the {mode} run's process exited ({child.exitcode}) without its results; "
                "its log above says why"
            ) from None
        finally:
            child.join()
    return results
