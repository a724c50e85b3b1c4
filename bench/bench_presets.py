"""The default preset against ``quality`` on the sample photos at 300 px, side by side.

For each seed, ``featkit train --preset quality`` and ``featkit train`` (the default,
``standard``: mini-batches of random crops, fixed-size epochs) run at the same time, each on
one thread, with ``pl+sfl`` on the 21 sample photos at 300 px. Prints each run's final PL
and per-band SFL on the whole images (``summary.json``) and wall seconds, then the mean and
spread (min-max) over seeds. Target: the default at or below ``quality`` on every term, in
no more wall time. ``--contrast 0`` trains the default without its contrast term (reconstruction
only, as before issue 13).

Run: ``python bench/bench_presets.py`` (3 seeds, about 20 minutes on 2 idle cores) or
``--seeds 1 --epochs-scale 0.05`` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TERMS = ("pl", "sfl/0.8", "sfl/1.6", "sfl/3.2")


def launch(preset: str, seed: int, out: Path, epochs: int | None, contrast: float | None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "featkit", "train", "--preset", preset, "--loss", "pl+sfl", "--max-side", "300",
               "--seed", str(seed), "--out", str(out), "--quiet", "--device", "cpu"]  # fmt: skip
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if contrast is not None and preset == "standard":
        command += ["--contrast", str(contrast)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def main(argv: list[str] | None = None) -> int:
    from featkit.choices import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="Shorten both runs (smoke tests).")
    parser.add_argument("--contrast", type=float, default=None,
                        help=f"Weight of the default's contrast term (default: the preset's, "
                             f"{PRESETS['standard']['contrast']:g}; 0: reconstruction only).")  # fmt: skip
    args = parser.parse_args(argv)
    contrast = PRESETS["standard"]["contrast"] if args.contrast is None else args.contrast
    presets = ("standard", "quality")
    results: dict[str, list[dict]] = {p: [] for p in presets}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            runs = {}
            for preset in presets:
                epochs = None if args.epochs_scale == 1 else max(1, round(PRESETS[preset]["epochs"] * args.epochs_scale))
                runs[preset] = launch(preset, seed, Path(tmp) / f"{preset}-{seed}", epochs, args.contrast)
            for preset, process in runs.items():
                _, err = process.communicate()
                if process.returncode:
                    raise SystemExit(f"{preset} seed {seed} failed:\n{err[-2000:]}")
                summary = json.loads((Path(tmp) / f"{preset}-{seed}" / "summary.json").read_text())
                results[preset].append({**summary["final"], "seconds": summary["seconds"]})
                row = " ".join(f"{t}={summary['final'][t] * 1e3:.3f}e-3" for t in TERMS)
                print(f"seed {seed} {preset:9s} {row} seconds={summary['seconds']:.0f}", flush=True)
    print("\n| preset | " + " | ".join(TERMS) + " | seconds |")
    print("|---|" + "---|" * (len(TERMS) + 1))
    for preset in presets:
        cells = []
        for key in (*TERMS, "seconds"):
            values = [r[key] for r in results[preset]]
            scale, unit = (1, "") if key == "seconds" else (1e3, "e-3")
            mean = sum(values) / len(values)
            cells.append(f"{mean * scale:.3f}{unit} ({min(values) * scale:.3f}-{max(values) * scale:.3f})")
        print(f"| {preset} | " + " | ".join(cells) + " |")
    mean = {p: {k: sum(r[k] for r in results[p]) / len(results[p]) for k in (*TERMS, "seconds")} for p in presets}
    below = [t for t in TERMS if mean["standard"][t] <= mean["quality"][t]]
    ratios = ", ".join(f"{t} {mean['standard'][t] / mean['quality'][t]:.2f}x" for t in TERMS)
    print(f"\ndefault (standard, contrast {contrast:g}) at or below quality on {len(below)}/{len(TERMS)} terms "
          f"({ratios}); "
          f"wall time {mean['standard']['seconds'] / mean['quality']['seconds']:.2f}x quality's")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
