"""Rebuild the model shipped inside featkit (``featkit/pretrained/<name>/``) from scratch.

Trains the default recipe (``featkit train`` with every default, seed 0) on images featkit may
redistribute: the scikit-image sample photos whose licences are CC0 or public domain
(:data:`LICENCE_CLEAR_PHOTOS`) and procedural dead-leaves images
(:func:`featkit.data.procedural.write_dead_leaves`). None of the photos that featkit's benches
evaluate on (``bench_match.EVAL_PHOTOS``, the motorcycle pair) is among them, and neither are
scikit-learn's two photos (CC BY) or the photos whose licence scikit-image does not state. The
run's ``config.json``, weights and whitening are copied beside a ``PROVENANCE.md`` that says
all this with the exact command.

    make weights                                  # = python bench/build_pretrained.py --overwrite
    python bench/build_pretrained.py --leaves 8 --epochs 1 --out /tmp/m   # a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import skimage

import featkit
from featkit.data.procedural import write_dead_leaves
from featkit.io import read_json, write_json
from featkit.runs.models import CONFIG_FILE, DEFAULT_MODEL, PRETRAINED_DIR, WEIGHTS_FILE
from featkit.runs.whitening import WHITENING_FILE
from featkit.training import TrainConfig

#: scikit-image photos and the licence its ``skimage.data`` docstrings give them.
LICENCE_CLEAR_PHOTOS = {
    "brick.png": "CC0 (CC0Textures, Bricks25)",
    "camera.png": "CC0 (the photographer, Lav Varshney)",
    "clock_motion.png": "public domain (the photographer, Stefan van der Walt)",
    "coins.png": "no known copyright restrictions",
    "gravel.png": "CC0 (CC0Textures, Gravel04)",
    "hubble_deep_field.jpg": "public domain (NASA)",
    "microaneurysms.png": "CC0 (the owner, Andreas Maier)",
    "rocket.jpg": "public domain (SpaceX)",
    "text.png": "no known copyright restrictions, public domain",
}
#: The files of a run directory that make the shipped model.
SHIPPED_FILES = (CONFIG_FILE, WEIGHTS_FILE, WHITENING_FILE, "metrics.csv")
#: Beside them: every training image, relative to the training folder.
IMAGES_FILE = "training-images.txt"


def training_images(folder: Path, leaves: int, side: int, seed: int) -> None:
    photos = Path(skimage.__file__).parent / "data"
    (folder / "photos").mkdir(parents=True)
    for name in LICENCE_CLEAR_PHOTOS:
        shutil.copyfile(photos / name, folder / "photos" / name)
    write_dead_leaves(folder / "leaves", leaves, side=side, seed=seed)


def provenance(name: str, args: argparse.Namespace, config: dict, seconds: float) -> str:
    photos = "\n".join(f"| `{n}` | {licence} |" for n, licence in LICENCE_CLEAR_PHOTOS.items())
    train = config["train"]
    return f"""# {name}: provenance

The model featkit uses when `extract` and `match` are given no `--model`, and that
`featkit train --init {name}` fine-tunes. Rebuild it with `make weights`.

- **Recipe**: `featkit train` with every default (preset `{config['preset']}`, encoder
  `{config['encoder']['name']}`, loss `{config['loss']['spec']}`, contrast {train['contrast']},
  {train['epochs']} epochs of {train['epoch_windows']} windows of {train['crop']} px), seed {train['seed']}.
- **Command**: `python bench/build_pretrained.py --leaves {args.leaves} --side {args.side} --seed {args.seed}`
  (it writes the images below into a temporary folder and trains on it with `featkit.train`).
- **Built with**: featkit {featkit.__version__}, {config['device']}, {seconds:.0f} s; `metrics.csv` is the run's own.

## Training images ({config['data']['images']}, listed in `training-images.txt`)

{args.leaves} dead-leaves images of {args.side} x {args.side} px (`featkit.data.procedural.write_dead_leaves`,
seed {args.seed}): generated, free of any licence. And these scikit-image photos:

| file | licence (scikit-image's `skimage.data` docstrings) |
|---|---|
{photos}

## Kept out

No image that featkit's benches evaluate on: astronaut, chelsea, coffee, grass, ihc,
motorcycle_left, motorcycle_right, retina (`bench/bench_match.py`'s `EVAL_PHOTOS` and the
stereo pair). Nor scikit-learn's china and flower (CC BY 2.0, attribution required) or moon and
page (no licence stated).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, help="Directory to write (default: featkit/pretrained/NAME).")
    parser.add_argument("--leaves", type=int, default=96, help="Dead-leaves images to generate.")
    parser.add_argument("--side", type=int, default=384, help="Their side in pixels.")
    parser.add_argument("--seed", type=int, default=0, help="Seeds the images and the training run.")
    parser.add_argument("--epochs", type=int, help="Override the recipe's epochs (smoke runs only).")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing model of that name.")
    args = parser.parse_args(argv)
    out = args.out or PRETRAINED_DIR / args.name
    if out.exists() and not args.overwrite:
        print(f"error: {out} exists; pass --overwrite to rebuild it", file=sys.stderr)
        return 1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        training_images(tmp / "images", args.leaves, args.side, args.seed)
        run = featkit.train(TrainConfig(data=str(tmp / "images"), out=str(tmp / "run"), seed=args.seed,
                                        epochs=args.epochs, recon_images=0))  # fmt: skip
        config = read_json(run / CONFIG_FILE)
        staged = tmp / "staged"
        staged.mkdir()
        for name in SHIPPED_FILES:
            shutil.copyfile(run / name, staged / name)
        images = sorted(str(p.relative_to(tmp / "images")) for p in (tmp / "images").rglob("*") if p.is_file())
        (staged / IMAGES_FILE).write_text("\n".join(images) + "\n")
        # paths of the temporary folder would say nothing: keep them relative to it
        data = {**config["data"], "folder": "images", "files": IMAGES_FILE}
        write_json(staged / CONFIG_FILE, {**config, "train": {**config["train"], "data": "images", "out": None}, "data": data})
        (staged / "PROVENANCE.md").write_text(provenance(args.name, args, config, time.perf_counter() - started))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staged, out)
    print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
