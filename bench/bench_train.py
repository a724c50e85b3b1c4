"""One training epoch: featkit versus a plain-PyTorch implementation written the naive way.

Both sides start from the same Table 1 weights and take one full-batch SGD step (the paper
preset) with ``pl+sfl`` on the same images at their own resolutions. The naive side loops over
images one at a time and filters the reconstruction *and* the original with dense 2-D LoG
kernels (7x7, 13x13, 27x27, 3 channels -> 1, as a conv layer would); featkit batches images of
equal size and filters the colour-summed residual once with separable kernels. The script
checks that both give the same losses and the same updated weights, then prints the time
ratio and the effective GFLOP/s of each side against this machine's float32 matmul rate.

    python bench/bench_train.py            # the ~20 sample photos at 300 px (the paper's size)
    python bench/bench_train.py --quick    # 3 photos at 48 px, a smoke run
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from featkit.runs.tensors import load_tensors
from featkit.data.images import find_images, load_images
from featkit.data.samples import sample_images
from featkit.encoders import create_encoder
from featkit.training.config import TrainConfig
from featkit.training.loop import train

SCALES, WEIGHTS = (0.8, 1.6, 3.2), (100.0, 10.0, 10.0)


class PlainCAE(nn.Module):
    """Table 1 written out by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 16, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, 3, 3, padding=1)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        h = F.interpolate(h, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(self.conv4(F.relu(self.conv3(h))))


def dense_log(sigma: float) -> torch.Tensor:
    """Normalised LoG of eq. 5 as a (1, 3, k, k) conv weight, k = ceil(8 sigma) made odd."""
    k = math.ceil(round(8 * sigma, 9))
    k += 1 - k % 2
    t = torch.arange(k, dtype=torch.float64) - k // 2
    r2 = t[:, None] ** 2 + t[None, :] ** 2
    kernel = -(2 - r2 / sigma**2) * torch.exp(-r2 / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    return kernel.float().expand(1, 3, k, k).contiguous()


def naive_epoch(model: nn.Module, images: list[torch.Tensor], lr: float, momentum: float):
    """One full-batch SGD step, image by image; returns (seconds, mean components)."""
    kernels = [dense_log(s) for s in SCALES]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    sums = dict.fromkeys(["pl", *(f"sfl/{s:g}" for s in SCALES)], 0.0)
    start = time.perf_counter()
    optimizer.zero_grad()
    for image in images:
        x = image[None]
        y = model(x)
        pl = 0.5 * (y - x).square().mean(dim=(2, 3)).sum()
        loss = pl
        sums["pl"] += pl.item()
        for sigma, weight, kernel in zip(SCALES, WEIGHTS, kernels):
            pad = kernel.shape[-1] // 2
            band = 0.5 * (F.conv2d(y, kernel, padding=pad) - F.conv2d(x, kernel, padding=pad)).square().mean()
            loss = loss + weight * band
            sums[f"sfl/{sigma:g}"] += band.item()
        (loss / len(images)).backward()
    optimizer.step()
    return time.perf_counter() - start, {k: v / len(images) for k, v in sums.items()}


def naive_flops(images: list[torch.Tensor], state) -> float:
    model = PlainCAE()
    model.load_state_dict(state)
    kernels = [dense_log(s) for s in SCALES]
    with FlopCounterMode(display=False) as counter:
        for image in images:
            x = image[None]
            y = model(x)
            loss = 0.5 * (y - x).square().mean()
            for kernel in kernels:
                p = kernel.shape[-1] // 2
                loss = loss + (F.conv2d(y, kernel, padding=p) - F.conv2d(x, kernel, padding=p)).square().mean()
            loss.backward()
    return counter.get_total_flops()


def featkit_flops(images: list[torch.Tensor]) -> float:
    from featkit.data.images import iter_batches, ImageRecord
    from featkit.losses import create_loss

    model, loss = create_encoder("paper-cae"), create_loss("pl+sfl")
    records = [ImageRecord(Path("."), im, im.shape[-2:]) for im in images]
    with FlopCounterMode(display=False) as counter:
        for batch in iter_batches(records, None):
            loss(model(batch), batch).backward()
    return counter.get_total_flops()


def featkit_epoch(folder: Path, max_side: int, seed: int, out: Path):
    """One epoch of ``featkit train --preset paper``; returns (seconds, components, weights)."""
    config = TrainConfig(data=str(folder), out=str(out), preset="paper", epochs=1, max_side=max_side, seed=seed,
                         device="cpu", recon_epochs=[], recon_images=0)  # fmt: skip
    run_dir = train(config)
    with open(run_dir / "metrics.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    comps = {k: float(row[k]) for k in ("pl", "sfl/0.8", "sfl/1.6", "sfl/3.2")}
    return float(row["seconds"]), comps, load_tensors(run_dir / "model.safetensors")[0]


def matmul_peak(n: int = 1024, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="featkit vs naive plain-PyTorch: one training epoch")
    parser.add_argument("--quick", action="store_true", help="3 photos at 48 px, one repeat")
    parser.add_argument("--max-side", type=int, default=300)
    parser.add_argument("--images", type=int, default=None, help="use the first N sample photos")
    parser.add_argument("--repeats", type=int, default=2, help="alternate the two sides this often; best time counts")
    args = parser.parse_args(argv)
    if args.quick:
        args.max_side, args.images, args.repeats = 48, 3, 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for path in find_images(sample_images())[: args.images]:
            (folder / path.name).write_bytes(path.read_bytes())
        images = [r.image for r in load_images(find_images(folder), max_side=args.max_side)[0]]
        pixels = sum(im.shape[-1] * im.shape[-2] for im in images)
        print(f"{len(images)} images, longer side {args.max_side} px, {pixels / 1e6:.2f} Mpixel, "
              f"{torch.get_num_threads()} threads")  # fmt: skip
        torch.manual_seed(0)
        init = {k.replace("encoder.0", "conv1").replace("encoder.1", "conv2").replace("decoder.0", "conv3")
                .replace("output", "conv4"): v for k, v in create_encoder("paper-cae").state_dict().items()}  # fmt: skip
        times = {"featkit": math.inf, "naive": math.inf}
        for r in range(args.repeats):
            seconds, ours, weights = featkit_epoch(folder, args.max_side, 0, Path(tmp) / f"run{r}")
            times["featkit"] = min(times["featkit"], seconds)
            plain = PlainCAE()
            plain.load_state_dict(init)
            seconds, theirs = naive_epoch(plain, images, lr=0.02, momentum=0.5)
            times["naive"] = min(times["naive"], seconds)
        rel = max(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in ours)
        plain_state = plain.state_dict()
        moved = max(float((weights[k] - init[n]).abs().max()) for k, n in
                    zip(("encoder.0.weight", "output.weight"), ("conv1.weight", "conv4.weight")))  # fmt: skip
        wdiff = max(float((weights[k] - plain_state[n]).abs().max()) for k, n in
                    zip(("encoder.0.weight", "output.weight"), ("conv1.weight", "conv4.weight")))  # fmt: skip
        print("losses    " + "  ".join(f"{k}: featkit {ours[k]:.6e} naive {theirs[k]:.6e}" for k in ours))
        print(f"largest relative loss difference {rel:.2e}; updated weights differ by {wdiff:.2e} "
              f"(the step moved them by {moved:.2e})")  # fmt: skip
        flops = {"featkit": featkit_flops(images), "naive": naive_flops(images, init)}
    peak = matmul_peak()
    print(f"matmul peak (1024x1024 float32): {peak:.1f} GFLOP/s")
    for side in ("naive", "featkit"):
        gflops = flops[side] / times[side] / 1e9
        print(f"{side:8s} epoch {times[side]:8.3f} s  {flops[side] / 1e9:8.2f} GFLOP  "
              f"{gflops:6.1f} GFLOP/s effective = {gflops / peak:.0%} of matmul peak")  # fmt: skip
    print(f"speed-up featkit / naive: {times['naive'] / times['featkit']:.2f}x (target >= 5x)")
    print(f"useful work ratio: naive does {flops['naive'] / flops['featkit']:.2f}x featkit's FLOPs")
    if rel > 1e-3:
        print("ERROR: the two sides disagree on the losses", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
