"""Loss speed, measured side by side in one run, printed as ratios.

(a) a training step (forward, backward, SGD update) of the paper's CAE (Table 1) on a 300 x 300
    photo with ``pl+sfl`` against the same step with ``pl`` (goal: at most 1.05x);
(b) ``sfl`` forward + backward against the dense formulation, which filters both images with
    3-channel k x k LoG kernels per band as the paper's layer 6 does (goal: at least 10x faster);
(c) ``sfl-dog`` forward + backward against the ``spatial-frequency-loss`` package's separable
    backend on the same inputs (goal: at least 5x faster, values equal to 1e-4 relative). The
    package is GPL and not a featkit dependency: (c) is skipped when it is not installed.

Timings alternate between the contenders (A, B, B, A, ...) and report medians (and the ratio
of minima), so a busy, shared machine slows both alike. torch runs on one thread unless ``--threads`` says otherwise:
on a shared machine, multi-threaded runs mostly time OpenMP barriers waiting for other
processes. Run: ``python bench/bench_losses.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import featkit
from featkit.data.images import find_images, load_image
from featkit.data.samples import sample_images
from featkit.losses.frequency import PAPER_SCALES, PAPER_WEIGHTS
from featkit.ops.filters import log_kernel2d


def interleaved(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Seconds per call of each contender, timed in alternation (A B, B A, A B, ...)."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders.items())
    for i in range(repeats):
        for name, fn in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def photo(side: int) -> torch.Tensor:
    """A real sample photo, (1, 3, H, W) in [-1, 1], longer side ``side``."""
    return load_image(find_images(sample_images())[0], max_side=side)[None]


class DenseSFL(torch.nn.Module):
    """The naive SFL: both images through dense (1, 3, k, k) LoG kernels, one conv per band."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels = [log_kernel2d(s).expand(1, 3, -1, -1).contiguous() for s in PAPER_SCALES]

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = output.new_zeros(())
        for weight, kernel in zip(PAPER_WEIGHTS, self.kernels):
            pad = kernel.shape[-1] // 2
            diff = F.conv2d(output, kernel, padding=pad) - F.conv2d(target, kernel, padding=pad)
            total = total + weight * 0.5 * diff.square().mean(dim=(1, 2, 3)).mean()
        return total


def forward_backward(
    loss: Callable, output: torch.Tensor, target: torch.Tensor
) -> Callable[[], None]:
    def run() -> None:
        x = output.detach().requires_grad_(True)
        loss(x, target).backward()

    return run


def training_step(spec: str, image: torch.Tensor) -> Callable[[], None]:
    torch.manual_seed(0)
    model = featkit.create_encoder("paper-cae")
    loss = featkit.create_loss(spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.5)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(model(image), image).backward()
        optimizer.step()

    return step


def report(label: str, times: dict[str, list[float]], slow: str, fast: str, goal: str) -> None:
    """Print medians and the slow / fast ratio of medians (and of minima, the least disturbed
    runs on a busy machine)."""
    median = {name: statistics.median(t) for name, t in times.items()}
    parts = ", ".join(f"{name} {1000 * t:.2f} ms" for name, t in median.items())
    print(f"{label}: median {parts}")
    ratio, best = median[slow] / median[fast], min(times[slow]) / min(times[fast])
    print(f"  ratio {slow} / {fast} = {ratio:.3f}  (of minima: {best:.3f}; goal: {goal})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny images and few repeats: a smoke run"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per contender")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument(
        "--only", choices=["a", "b", "c"], action="append", help="run only these parts"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    side = 48 if args.quick else 300
    repeats = args.repeats or (3 if args.quick else 31)
    image = photo(side)
    print(
        f"image {tuple(image.shape[-2:])}, {repeats} alternating repeats, {torch.get_num_threads()} threads"
    )

    parts = set(args.only or "abc")

    # (a) CAE training step, pl+sfl vs pl
    if "a" in parts:
        times = interleaved(
            {"pl": training_step("pl", image), "pl+sfl": training_step("pl+sfl", image)}, repeats
        )
        report("(a) CAE training step", times, "pl+sfl", "pl", "<= 1.05")

    # (b) sfl vs the dense formulation, on a reconstruction-like blurred copy
    target = image
    output = F.avg_pool2d(image, 3, stride=1, padding=1)
    if "b" in parts:
        sfl, dense = featkit.create_loss("sfl"), DenseSFL()
        gap = abs(float(sfl(output, target)) / float(dense(output, target)) - 1)
        times = interleaved(
            {
                "dense conv2d": forward_backward(dense, output, target),
                "sfl": forward_backward(sfl, output, target),
            },
            repeats,
        )
        report("(b) sfl forward+backward", times, "dense conv2d", "sfl", ">= 10")
        print(f"  values: relative difference {gap:.1e}")
    if "c" in parts:
        bench_dog(output, target, repeats)
    return 0


def bench_dog(output: torch.Tensor, target: torch.Tensor, repeats: int) -> None:
    """(c): sfl-dog against the published package, if installed."""
    # (c) sfl-dog vs the published package's separable backend
    try:
        from spatial_frequency_loss import SpatialFrequencyLoss as Published
    except ImportError:
        print("(c) sfl-dog: skipped, the spatial-frequency-loss package is not installed")
        return
    weights = [float(w) for w in torch.linspace(2.0, 0.5, 7)]
    dog = featkit.create_loss("sfl-dog", weights=weights)
    published = Published(
        3, 0.6, 7, filter_backend="separable", ier_update_mode="fixed", subband_weights=weights
    )
    mine, _ = dog.evaluate(output, target)
    theirs = published(output, target)[1]
    gap = abs(float(mine) / float(theirs) - 1)
    times = interleaved(
        {
            "spatial-frequency-loss": forward_backward(
                lambda o, t: published(o, t)[1], output, target
            ),
            "sfl-dog": forward_backward(dog, output, target),
        },
        repeats,
    )
    report("(c) sfl-dog forward+backward", times, "spatial-frequency-loss", "sfl-dog", ">= 5")
    print(f"  values: relative difference {gap:.1e} (goal: <= 1e-4)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
