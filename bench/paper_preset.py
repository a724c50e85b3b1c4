"""The long run: the paper preset (SGD, lr 0.02, momentum 0.5, full batch, 2000 epochs) against
the fast preset (the quick look), both reproducing section 4 on the sample photos at 300 px.

Not part of ``make bench`` (its name does not start with ``bench_``): on a 2-core CPU the paper
preset takes hours (each epoch is a full pass over every whole image, for each of pl and
pl+sfl). Run it in the background and read the two tables it prints:

    nohup python bench/paper_preset.py --out runs/paper-vs-fast > paper-vs-fast.log 2>&1 &

``--epochs N`` shortens the paper preset for a trial. ``--resume`` picks up where an interrupted
run stopped; on a 2-core machine the two paper runs go faster as two one-thread processes:

    for loss in pl pl+sfl; do OMP_NUM_THREADS=1 featkit train --preset paper --loss $loss
        --max-side 300 --checkpoint-every 50 --out runs/paper-vs-fast/paper/$loss --quiet & done
    (one line), then ``python bench/paper_preset.py --out runs/paper-vs-fast --resume``.

The fast preset "reaches the paper preset's quality in a fraction of the time" when every number
of its pl+sfl row is at most the paper preset's, and its time is a fraction of it; the script
prints both checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from featkit.training.reproduce import format_table, reproduce
from featkit.training.probe import PROBE_COMPONENTS
from featkit.training.config import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="paper preset vs fast preset, section 4 reproduction")
    parser.add_argument("--out", default="runs/paper-vs-fast")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the paper preset (default 2000)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--resume", action="store_true", help="reuse finished runs in --out, continue unfinished ones")
    args = parser.parse_args(argv)
    results = {}
    for preset, epochs in (("fast", None), ("paper", args.epochs)):
        config = TrainConfig(preset=preset, epochs=epochs, checkpoint_every=50 if preset == "paper" else 1)
        results[preset] = reproduce(Path(args.out) / preset, config=config, overwrite=args.overwrite, resume=args.resume)
        print(f"## preset {preset}\n{format_table(results[preset])}\n", flush=True)
    fast, paper = results["fast"], results["paper"]
    time_fast = sum(fast["seconds"].values())
    time_paper = sum(paper["seconds"].values())
    at_least = all(fast["final"]["pl+sfl"][k] <= paper["final"]["pl+sfl"][k] for k in PROBE_COMPONENTS)
    print(f"fast preset pl+sfl no worse than paper preset on every term: {at_least}")
    print(f"time: fast {time_fast:.0f} s, paper {time_paper:.0f} s ({time_fast / time_paper:.1%} of it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
