"""The whitened read-out against the formulation before it, side by side in one run.

On one 1024 x 768 image through paper-cae's conv2 (random init, seeded) with a whitening to
128 numbers fitted on its own cells, times (best of ``--repeats``) the stack-then-project read-out
(``Whitening.apply(stack_cells(...))``), the convolution (``whitened_cells``: the dense map), the
convolution pooled strip by strip (``pool_strips(whitened_strips(...))``: what pooled extraction
runs) and the network's forward pass, and prints their ratios and the largest difference between
the two dense read-outs.

    python bench/bench_readout.py
"""

from __future__ import annotations

import argparse
import time

import torch

from featkit.encoders import create_encoder
from featkit.features.descriptors import stack_cells, whitened_cells, whitened_strips
from featkit.features.pooling import pool_strips
from featkit.runs.whitening import fit_whitening


def best_ms(action, repeats: int) -> float:
    action()  # warm-up: allocator, oneDNN kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--width", type=int, default=1024)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = create_encoder("paper-cae").eval()
    images = torch.rand(1, 3, args.height, args.width) * 2 - 1
    with torch.no_grad():
        maps = model.features(images, "conv2").float()
        cells = stack_cells(maps, 3).flatten(2)[0].T.numpy()
        whitening = fit_whitening(cells[:: max(1, len(cells) // 4000)], layer="conv2", window=3)
        network = best_ms(lambda: model.features(images, "conv2"), args.repeats)
        stacked = best_ms(lambda: whitening.apply(stack_cells(maps, 3)), args.repeats)
        convolved = best_ms(lambda: whitened_cells(maps, whitening), args.repeats)
        pooled = best_ms(lambda: pool_strips(whitened_strips(maps, whitening), "avg"), args.repeats)
        difference = (whitening.apply(stack_cells(maps, 3)) - whitened_cells(maps, whitening)).abs().max().item()
    print(f"{args.width} x {args.height}, paper-cae conv2, whitening to {whitening.dim}, {torch.get_num_threads()} threads")
    print(f"network {network:.0f} ms | stack+project {stacked:.0f} ms | convolution {convolved:.0f} ms | "
          f"pooled in strips {pooled:.0f} ms")  # fmt: skip
    print(f"convolution / stack+project {convolved / stacked:.2f} | convolution / network {convolved / network:.2f} "
          f"| pooled in strips / network {pooled / network:.2f} | largest difference {difference:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
