"""Extraction and search speed, measured side by side in one run; prints ratios.

1. extraction throughput: ``featkit.features.extraction`` (DataLoader workers decoding, equally sized
   images batched, rows streamed to disk) against a naive per-image loop
   (``load_image`` -> ``model.features`` -> mean, one image at a time), on the same files,
   with the bound the machine sets: one-thread decode + network time per image, divided
   among the cores;
2. read-out cost: ``featkit.extract`` with the shipped model on JPEGs of real photos (1024 x 768
   and 256 x 256), every default against ``--raw`` (the layer's activations: decoding, network,
   pooling), pooled and dense (``--pool none``), interleaved in one run; images/s and the days
   a million photos would take on this machine, for the default and ``--max-side 512``; and
   the floor of an exact read-out: ``--raw`` plus the whitened projection's convolution alone;
3. matching two 512 px photos (``featkit.match``, homography RANSAC) with the shipped model
   and with ``daisy``, beside the parts it cannot skip: two forward passes and the mutual
   nearest-neighbour search; and at sparse LoG keypoints (``keypoints="log"`` and ``"log2x"``);
4. search: the index ``featkit.build_index`` picks for 200k vectors against scikit-learn's
   brute-force kNN (``NearestNeighbors(algorithm="brute")``, BLAS), same queries, with
   featkit's recall@10 against that exact answer;
5. an IVF-PQ index of 1M vectors built from a ``.npy`` on disk and searched in a child
   process, whose peak RSS is reported, with recall@10 against exact (streamed) search.

Vectors are synthetic: D = 64, overlapping clusters (see :func:`clustered`). Photos for part 2
are crops of the scikit-image sample photos, upscaled where needed, saved as JPEG quality 90.
Run: ``python bench/bench_extract.py`` (several minutes) or ``--quick`` (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def clustered(n: int, dim: int, seed: int, centres: int = 2000) -> np.ndarray:
    """``n`` points of a fixed mixture of ``centres`` unit Gaussians around N(0, 1) centres:
    clusters overlap, so an IVF index has to probe several lists (the mixture never changes)."""
    c = np.random.default_rng(12345).normal(size=(centres, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    return c[rng.integers(centres, size=n)] + rng.normal(size=(n, dim)).astype(np.float32)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


# -- 1. extraction -----------------------------------------------------------------------------
def write_images(folder: Path, count: int, side: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        base = rng.integers(0, 255, (side // 8, side // 8, 3), dtype=np.uint8)
        Image.fromarray(base).resize((side, side), Image.Resampling.BILINEAR).save(folder / f"{i:05d}.png")


def naive_extract(paths: list[Path], model_name: str, out: Path) -> None:
    """What one writes first: a loop over files, one forward pass each, the same descriptors."""
    import torch

    from featkit.data.images import load_image
    from featkit.features.descriptors import describe
    from featkit.runs.models import load_encoder

    model, _ = load_encoder(model_name)  # the same (seeded) weights featkit.features.extraction uses
    rows = []
    with torch.no_grad():
        for path in paths:
            rows.append(describe(model, load_image(path)[None]).mean(dim=(2, 3))[0].numpy())
    np.save(out, np.stack(rows))


def single_core_work(paths: list[Path], model_name: str) -> tuple[float, float]:
    """Seconds per image, on one thread, of decoding and of the batched network: the CPU work
    no schedule avoids. With ``c`` cores no extractor beats ``(decode + network) / c`` per image."""
    import torch

    from featkit.data.images import load_image
    from featkit.features.encoding import encode_images
    from featkit.runs.models import load_encoder

    model, _ = load_encoder(model_name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        images = [load_image(p) for p in paths]
        decode = time.perf_counter() - t0
        t0 = time.perf_counter()
        encode_images(model, images, model.default_layer)
        network = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    return decode / len(paths), network / len(paths)


def bench_extraction(tmp: Path, count: int, side: int, repeats: int, model: str = "paper-cae") -> dict[str, float]:
    """Print and return ``{"ratio": featkit / naive, "bound": the machine's bound}``."""
    import featkit
    from featkit.data.images import find_images

    folder = tmp / f"images{side}"
    write_images(folder, count, side)
    paths = find_images(folder)
    naive_extract(paths[:4], model, tmp / "warm.npy")  # import and allocator warm-up, untimed
    naive = fast = float("inf")
    for _ in range(repeats):  # interleaved, best of each: the machine is shared
        t0 = time.perf_counter()
        naive_extract(paths, model, tmp / "naive.npy")
        naive = min(naive, time.perf_counter() - t0)
        t0 = time.perf_counter()
        featkit.extract(folder, model, tmp / f"featkit{side}.npy", batch_size=64, overwrite=True)
        fast = min(fast, time.perf_counter() - t0)
    same = np.allclose(np.load(tmp / "naive.npy"), np.load(tmp / f"featkit{side}.npy"), rtol=1e-4, atol=1e-6)
    decode, network = single_core_work(paths, model)
    cores = len(os.sched_getaffinity(0))
    bound = (naive / count) / ((decode + network) / cores)
    print(
        f"extract  {count} PNGs {side}x{side}, {model}: naive loop {count / naive:8.1f} img/s | "
        f"featkit.extract {count / fast:8.1f} img/s (best of {repeats}) | ratio {naive / fast:5.2f}x (target 3x) | same rows: {same}\n"
        f"         one-thread work per image: decode {1e3 * decode:.3f} ms + network {1e3 * network:.3f} ms; "
        f"on {cores} cores no extractor exceeds {bound:.2f}x the naive loop",
        flush=True,
    )
    return {"ratio": naive / fast, "bound": bound}


# -- 2. read-out cost ---------------------------------------------------------------------------
def write_jpegs(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> None:
    """``count`` JPEGs of ``size`` (width, height): random crops of the sample photos, resized."""
    from PIL import Image

    from featkit.data.images import find_images
    from featkit.data.samples import sample_images

    rng = np.random.default_rng(seed)
    photos = find_images(sample_images())
    folder.mkdir(parents=True)
    for i in range(count):
        with Image.open(photos[i % len(photos)]) as im:
            im = im.convert("RGB")
            w, h = im.size
            cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            im.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)


def projection_ms(model_name: str, size: tuple[int, int], repeats: int = 3) -> float:
    """Milliseconds of the whitened read-out's convolution alone on one image, in the strips
    :func:`~featkit.features.descriptors.whitened_strips` runs it in: the arithmetic an exact
    read-out cannot skip (D x (C + 1) x window^2 multiply-adds per cell)."""
    import torch
    import torch.nn.functional as F

    from featkit.features.descriptors import STRIP_BYTES
    from featkit.runs.models import load_encoder
    from featkit.runs.whitening import whitening_for

    from bench_readout import best_ms

    model, _ = load_encoder(model_name)
    info = model.layer_info(None)
    whitening = whitening_for(model, info.name, model.default_window)
    h, w = (size[1] + info.stride - 1) // info.stride, (size[0] + info.stride - 1) // info.stride
    pad = whitening.window // 2
    inputs = torch.rand(1, info.channels + 1, h + 2 * pad, w).contiguous(memory_format=torch.channels_last)
    weight = torch.rand(whitening.dim, info.channels + 1, whitening.window, whitening.window)
    weight = weight.contiguous(memory_format=torch.channels_last)
    rows = max(1, STRIP_BYTES // (4 * w * whitening.dim))

    def convolve() -> None:
        for first in range(0, h, rows):
            F.conv2d(inputs[:, :, first : min(h, first + rows) + 2 * pad], weight, padding=(0, pad))

    with torch.inference_mode():
        return best_ms(convolve, repeats)


def bench_readout(tmp: Path, count: int, size: tuple[int, int], repeats: int) -> None:
    """Print default against ``--raw`` extraction with the shipped model, pooled and dense."""
    import featkit
    from featkit.runs.models import DEFAULT_MODEL

    folder = tmp / f"jpegs{size[0]}x{size[1]}"
    write_jpegs(folder, count, size)
    runs = {"raw": {"raw": True}, "default": {}, "max-side 512": {"max_side": 512}, "raw dense": {"raw": True, "pool": "none"},
            "dense": {"pool": "none"}}  # fmt: skip
    featkit.extract(folder, None, tmp / "warm.npy", overwrite=True)  # imports, allocator, oneDNN kernels
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):  # interleaved, best of each: the machine is shared
        for name, options in runs.items():
            out = tmp / f"{name.replace(' ', '-')}.npy"
            t0 = time.perf_counter()
            featkit.extract(folder, None, out, overwrite=True, **options)
            best[name] = min(best[name], time.perf_counter() - t0)
            out.unlink()  # dense rows of 1024 x 768 photos are 100 MB each
    floor = best["raw"] + count * projection_ms(DEFAULT_MODEL, size) / 1e3
    days = lambda seconds: 1e6 * seconds / count / 86400  # noqa: E731
    print(
        f"readout  {count} JPEGs {size[0]}x{size[1]}, {DEFAULT_MODEL} (best of {repeats}): "
        f"default {count / best['default']:.2f} img/s, --raw {count / best['raw']:.2f} img/s | "
        f"pooled / raw {best['default'] / best['raw']:.2f}x (target 1.4x; an exact read-out's floor "
        f"{floor / best['raw']:.2f}x: raw + the projection's convolution alone)",
        flush=True,
    )
    print(f"         dense / raw dense {best['dense'] / best['raw dense']:.2f}x (target 1.5x): "
          f"{count / best['dense']:.2f} against {count / best['raw dense']:.2f} img/s", flush=True)  # fmt: skip
    print(f"         a million such photos on this machine: {days(best['default']):.1f} days by default, "
          f"{days(best['max-side 512']):.1f} days with --max-side 512 ({count / best['max-side 512']:.2f} img/s)",
          flush=True)  # fmt: skip


# -- 3. matching ------------------------------------------------------------------------------
def bench_match(repeats: int, max_side: int = 512) -> None:
    """Print ``featkit.match`` of the motorcycle pair at ``max_side`` px against its unavoidable
    parts (two forward passes and the mutual nearest-neighbour search), and DAISY's time."""
    import torch

    import featkit
    from featkit.data.images import load_image
    from featkit.data.samples import sample_images
    from featkit.runs.models import DEFAULT_MODEL, load_encoder
    from featkit.tasks.matching import dense_descriptors, mutual_matches

    from bench_readout import best_ms

    a, b = sample_images() / "motorcycle_left.png", sample_images() / "motorcycle_right.png"
    model, _ = load_encoder(DEFAULT_MODEL)
    images = [load_image(p, max_side=max_side) for p in (a, b)]

    with torch.inference_mode():
        forward = best_ms(lambda: [model.features(x[None], model.default_layer) for x in images], repeats)
    described = [dense_descriptors(model, x) for x in images]
    search = best_ms(lambda: mutual_matches(described[0][0], described[1][0], 0.8), repeats)
    ours = best_ms(lambda: featkit.match(a, b, max_side=max_side), repeats)
    daisy = best_ms(lambda: featkit.match(a, b, "daisy", max_side=max_side), repeats)
    sparse = {k: best_ms(lambda: featkit.match(a, b, max_side=max_side, keypoints=k), repeats) for k in ("log", "log2x")}
    print(
        f"match    motorcycle pair at {max_side} px: featkit.match with {DEFAULT_MODEL} {ours:.0f} ms | daisy {daisy:.0f} ms "
        f"({daisy / ours:.1f}x ours) | two forward passes {forward:.0f} ms + mutual-NN search of "
        f"{len(described[0][0])} x {len(described[1][0])} descriptors {search:.0f} ms = {forward + search:.0f} ms "
        f"({ours / (forward + search):.2f}x of it)",
        flush=True,
    )
    print(
        f"         the same pair at LoG keypoints: --keypoints log {sparse['log']:.0f} ms ({sparse['log'] / ours:.2f}x dense) | "
        f"log2x {sparse['log2x']:.0f} ms ({sparse['log2x'] / ours:.2f}x dense, {sparse['log2x'] / sparse['log']:.1f}x log)",
        flush=True,
    )


# -- 4. search ---------------------------------------------------------------------------------
def bench_search(n: int, queries: int, dim: int = 64, k: int = 10) -> None:
    from sklearn.neighbors import NearestNeighbors

    import featkit

    data = clustered(n + queries, dim, seed=1)
    x, q = data[:n], data[n:]
    t0 = time.perf_counter()
    brute = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean").fit(x)
    _, truth = brute.kneighbors(q)
    sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = featkit.build_index(x, metric="l2")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, found = index.search_vectors(q, k)
    fk = time.perf_counter() - t0
    s = index.manifest["index"]
    print(
        f"search   {n} x {dim} vectors, {queries} queries, k={k}: sklearn brute {sk:7.3f} s | "
        f"featkit {s['kind']} ({s['factory']}, breadth {s.get('breadth')}) {fk:7.3f} s "
        f"[build {build:.1f} s] | ratio {sk / fk:6.1f}x (target 10x) | recall@10 {recall_at(found, truth):.4f} (target 0.95)",
        flush=True,
    )


# -- 5. IVF-PQ at 1M, in a child process so its peak RSS is its own ---------------------------
def write_vectors(path: Path, n: int, dim: int, chunk: int = 100_000) -> None:
    """A float32 .npy of ``n`` clustered vectors written block by block."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (n, dim)})
        for start in range(0, n, chunk):
            fh.write(clustered(min(chunk, n - start), dim, seed=100 + start // chunk).tobytes())


def ivfpq_child(path: Path, queries: int, dim: int, k: int = 10) -> dict:
    import featkit
    from featkit.tasks.index import exact_knn

    q = clustered(queries, dim, seed=7)
    t0 = time.perf_counter()
    index = featkit.build_index(path, path.with_suffix(".faiss"), kind="ivfpq", metric="l2")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, found = index.search_vectors(q, k)
    search = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, truth = exact_knn(q, path, k, "l2")
    exact = time.perf_counter() - t0
    return {
        "factory": index.manifest["index"]["factory"],
        "breadth": index.manifest["index"]["breadth"],
        "estimate": index.manifest["index"]["recall_at_10"],
        "build_s": build,
        "search_s": search,
        "exact_s": exact,
        "recall": recall_at(found, truth),
        "index_mib": path.with_suffix(".faiss").stat().st_size / 2**20,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def bench_ivfpq(tmp: Path, n: int, queries: int, dim: int = 64) -> None:
    path = tmp / "vectors.npy"
    write_vectors(path, n, dim)
    proc = subprocess.run(
        [sys.executable, __file__, "--ivfpq-child", str(path), str(queries), str(dim)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"ivfpq child failed:\n{proc.stderr}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"ivfpq    {n} x {dim} vectors ({path.stat().st_size / 2**20:.0f} MiB on disk) -> {r['factory']}, nprobe {r['breadth']}: "
        f"build {r['build_s']:.1f} s, {queries} queries {r['search_s']:.3f} s vs exact streamed {r['exact_s']:.2f} s "
        f"(ratio {r['exact_s'] / r['search_s']:.1f}x) | recall@10 {r['recall']:.4f} (build-time estimate {r['estimate']:.4f}) | index {r['index_mib']:.1f} MiB | "
        f"peak RSS {r['peak_rss_mib']:.0f} MiB (limit 4096, {r['peak_rss_mib'] / 4096:.2f}x of it)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run of every part.")
    parser.add_argument("--only", choices=("extract", "readout", "match", "search", "ivfpq"), help="Run one part only.")
    parser.add_argument("--ivfpq-child", nargs=3, metavar=("NPY", "QUERIES", "DIM"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ivfpq_child:
        path, queries, dim = args.ivfpq_child
        print(json.dumps(ivfpq_child(Path(path), int(queries), int(dim))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = lambda part: args.only in (None, part)  # noqa: E731
        if args.quick:
            run("extract") and bench_extraction(tmp, 24, 32, repeats=1)
            run("readout") and bench_readout(tmp, 4, (256, 192), repeats=1)
            run("match") and bench_match(repeats=1, max_side=160)
            run("search") and bench_search(12_000, 100)
            run("ivfpq") and bench_ivfpq(tmp, 12_000, 50)
        else:
            if run("extract"):
                bench_extraction(tmp, 400, 32, repeats=3)
                bench_extraction(tmp, 400, 128, repeats=3)
            if run("readout"):
                bench_readout(tmp, 24, (1024, 768), repeats=3)
                bench_readout(tmp, 200, (256, 256), repeats=3)
            run("match") and bench_match(repeats=5)
            run("search") and bench_search(200_000, 2_000)
            run("ivfpq") and bench_ivfpq(tmp, 1_000_000, 1_000)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
