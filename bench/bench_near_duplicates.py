"""Where near-duplicate search fails, edit by edit, and what each read-out variant changes.

bench/bench_features.py's ``dup`` columns give one R@1 over the 7 everyday edits; this bench
splits it by edit and tries read-out variants that need no training, on two splits of the
sample photos, so that a variant is chosen on one split and judged on the other:

- ``training photos``: near-duplicates of the 13 photos the bench's runs train on (the split to
  choose a variant on; the model has seen these photos, not these edits);
- ``held-out photos``: those of the 7 held-out photos (``bench_match.EVAL_PHOTOS``), the split
  bench_features.py reports.

Each edited copy is searched among the originals of the 20 sample photos (cosine, pooled
features). Variants: the read-out ``featkit search`` ranks by (average pooling, grid 1), a 2 x 2
grid, max and GeM pooling, and the images made grey and blurred (Gaussian, sigma in pixels)
before they are described, on both sides of the search. The perceptual hash is the anchor. The
``--rerank R`` rows are ``featkit search --rerank R`` itself, end to end: the originals written as
PNG files, ``featkit.extract`` and ``featkit.build_index`` over them, and each edited copy (a PNG
too) searched with its first R hits re-ranked by spatial verification (R = 5 is the default
of ``featkit search``).

    python bench/bench_near_duplicates.py                      # the shipped model
    python bench/bench_near_duplicates.py -m runs/bench-features/runs/<run>
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

sys.path.insert(0, str(Path(__file__).resolve().parent))

from featkit.data.images import find_images  # noqa: E402
from featkit.data.samples import sample_images  # noqa: E402
from featkit.features.encoding import encode_images  # noqa: E402
from featkit.runs.models import load_encoder  # noqa: E402
from featkit.tasks.reranking import DEFAULT_RERANK  # noqa: E402

from bench_features import DUP_SEED, Scale  # noqa: E402
from bench_match import EVAL_PHOTOS, NOT_TRAINED  # noqa: E402
from hard_sets import EDITS, PerceptualHash, Reranked, near_duplicates, rank_scores, reranked_ranks, search_scores  # noqa: E402

Images = list[torch.Tensor]


def grey(images: Images) -> Images:
    """Each :math:`(3, H, W)` image as its channel mean, in all three channels."""
    return [x.mean(0, keepdim=True).expand(3, -1, -1).contiguous() for x in images]


def blurred(images: Images, sigma: float) -> Images:
    """Each image under a Gaussian blur of ``sigma`` pixels (kernel 6 sigma + 1 wide)."""
    size = 2 * int(3 * sigma) + 1
    return [gaussian_blur(x[None], [size, size], [sigma, sigma])[0] for x in images]


def variants(model) -> dict[str, Callable[[Images], np.ndarray]]:
    """Name -> embedding of a list of images."""

    def pooled(pool: str = "avg", grid: int = 1, prepare: Callable[[Images], Images] = lambda x: x):
        return lambda images: np.stack(encode_images(model, prepare(images), model.default_layer, pool, grid))

    phash = PerceptualHash()
    return {
        "avg (featkit search --rerank 0)": pooled(),
        "avg, grid 2": pooled(grid=2),
        "max": pooled("max"),
        "gem": pooled("gem"),
        "grey, avg": pooled(prepare=grey),
        "grey, avg, grid 2": pooled(grid=2, prepare=grey),
        "grey + blur 1, avg, grid 2": pooled(grid=2, prepare=lambda x: blurred(grey(x), 1.0)),
        "grey + blur 2, avg": pooled(prepare=lambda x: blurred(grey(x), 2.0)),
        "grey + blur 2, avg, grid 2": pooled(grid=2, prepare=lambda x: blurred(grey(x), 2.0)),
        "phash": phash.embed,
    }


#: ``featkit search --rerank`` depths measured.
RERANK_DEPTHS = (5, 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default=None, help="a run directory or shipped model (default: the shipped one)")
    args = parser.parse_args(argv)
    model, described = load_encoder(args.model)
    photos = find_images(sample_images())
    gallery = [p for p in photos if p.name not in NOT_TRAINED]
    splits = {"training photos": [p for p in photos if p.name not in EVAL_PHOTOS + NOT_TRAINED],
              "held-out photos": [p for p in photos if p.name in EVAL_PHOTOS]}  # fmt: skip
    print(f"model {described['model']}; each split's photos under {len(EDITS)} edits at {Scale().dup_side} px, "
          f"searched among {len(gallery)} originals\n")  # fmt: skip
    print("| split | read-out | R@1 | mAP | " + " | ".join(EDITS) + " |")
    print("|---|---|---|---|" + "---|" * len(EDITS))
    for split, queried in splits.items():
        dups = near_duplicates(queried, gallery, Scale().dup_side, DUP_SEED)
        for name, embed in variants(model).items():
            queries, base = embed(dups.queries), embed(dups.base)
            scores = search_scores(queries, base, dups.truth)
            per_edit = [search_scores(queries[i :: len(EDITS)], base, dups.truth[i :: len(EDITS)])["r1"]
                        for i in range(len(EDITS))]  # each original's copies come in EDITS order  # fmt: skip
            print(f"| {split} | {name} | {scores['r1']:.3f} | {scores['map']:.3f} | "
                  + " | ".join(f"{v:.2f}" for v in per_edit) + " |", flush=True)  # fmt: skip
        for depth in RERANK_DEPTHS:
            ranks, seconds = reranked_ranks(Reranked(described["model"], depth), dups)
            scores = rank_scores(ranks)
            per_edit = [rank_scores(ranks[i :: len(EDITS)])["r1"] for i in range(len(EDITS))]
            default = ", featkit search's default" if depth == DEFAULT_RERANK else ""
            print(f"| {split} | avg, --rerank {depth}{default} ({seconds:.1f} s per query) | {scores['r1']:.3f} | "
                  f"{scores['map']:.3f} | " + " | ".join(f"{v:.2f}" for v in per_edit) + " |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
