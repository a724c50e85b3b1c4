"""featkit on real collections: bounded memory and a busy network, measured side by side.

Writes N "photographic" 1024 x 768 JPEGs (the sample photos cropped, shifted, flipped and
re-encoded at varied quality) and prints, in one run:

1. peak RSS of ``featkit train`` (default preset, one epoch: a fixed number of steps) for
   N = 200 and N = 2000 (targets: both within 3 GiB, the larger within 15% of the smaller);
2. peak RSS of ``featkit extract`` (``--max-side 256``: JPEGs decode at reduced scale) for
   the same two N (targets: within 1.5 GiB, within 15% of each other);
3. training images/s reading the JPEGs from disk against the same steps on pre-decoded
   in-memory tensors (target: at least 0.85);
4. extraction throughput as a share of the machine's bound that ``bench_extract.py`` prints
   (target: at least 70% at 32 px and at 128 px).

Every process runs under ``/usr/bin/time -v``-style accounting (``ru_maxrss`` of a child).
Run: ``python bench/bench_collections.py`` (about 10 minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def write_photos(folder: Path, count: int, size: tuple[int, int] = (1024, 768)) -> Path:
    """``count`` distinct JPEGs of ``size`` cut from the sample photos (deterministic)."""
    from PIL import Image, ImageOps

    from featkit.data.images import find_images
    from featkit.data.samples import sample_images

    folder.mkdir(parents=True, exist_ok=True)
    photos = [Image.open(p).convert("RGB") for p in find_images(sample_images())]
    rng = np.random.default_rng(0)
    for i in range(count):
        photo = photos[i % len(photos)]
        scale = max(size[0] / photo.width, size[1] / photo.height) * rng.uniform(1.0, 1.6)
        big = photo.resize((round(photo.width * scale) + 1, round(photo.height * scale) + 1), Image.Resampling.BILINEAR)
        x, y = int(rng.integers(0, big.width - size[0] + 1)), int(rng.integers(0, big.height - size[1] + 1))
        crop = big.crop((x, y, x + size[0], y + size[1]))
        crop = ImageOps.mirror(crop) if i % 2 else crop
        crop.save(folder / f"photo_{i:05d}.jpg", quality=int(rng.integers(80, 96)))
    return folder


def peak_rss_mib(command: list[str]) -> tuple[float, float]:
    """Peak RSS (MiB) and wall seconds of ``command`` run in a child process of its own."""
    script = (
        "import resource, subprocess, sys, json; t = __import__('time').perf_counter(); "
        "r = subprocess.run(sys.argv[1:]); "
        "print(json.dumps([r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
        "__import__('time').perf_counter() - t]))"
    )
    out = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, check=True)
    code, rss, seconds = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {code}:\n{out.stderr[-2000:]}")
    return rss, seconds


def bench_memory(tmp: Path, sizes: list[int]) -> None:
    featkit = [sys.executable, "-m", "featkit"]
    biggest = write_photos(tmp / f"photos{max(sizes)}", max(sizes))
    train, extract = {}, {}
    for n in sizes:
        folder = tmp / f"list{n}.txt"  # the first n photos, as a list file
        folder.write_text("".join(f"{p}\n" for p in sorted(biggest.iterdir())[:n]))
        train[n] = peak_rss_mib([*featkit, "train", str(folder), "--epochs", "1", "--quiet", "--out", str(tmp / f"run{n}")])
        extract[n] = peak_rss_mib([*featkit, "extract", str(folder), "-m", "paper-cae", "--max-side", "256", "--quiet",
                                   "-o", str(tmp / f"f{n}.npy")])  # fmt: skip
    small, large = min(sizes), max(sizes)
    for name, got, limit in (("train", train, 3072), ("extract", extract, 1536)):
        growth = got[large][0] / got[small][0] - 1
        print(f"{name:8s} peak RSS: N={small}: {got[small][0]:.0f} MiB ({got[small][1]:.0f} s) | N={large}: "
              f"{got[large][0]:.0f} MiB ({got[large][1]:.0f} s) | growth {100 * growth:+.1f}% (target <= 15%) | "
              f"limit {limit} MiB: {'met' if max(v[0] for v in got.values()) <= limit else 'MISSED'}", flush=True)  # fmt: skip


def bench_loader(tmp: Path, images: int, steps: int, repeats: int = 3) -> None:
    """The same training steps with images decoded from disk as steps need them, and cut from
    tensors decoded before the clock started."""
    import torch

    import featkit.data.windows as windows
    from featkit.data.loading import loader
    from featkit.choices import PRESETS
    from featkit.data.images import decode_image
    from featkit.training.config import TrainConfig
    from featkit.training.images import open_training_images
    from featkit.training.trainer import Trainer
    from featkit.training.world import World

    folder = write_photos(tmp / "loader", images)
    preset = PRESETS["standard"]
    config = TrainConfig(data=str(folder), epochs=1, epoch_windows=steps * preset["batch_size"], device="cpu").resolved()
    data = open_training_images(config)

    def run() -> float:
        trainer = Trainer(config, tmp / "unused", data, World(torch.device("cpu")), torch.device("cpu"))
        sums = torch.zeros(len(trainer.names) + 2, dtype=torch.float64)
        t0 = time.perf_counter()
        for load in loader(trainer.stream(), 0):
            trainer.accumulate(load, sums)
            if load.last:
                trainer.finish_step(sums, load.windows, config.lr)
                sums.zero_()
        return time.perf_counter() - t0

    decoded = {ref.name: decode_image(ref)[0] for ref in data.collection.refs}
    real = windows.decode_windows

    def cut(ref, boxes, max_side=None):
        image = decoded[ref.name]
        return [image[:, top : top + h, left : left + w] for top, left, h, w in boxes(tuple(image.shape[-2:]))]

    def in_memory() -> float:
        windows.decode_windows = cut
        try:
            return run()
        finally:
            windows.decode_windows = real

    run()  # warm-up: allocator, oneDNN kernels
    from_disk, in_memory_s = float("inf"), float("inf")
    for _ in range(repeats):  # interleaved, best of each: the machine is shared
        from_disk = min(from_disk, run())
        in_memory_s = min(in_memory_s, in_memory())
    windows = steps * preset["batch_size"]
    print(f"training {steps} steps of {preset['batch_size']} crops from {images} JPEGs 1024x768: from disk "
          f"{windows / from_disk:.1f} windows/s | pre-decoded in memory {windows / in_memory_s:.1f} windows/s | "
          f"ratio {in_memory_s / from_disk:.2f} (target >= 0.85; best of {repeats} each, interleaved)", flush=True)


def bench_extraction_share(tmp: Path, count: int) -> None:
    sys.path.insert(0, str(HERE))
    from bench_extract import bench_extraction

    for side in (32, 128):
        got = bench_extraction(tmp / f"x{side}", count, side, repeats=2)
        print(f"extract  {side} px: featkit reaches {got['ratio']:.2f}x of a {got['bound']:.2f}x bound: "
              f"{100 * got['ratio'] / got['bound']:.0f}% of it (target >= 70%)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run of every part.")
    parser.add_argument("--only", choices=("memory", "loader", "extract"), help="Run one part only.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = lambda part: args.only in (None, part)  # noqa: E731
        run("memory") and bench_memory(tmp, [20, 60] if args.quick else [200, 2000])
        run("loader") and bench_loader(tmp, 8 if args.quick else 64, 3 if args.quick else 24, 1 if args.quick else 3)
        run("extract") and bench_extraction_share(tmp, 24 if args.quick else 400)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
