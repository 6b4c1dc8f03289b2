"""How close the CPU gradient step is to what this machine can do: GFLOP per step (torch's
flop counter on the same net, forward + input gradient), GFLOP/s of each CPU row, and that
as a share of an sgemm peak measured in the same run on the same threads. Printed under the
step table by `tools/bench.py` whenever it has CPU rows."""

from __future__ import annotations

import os
import time
from typing import Protocol

import numpy as np

SGEMM_N = 4096
SGEMM_REPEATS = 5


class TimedCell(Protocol):
    backend: str
    device: str
    height: int
    width: int
    samples_ms: list[float]

    @property
    def median_ms(self) -> float: ...


def sgemm_gflops() -> float:
    """The best of a few 4096² float32 matrix products on numpy's BLAS (every core, as ONNX
    Runtime's default uses): the practical peak."""
    rng = np.random.default_rng(0)
    a = rng.random((SGEMM_N, SGEMM_N), dtype=np.float32)
    b = rng.random((SGEMM_N, SGEMM_N), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm-up: BLAS threads start, pages are touched
    best = float("inf")
    for _ in range(SGEMM_REPEATS):
        started = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * SGEMM_N**3 / best / 1e9


def step_gflop(height: int, width: int) -> float | None:
    """FLOP of one step at height x width, counted by torch (None without torch)."""
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    from livedream.export.inception import DEFAULT_LAYERS, KERAS, InceptionV3, canonical_layer, dream_loss

    model = InceptionV3.for_layers(DEFAULT_LAYERS, KERAS).eval().requires_grad_(False)
    layer_weights = {canonical_layer(layer): 1.0 for layer in DEFAULT_LAYERS}
    image = torch.zeros(1, 3, height, width, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        loss = dream_loss(model(image, DEFAULT_LAYERS), layer_weights)
        loss.backward()  # the flop counter's hooks do not follow autograd.grad on a leaf; the weights' grads are off
    return counter.get_total_flops() / 1e9


def render_efficiency(cells: list[TimedCell]) -> None:
    cpu = [cell for cell in cells if cell.device == "cpu" and cell.samples_ms]
    if not cpu:
        return
    threads = os.cpu_count() or 1
    peak = sgemm_gflops()
    print(f"\nCPU efficiency: sgemm {SGEMM_N}² peak {peak:.0f} GFLOP/s on {threads} threads (this run)")
    print(f"{'size':>9} {'backend':<18} {'GFLOP/step':>10} {'GFLOP/s':>8} {'of sgemm':>9}")
    flops: dict[tuple[int, int], float | None] = {}
    for cell in cpu:
        size = (cell.height, cell.width)
        if size not in flops:
            flops[size] = step_gflop(*size)
        gflop = flops[size]
        if gflop is None:
            print(f"{cell.height:>4}x{cell.width:<4} {cell.backend:<18} (torch missing: no flop count)")
            continue
        rate = gflop / (cell.median_ms / 1000)
        print(f"{cell.height:>4}x{cell.width:<4} {cell.backend:<18} {gflop:>10.1f} {rate:>8.0f} {rate / peak:>9.0%}")
