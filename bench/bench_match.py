"""Does frequency-aware training give features that match more accurately?

Warps held-out sample photos by known random homographies (scale, rotation, perspective, shift)
plus a brightness and contrast change, matches each photo to its warp with ``featkit.tasks.matching``,
and prints the mean matching accuracy (MMA: share of matches within 1, 3, 5 px of the true
position) for four feature extractors, side by side in one run:

- ``pl+sfl``: the paper's CAE (Table 1) trained with eq. 7 through ``featkit.train()``;
- ``pl``: the same CAE, same seed and settings, trained with the pixel loss only;
- ``random``: the same CAE with its seeded random initial weights (no training);
- ``pixels``: raw RGB pixels average-pooled on the CAE's grid (stride 2).

Each is run with single-cell descriptors (``window 1``) and with 3 x 3 neighbourhoods
(``window 3``). The CAEs train on the sample photos that are not evaluated (and not the
second view of an evaluated stereo pair); trained run directories are cached under
``OUT/runs``. Results also go to ``OUT/results.json`` (replaced on every run).

    python bench/bench_match.py                 # the full benchmark (tens of minutes on 2 CPU cores)
    python bench/bench_match.py --quick         # a smoke run in well under a minute
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from featkit.data.images import find_images, load_image
from featkit.data.samples import sample_images
from featkit.encoders import create_encoder
from featkit.runs.models import load_encoder
from featkit.io import write_json
from featkit.tasks.matching import match
from featkit.tasks.homography import random_homography, warp_image
from featkit.training.config import TrainConfig
from featkit.training.loop import train

#: Photos the benchmark evaluates on; the CAEs never train on them.
EVAL_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "grass.png", "ihc.png", "motorcycle_left.png", "retina.jpg")
#: Kept out of training as well: the other view of an evaluated stereo pair.
NOT_TRAINED = ("motorcycle_right.png",)
LOSSES = ("pl+sfl", "pl")


def brightness_change(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random gain in [0.7, 1.3] and offset in [-0.1, 0.1] on [0, 1] intensities."""
    gain, offset = rng.uniform(0.7, 1.3), rng.uniform(-0.1, 0.1)
    unit = (image + 1) / 2
    return ((unit * gain + offset).clamp(0, 1) * 2 - 1).float()


def make_pairs(photos: list[Path], warps: int, max_side: int, seed: int) -> list[dict]:
    """``warps`` warped, re-lit copies per photo, each with its true homography."""
    rng = np.random.default_rng(seed)
    pairs = []
    for path in photos:
        image = load_image(path, max_side=max_side)
        size = (image.shape[2], image.shape[1])
        for k in range(warps):
            h = random_homography(size, rng)
            pairs.append({"name": f"{path.stem}#{k}", "a": image, "b": brightness_change(warp_image(image, h), rng), "h": h})
    return pairs


def train_cae(loss: str, photos_dir: Path, runs: Path, args: argparse.Namespace) -> Path:
    """A ``paper-cae`` trained with ``loss`` (cached by its settings)."""
    key = f"{loss}-e{args.epochs}-s{args.seed}-m{args.train_side}-c{args.crop}".replace("+", "_")
    run = runs / key
    if (run / "model.safetensors").is_file() and (run / "summary.json").is_file():
        print(f"using cached {run}", flush=True)
        return run
    if run.exists():
        shutil.rmtree(run)  # an interrupted earlier run
    started = time.perf_counter()
    config = TrainConfig(
        data=str(photos_dir), out=str(run), encoder="paper-cae", loss=loss, preset="fast", epochs=args.epochs,
        crop=args.crop, max_side=args.train_side, seed=args.seed, device=args.device, recon_images=2,
        # the settings the README's table was measured with: AdamW on batches of 16 crops, 8 per image
        optimizer="adamw", lr=2e-3, batch_size=16, crops_per_image=8,
    )  # fmt: skip
    train(config)
    print(f"trained {loss} in {time.perf_counter() - started:.0f} s -> {run}", flush=True)
    return run


def training_folder(out: Path, photos: list[Path]) -> Path:
    """A folder of links to the training photos (everything not evaluated)."""
    folder = out / "train_photos"
    folder.mkdir(parents=True, exist_ok=True)
    for p in photos:
        link = folder / p.name
        if not link.exists():
            link.symlink_to(p.resolve())
    return folder


def evaluate(models: dict, pairs: list[dict], windows: list[int], max_side: int) -> list[dict]:
    """MMA at 1/3/5 px, corner error and match counts per model and window, over all pairs."""
    rows = []
    for window in windows:
        for name, model in models.items():
            started = time.perf_counter()
            per_pair = []
            for pair in pairs:
                result = match(pair["a"], pair["b"], model, window=window, max_side=max_side, gt_homography=pair["h"])
                ev = result.evaluation
                corner = ev["corner_error"] if ev["corner_error"] is not None else float("inf")
                per_pair.append([ev["mma"]["1"], ev["mma"]["3"], ev["mma"]["5"], corner, len(result.matches), result.num_inliers])
            arr = np.array(per_pair)
            rows.append({
                "model": name, "window": window,
                "mma1": arr[:, 0].mean(), "mma3": arr[:, 1].mean(), "mma5": arr[:, 2].mean(),
                "corner_median": float(np.median(arr[:, 3])), "corner_le3": float(np.mean(arr[:, 3] <= 3)),
                "matches": arr[:, 4].mean(), "inliers": arr[:, 5].mean(),
                "seconds": time.perf_counter() - started, "pairs": len(pairs),
            })  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    head = f"{'model':8s} {'window':>6s} {'MMA@1':>6s} {'MMA@3':>6s} {'MMA@5':>6s} {'corner med px':>13s} {'corner<=3px':>11s} {'matches':>8s} {'inliers':>8s} {'time s':>7s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['model']:8s} {r['window']:6d} {r['mma1']:6.3f} {r['mma3']:6.3f} {r['mma5']:6.3f} "
            f"{r['corner_median']:13.2f} {r['corner_le3']:11.2f} {r['matches']:8.1f} {r['inliers']:8.1f} {r['seconds']:7.1f}"
        )
    for window in sorted({r["window"] for r in rows}):
        by = {r["model"]: r for r in rows if r["window"] == window}
        if "pl+sfl" in by and "pl" in by and by["pl"]["mma3"] > 0:
            print(f"window {window}: MMA@3 ratio pl+sfl / pl = {by['pl+sfl']['mma3'] / by['pl']['mma3']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-match"), help="where runs and results go")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, 2 photos, 1 warp, small images")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of each CAE (fast preset)")
    parser.add_argument("--warps", type=int, default=3, help="random homographies per evaluated photo")
    parser.add_argument("--side", type=int, default=256, help="longer side of evaluated images")
    parser.add_argument("--train-side", type=int, default=256, help="longer side of training photos")
    parser.add_argument("--crop", type=int, default=96, help="training crop side")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 3], help="descriptor windows to compare")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    photos = find_images(sample_images())
    eval_photos = [p for p in photos if p.name in EVAL_PHOTOS]
    train_photos = [p for p in photos if p.name not in EVAL_PHOTOS + NOT_TRAINED]
    if args.quick:
        args.epochs, args.warps, args.side, args.train_side, args.crop, args.windows = 1, 1, 96, 96, 48, [1]
        eval_photos, train_photos = eval_photos[:2], train_photos[:4]
    print(f"train on {len(train_photos)} photos, evaluate on {len(eval_photos)} x {args.warps} warps at {args.side} px", flush=True)

    folder = training_folder(args.out / ("train_quick" if args.quick else "train"), train_photos)
    runs = {loss: train_cae(loss, folder, args.out / "runs", args) for loss in LOSSES}
    models = {loss: load_encoder(run, device=args.device)[0] for loss, run in runs.items()}
    models["random"] = load_encoder("paper-cae", device=args.device)[0]
    models["pixels"] = create_encoder("pixels", stride=2)
    pairs = make_pairs(eval_photos, args.warps, args.side, args.seed)
    rows = evaluate(models, pairs, args.windows, args.side)
    print_table(rows)
    write_json(args.out / "results.json", {"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
