"""Chunks of one render on several workers: local processes (`--workers N`) or a Ray cluster
(`--ray ADDRESS`, or `--ray local` for a cluster of this machine alone; the optional extra
`farm`). Each worker renders whole chunks into the shared state folder; the caller joins
them when all are done. A worker gets its share of the cores, so N workers on one machine
do not fight over the same threads.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Callable

from livedream.errors import UserError
from livedream.offline.render import Chunk

INSTALL_HINT = 'Ray is not installed; install it with: pip install "livedream[farm]"'

ChunkTask = Callable[[Chunk, int], object]
"""Renders one chunk with `threads` threads (0 = all) in a worker process, with its own
engine and dreamer. It travels to the worker, so it must pickle: a module-level function or
a `functools.partial` of one (`offline.video.dream_video` passes one)."""


def _chunk_on_worker(task: ChunkTask, chunk: Chunk, threads: int) -> str:
    task(chunk, threads)
    return chunk.label


class Farm:
    """Runs chunks on `workers` local processes, or as tasks on the Ray cluster at `ray_address`."""

    def __init__(self, workers: int, ray_address: str | None = None) -> None:
        self.workers = max(1, workers)
        self.ray_address = ray_address

    def threads_per_worker(self) -> int:
        return max(1, (os.cpu_count() or 1) // self.workers)

    def run(self, task: ChunkTask, chunks: list[Chunk]) -> None:
        if self.ray_address is not None:
            self._on_ray(task, chunks)
        else:
            self._on_processes(task, chunks)

    def _on_processes(self, task: ChunkTask, chunks: list[Chunk]) -> None:
        # spawn, not fork: ONNX Runtime's thread pools do not survive a fork
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context) as pool:
            futures = [pool.submit(_chunk_on_worker, task, chunk, self.threads_per_worker())
                       for chunk in chunks]
            for future in concurrent.futures.as_completed(futures):
                print(f"{future.result()} done", flush=True)

    def _on_ray(self, task: ChunkTask, chunks: list[Chunk]) -> None:
        try:
            import ray
        except ImportError:
            raise UserError(INSTALL_HINT) from None
        local = self.ray_address == "local"
        if not ray.is_initialized():
            ray.init(address=None if local else self.ray_address, num_cpus=self.workers if local else None,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        threads = self.threads_per_worker() if local else 0
        remote = ray.remote(num_cpus=1)(_chunk_on_worker)
        pending = [remote.remote(task, chunk, threads) for chunk in chunks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            print(f"{ray.get(done[0])} done", flush=True)
