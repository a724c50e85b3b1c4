"""The whole main job on the built-in sample photos, shown in one report.html.

    python examples/demo.py                  # about two minutes on 2 CPU cores (`make demo`)
    python examples/demo.py --quick          # tiny images, 2 epochs: a smoke run in seconds
    python examples/demo.py --out runs/demo  # a new folder; an existing one is refused

Every step goes through featkit's Python API:

1. train the default recipe (``featkit.train``) on the sample photos, except a few held out;
2. extract features of all the photos (``featkit.extract``), index them
   (``featkit.build_index``) and search with a warped, re-lit copy of each held-out photo,
   whose true neighbour is that photo (``featkit.search`` by distance alone, ``rerank=0``);
3. cluster the features (``featkit.cluster``);
4. match each held-out photo to its warped copy (``featkit.match`` with the true homography);
5. the same search and match numbers for the baselines: the same CAE untrained (seeded random
   init), raw ``pixels`` and ``daisy``.

OUT then holds the training run (``run/``, with its own report.html), the queries
(``queries/``), features and indexes (``features/``), the numbers (``results.json``) and
``report.html``, one page with every picture embedded.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import featkit
from featkit.data.images import find_images, load_image
from featkit.data.samples import sample_images
from featkit.errors import FeatkitError
from featkit.io import read_json, write_json
from featkit.report.match_drawing import draw_matches
from featkit.tasks.matching import MatchResult
from featkit.tasks.homography import random_homography, warp_image
from featkit.training.loop import TrainProgress

#: Sample photos the training never sees; the queries and match pairs are warps of them
#: (``bench/bench_match.py``'s, less the stereo view whose twin stays among the photos).
HELD_OUT = ("astronaut.png", "chelsea.png", "coffee.png", "grass.png", "ihc.png", "retina.jpg")
#: Feature sources compared: table label -> (folder under ``features/``, ``-m`` spec); the
#: spec ``None`` is the run trained here.
MODELS = {
    "trained (default recipe)": ("trained", None),
    "random init (paper-cae, seeded)": ("random-init", "paper-cae"),
    "pixels": ("pixels", "pixels"),
    "daisy": ("daisy", "daisy"),
}
#: Neighbours shown per query, clusters formed, thumbnail side in pixels.
SHOWN_NEIGHBOURS, CLUSTERS, THUMB = 5, 5, 112
#: How the table prints each column.
FORMATS = {"R@1": ".3f", "mean rank": ".2f", "MMA@1": ".3f", "MMA@3": ".3f", "MMA@5": ".3f",
           "inliers": ".0f", "matches": ".0f"}  # fmt: skip
#: Seed of the warps and lighting changes (fixed, so every run asks the same questions).
WARP_SEED = 0


@dataclass(frozen=True)
class Scale:
    """How big a demo: training image side and epochs, and the side everything else reads."""

    max_side: int
    epochs: int | None
    side: int


#: The full demo: the default recipe at 128 px with fewer epochs (the preset has 38), to fit
#: about two minutes on 2 CPU cores; search and matching at 256 px.
FULL = Scale(max_side=128, epochs=20, side=256)
#: ``--quick``: tiny images and 2 epochs, for the test suite.
QUICK = Scale(max_side=32, epochs=2, side=64)


@dataclass(frozen=True)
class Pair:
    """A held-out photo, its warped and re-lit copy (also saved as ``query``) and the true
    homography from the photo to the copy."""

    photo: Path
    image: torch.Tensor
    warped: torch.Tensor
    homography: np.ndarray
    query: Path


# -- the job -----------------------------------------------------------------------------------
def relight(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random gain in [0.7, 1.3] and offset in [-0.1, 0.1] on [0, 1] intensities."""
    gain, offset = rng.uniform(0.7, 1.3), rng.uniform(-0.1, 0.1)
    return (((image + 1) / 2 * gain + offset).clamp(0, 1) * 2 - 1).float()


def make_pairs(photos: list[Path], side: int, folder: Path) -> list[Pair]:
    """One warped, re-lit copy per photo, saved into ``folder`` as a query image."""
    rng = np.random.default_rng(WARP_SEED)
    folder.mkdir()
    pairs = []
    for photo in photos:
        image = load_image(photo, max_side=side)
        homography = random_homography((image.shape[2], image.shape[1]), rng)
        warped = relight(warp_image(image, homography), rng)
        query = folder / f"{photo.stem}-warped.png"
        to_pil(warped).save(query)
        pairs.append(Pair(photo, image, warped, homography, query))
    return pairs


def train_run(train_list: Path, run_dir: Path, scale: Scale) -> Path:
    """``featkit.train`` with every default but the image side and the epochs."""
    started = time.perf_counter()

    def progress(p: TrainProgress) -> None:
        if p.epoch_done:
            print(f"  epoch {p.epoch}/{p.epochs}: pl {p.metrics['pl']:.4f}, {p.seconds:.0f} s", flush=True)

    config = featkit.TrainConfig(data=str(train_list), out=str(run_dir), max_side=scale.max_side,
                                 epochs=scale.epochs)  # fmt: skip
    featkit.train(config, on_step=progress)
    print(f"  trained in {time.perf_counter() - started:.0f} s -> {run_dir}", flush=True)
    return run_dir


def search_ranks(spec: str, folder: Path, pairs: list[Pair], out: Path, side: int) -> dict:
    """Extract, index and search with every query; the rank of each query's true neighbour.

    Returns:
        ``{"features": .npy path, "hits": [QueryResult per pair], "ranks": [int per pair]}``.
    """
    features = out / "features.npy"
    featkit.extract(folder, spec, features, max_side=side)
    index = featkit.build_index(features, out / "features.faiss")
    # By distance alone (no spatial verification), so that the table compares the features themselves.
    hits = featkit.search(index, [str(p.query) for p in pairs], k=len(index), rerank=0)
    ranks = []
    for pair, result in zip(pairs, hits):
        found = [n.rank for n in result.neighbours if Path(n.path).name == pair.photo.name]
        ranks.append(found[0] if found else len(index) + 1)
    return {"features": features, "hits": hits, "ranks": ranks}


def match_pairs(spec: str, pairs: list[Pair], side: int) -> list[MatchResult]:
    """``featkit.match`` of every held-out photo with its warped copy, scored against the truth."""
    return [featkit.match(p.image, p.warped, spec, max_side=side, gt_homography=p.homography)
            for p in pairs]  # fmt: skip


def table_row(ranks: list[int], matches: list[MatchResult]) -> dict[str, float]:
    """Means over the queries and the pairs."""
    mma = [m.evaluation["mma"] for m in matches]
    return {
        "R@1": float(np.mean([r == 1 for r in ranks])),
        "mean rank": float(np.mean(ranks)),
        "MMA@1": float(np.mean([e["1"] for e in mma])),
        "MMA@3": float(np.mean([e["3"] for e in mma])),
        "MMA@5": float(np.mean([e["5"] for e in mma])),
        "inliers": float(np.mean([m.num_inliers for m in matches])),
        "matches": float(np.mean([len(m.matches) for m in matches])),
    }


# -- pictures and the page ---------------------------------------------------------------------
def to_pil(image: torch.Tensor) -> Image.Image:
    """:math:`(3, H, W)` in [-1, 1] -> an RGB picture."""
    pixels = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels, "RGB")


def png_tag(picture: Image.Image, css: str = "") -> str:
    """An ``<img>`` (of CSS class ``css``) with the picture embedded as a PNG data URI."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img class='{css}' src='data:image/png;base64,{data}'>"


def thumb(source: Path | torch.Tensor) -> Image.Image:
    """A picture at most :data:`THUMB` pixels on its longer side."""
    picture = to_pil(load_image(source, max_side=THUMB) if isinstance(source, Path) else source)
    picture.thumbnail((THUMB, THUMB))
    return picture


def figure(picture: str, caption: str) -> str:
    """A picture with its caption (HTML) beneath."""
    return f"<figure>{picture}<figcaption>{caption}</figcaption></figure>"


def neighbours_section(pairs: list[Pair], search: dict) -> str:
    """Each query beside its nearest photos and their distances, the true neighbour outlined."""
    rows = []
    for pair, result, rank in zip(pairs, search["hits"], search["ranks"]):
        cells = [figure(png_tag(thumb(pair.warped), "query"), f"query: {html.escape(pair.query.name)}")]
        for n in result.neighbours[:SHOWN_NEIGHBOURS]:
            name = Path(n.path).name
            picture = png_tag(thumb(Path(n.path)), "truth" if name == pair.photo.name else "")
            cells.append(figure(picture, f"#{n.rank} {html.escape(name)}<br>d = {n.distance:.3f}"))
        truth = html.escape(pair.photo.name)
        rows.append(f"<div class='row'>{''.join(cells)}</div><p>true neighbour ({truth}) at rank {rank}</p>")
    return (
        "<h2 id='neighbours'>2. Search: nearest neighbours</h2><p>Each query is a warped, re-lit copy "
        "of a held-out photo, searched among all the photos with the trained model's features "
        "(distance 1 - cos); the true neighbour is outlined in green.</p>" + "".join(rows)
    )


def clusters_section(features: Path) -> str:
    """``featkit.cluster`` of the features, and each cluster's photos."""
    _, manifest = featkit.load_features(features)
    paths = [Path(item["path"]) for item in manifest["items"]]
    result = featkit.cluster(features, min(CLUSTERS, len(paths) - 1))
    parts = []
    for label in sorted(set(result.labels.tolist())):
        members = [p for p, lab in zip(paths, result.labels) if lab == label]
        cells = "".join(figure(png_tag(thumb(p)), html.escape(p.name)) for p in members)
        parts.append(f"<h3>cluster {label} ({len(members)} photos)</h3><div class='row'>{cells}</div>")
    silhouette = "n/a" if result.silhouette is None else f"{result.silhouette:.3f}"
    return (
        f"<h2 id='clusters'>3. Clusters</h2><p>k-means on the trained model's features of all "
        f"{len(paths)} photos, k = {result.n_clusters}; silhouette {silhouette}.</p>" + "".join(parts)
    )


def matches_section(pairs: list[Pair], matches: dict[str, list[MatchResult]]) -> str:
    """Every model's matches of the first held-out photo with its warped copy, drawn."""
    pair = pairs[0]
    height = min(256, 2 * pair.image.shape[1])
    parts = []
    for label, results in matches.items():
        result = results[0]
        picture = draw_matches(pair.image, pair.warped, result, height=height, max_lines=100)
        caption = (f"<b>{html.escape(label)}</b>: MMA@3 {result.evaluation['mma']['3']:.3f}, "
                   f"{result.num_inliers} inliers of {len(result.matches)} matches")  # fmt: skip
        parts.append(figure(png_tag(picture), caption))
    return (
        "<h2 id='matches'>4. Matching a photo to a warped copy of itself</h2>"
        f"<p>{html.escape(pair.photo.name)} (left) against its warped, re-lit copy (right), RANSAC "
        "inliers green; MMA@3 is the share of matches within 3 px of where the true homography puts "
        f"them.</p><div class='row'>{''.join(parts)}</div>"
    )


def baselines_section(table: dict[str, dict[str, float]], pairs: int, photos: int) -> str:
    """The table of :func:`table_row` per model."""
    head = "".join(f"<th>{html.escape(k)}</th>" for k in FORMATS)
    body = ""
    for label, row in table.items():
        cells = "".join(f"<td>{row[k]:{f}}</td>" for k, f in FORMATS.items())
        body += f"<tr><td class='key'>{html.escape(label)}</td>{cells}</tr>"
    return (
        "<h2 id='baselines'>5. The numbers beside the baselines</h2>"
        f"<p>Means over the {pairs} held-out photos: search among {photos} photos (R@1: share of "
        "queries whose true neighbour comes first; mean rank of the true neighbour), and matching "
        "each photo to its warped copy (MMA at 1/3/5 px, RANSAC inliers, matches).</p>"
        f"<table id='baseline-table'><tr><th>features</th>{head}</tr>{body}</table>"
    )


def training_section(run_dir: Path, out: Path, seconds: float) -> str:
    """The run's settings and final errors, its curves and last reconstructions, and a link
    to its own report."""
    config = read_json(run_dir / "config.json")
    summary = read_json(run_dir / "summary.json")
    final = ", ".join(f"{k} {v:.4g}" for k, v in summary["final"].items())
    pictures = [figure(png_tag(Image.open(run_dir / "curves.png")), "learning curves (Fig. 5)")]
    recon = sorted((run_dir / "reconstructions").glob("*.png"))
    if recon:
        caption = f"reconstructions, {recon[-1].stem.replace('_', ' ')}"
        pictures.append(figure(png_tag(Image.open(recon[-1])), caption))
    link = html.escape(str((run_dir / "report.html").relative_to(out)))
    return (
        "<h2 id='training'>1. Training</h2>"
        f"<p>{html.escape(config['encoder']['name'])} with {html.escape(config['loss']['spec'])}, "
        f"preset {html.escape(config['preset'])}, {summary['epochs']} epochs on "
        f"{config['data']['images']} photos in {seconds:.0f} s; final errors on the whole images: "
        f"{html.escape(final)}. The run's own page, with every setting and every reconstruction: "
        f"<a href='{link}'>{link}</a>.</p>" + "".join(pictures)
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.key { text-align: left; font-weight: 600; }
.row { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-end; }
figure { margin: 4px; font-size: 0.8em; text-align: center; }
img { border: 3px solid transparent; max-width: 100%; }
img.truth { border-color: #28dc3c; } img.query { border-color: #3c64dc; }
"""


def write_page(path: Path, sections: list[str]) -> Path:
    """Write the sections as one self-contained HTML page."""
    head = f"<meta charset='utf-8'><title>featkit demo</title><style>{_STYLE}</style>"
    title = f"<h1>featkit demo: {html.escape(path.parent.name)}</h1>"
    page = f"<!doctype html><html><head>{head}</head><body>{title}{''.join(sections)}</body></html>"
    path.write_text(page, encoding="utf-8")
    return path


# -- the script --------------------------------------------------------------------------------
def default_out() -> Path:
    """A new folder ``runs/demo-<UTC time>`` (``-2``, ``-3``, ... when taken)."""
    base = Path("runs") / f"demo-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def run_demo(out: Path, scale: Scale) -> Path:
    """Run every step into the new folder ``out``; returns its report.html."""
    started = time.perf_counter()
    out.mkdir(parents=True)
    folder = sample_images()
    photos = find_images(folder)
    held_out = [p for p in photos if p.name in HELD_OUT]
    train_list = out / "train.txt"
    train_list.write_text("".join(f"{p}\n" for p in photos if p.name not in HELD_OUT))

    print(f"[1/5] training on {len(photos) - len(held_out)} sample photos "
          f"(held out: {', '.join(p.name for p in held_out)})", flush=True)  # fmt: skip
    run_dir = train_run(train_list, out / "run", scale)
    train_seconds = time.perf_counter() - started
    pairs = make_pairs(held_out, scale.side, out / "queries")

    table, searches, matches = {}, {}, {}
    for step, (label, (name, spec)) in enumerate(MODELS.items(), start=2):
        print(f"[{step}/5] {label}: extract, index, search, match", flush=True)
        spec = str(run_dir) if spec is None else spec
        features = out / "features" / name
        features.mkdir(parents=True)
        searches[label] = search_ranks(spec, folder, pairs, features, scale.side)
        matches[label] = match_pairs(spec, pairs, scale.side)
        table[label] = table_row(searches[label]["ranks"], matches[label])
        print("  " + ", ".join(f"{k} {v:{FORMATS[k]}}" for k, v in table[label].items()), flush=True)
    seconds = round(time.perf_counter() - started, 1)
    write_json(out / "results.json", {"held_out": [p.name for p in held_out], "photos": len(photos),
                                      "scale": asdict(scale), "table": table, "seconds": seconds})  # fmt: skip

    trained = next(iter(MODELS))
    sections = [
        training_section(run_dir, out, train_seconds),
        neighbours_section(pairs, searches[trained]),
        clusters_section(searches[trained]["features"]),
        matches_section(pairs, matches),
        baselines_section(table, len(pairs), len(photos)),
    ]
    report = write_page(out / "report.html", sections)
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="new output folder (default: runs/demo-<time>); an existing one is refused")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny images and 2 epochs (a smoke run, for tests)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a busy machine threads mostly wait for each other; "
                             "a training epoch took 80 s on 2 threads and 4.4 s on 1 while another job ran)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    out = default_out() if args.out is None else args.out
    if out.exists():
        print(f"error: {out} already exists; the demo never overwrites, pass a new --out", file=sys.stderr)
        return 1
    try:
        report = run_demo(out, QUICK if args.quick else FULL)
    except (FeatkitError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; {out} is incomplete", file=sys.stderr)
        return 130
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
