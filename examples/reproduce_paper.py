"""Reproduce section 4 of the paper: PL versus PL+SFL on the sample photos at 300 px.

    python examples/reproduce_paper.py                    # fast preset (minutes on a CPU)
    python examples/reproduce_paper.py --preset paper     # SGD, full batch, 2000 epochs (hours)
    python examples/reproduce_paper.py --preset quality   # batches of 4 whole images, 200 epochs

Prints the per-band SFL of both runs beside the paper's and saves a side-by-side figure.
Also available as ``featkit reproduce``.
"""

from __future__ import annotations

import argparse
import sys

from featkit.choices import PRESETS
from featkit.training.reproduce import format_table, reproduce
from featkit.training.config import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=None, help="image folder (default: the sample photos)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/reproduce-<time>)")
    parser.add_argument("--preset", default="fast", choices=list(PRESETS), help="settings of both runs (default: fast)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    parser.add_argument("--max-side", type=int, default=300, help="longer image side (paper: 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    def log(spec, p):
        if p.epoch_done:
            bands = " ".join(f"{k}={v:.3e}" for k, v in p.metrics.items() if k != "total")
            print(f"[{spec}] epoch {p.epoch}/{p.epochs} {bands} {p.seconds:.0f}s", file=sys.stderr, flush=True)

    config = TrainConfig(data=args.folder, preset=args.preset, epochs=args.epochs, seed=args.seed, device=args.device)
    result = reproduce(args.out, config=config, max_side=args.max_side, overwrite=args.overwrite, on_step=log)
    print(format_table(result))
    print(f"figure: {result['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
