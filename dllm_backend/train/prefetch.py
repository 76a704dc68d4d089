"""The trainer's batch stream made in a child process, so a GPU run does not wait for it.

Drawing and tokenizing a batch of 256 examples costs the CPU several milliseconds, about
what a GPU step of the tiny model costs; a child process (spawned: no CUDA or thread pool
is inherited) runs the very same `batches` generator and hands the tensors over through a
bounded queue, so the stream is identical to the in-process one.
"""
from __future__ import annotations

import multiprocessing as mp
import queue
from typing import Any, Callable, Iterator, Mapping

import torch

from .data import Batch

_POLL_S = 5.0  # how often a waiting consumer checks that the producer is still alive


def _produce(q, make: Callable[..., Iterator[Batch]], args: tuple, kwargs: Mapping[str, Any]) -> None:
    torch.set_num_threads(1)
    try:
        for batch in make(*args, **kwargs):
            q.put((batch.ids.numpy(), batch.answer.numpy()))
        q.put(None)
    except BaseException as e:  # the consumer re-raises it with the producer's message
        q.put(f"{type(e).__name__}: {e}")


def prefetched(make: Callable[..., Iterator[Batch]], *args: Any, depth: int = 128, **kwargs: Any) -> Iterator[Batch]:
    """Yields `make(*args, **kwargs)`'s batches, produced in a child process at most `depth` ahead.

    `make` and its arguments must be picklable (a module-level function, plain values), and
    the program's main module import-safe (the `if __name__ == "__main__":` idiom), as for
    any spawned process: the child imports it. The
    default depth rides out the trainer's chunk boundaries, where the producer draws 100
    steps of examples at once (about 0.5 s at batch 256).
    """
    ctx = mp.get_context("spawn")
    q = ctx.Queue(maxsize=depth)
    proc = ctx.Process(target=_produce, args=(q, make, args, kwargs), daemon=True)
    proc.start()
    try:
        while True:
            try:
                item = q.get(timeout=_POLL_S)
            except queue.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"the batch producer died (exit code {proc.exitcode})") from None
                continue
            if item is None:
                return
            if isinstance(item, str):
                raise RuntimeError(f"the batch producer failed: {item}")
            ids, answer = item
            yield Batch(ids=torch.from_numpy(ids), answer=torch.from_numpy(answer))
    finally:
        proc.kill()
        proc.join()
