"""`featkit search`'s spatial verification of the first hits (``--rerank``, on by default for
image queries), and naming images back."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from featkit.cli import main
from featkit.data.collections import open_collection, ref_for_name
from featkit.data.images import load_image
from featkit.errors import FeatkitError, FeatkitWarning, ImageError
from featkit.features.extraction import extract
from featkit.runs.models import load_encoder
from featkit.tasks.index import Neighbour, build_index
from featkit.tasks.reranking import HitDescriptions, rerank
from featkit.tasks.search import search

#: Held-out sample photos (none of them trained the shipped model).
PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg")


@pytest.fixture(scope="module")
def gallery(sample_dir, tmp_path_factory):
    """The photos at 160 px as PNG files, a crop of coffee turned by 10 degrees as the query,
    and a flat index of the shipped model's pooled features."""
    root = tmp_path_factory.mktemp("rerank")
    (root / "gallery").mkdir()
    for name in PHOTOS:
        photo = Image.open(sample_dir / name).convert("RGB")
        photo.thumbnail((160, 160))
        photo.save(root / "gallery" / f"{name.split('.')[0]}.png")
    coffee = Image.open(root / "gallery" / "coffee.png")
    w, h = coffee.size
    coffee.crop((w // 6, h // 6, w * 5 // 6, h * 5 // 6)).rotate(10, resample=Image.Resampling.BICUBIC).save(root / "query.png")
    extract(root / "gallery", None, root / "f.npy", workers=0)
    build_index(root / "f.npy", root / "f.faiss")
    return root


def _hit(rank: int, path) -> Neighbour:
    return Neighbour(rank, rank - 1, str(path), 0.1 * rank)


def test_the_true_image_moves_first_and_the_rest_keep_their_places(gallery):
    model = load_encoder(None)[0]
    query = load_image(gallery / "query.png")
    names = ["chelsea", "astronaut", "coffee", "rocket"]  # coffee third by distance, rocket beyond the depth
    hits = [_hit(rank, gallery / "gallery" / f"{name}.png") for rank, name in enumerate(names, start=1)]
    ranked = rerank(model, query, hits, depth=3)
    assert [h.path.split("/")[-1] for h in ranked] == ["coffee.png", "chelsea.png", "astronaut.png", "rocket.png"]
    assert [h.rank for h in ranked] == [1, 2, 3, 4]
    assert ranked[0].inliers >= 20 and ranked[1].inliers < ranked[0].inliers / 4 and ranked[2].inliers < ranked[0].inliers / 4
    assert ranked[3].inliers is None and ranked[3].distance == hits[3].distance  # not verified, in place


def test_a_hit_that_cannot_be_read_counts_as_unverified_and_is_named(gallery):
    model = load_encoder(None)[0]
    descriptions = HitDescriptions(model)
    hits = [_hit(1, gallery / "gone.png"), _hit(2, gallery / "gallery" / "coffee.png")]
    ranked = rerank(model, load_image(gallery / "query.png"), hits, depth=2, descriptions=descriptions)
    assert [h.path.split("/")[-1] for h in ranked] == ["coffee.png", "gone.png"] and ranked[1].inliers == 0
    assert list(descriptions.unreadable) == [str(gallery / "gone.png")] and "no such image" in descriptions.unreadable[str(gallery / "gone.png")]


def test_search_verifies_image_queries_by_default_and_the_cli_shows_inliers(gallery, capsys):
    (plain,) = search(gallery / "f.faiss", [gallery / "query.png"], k=2, rerank=0)
    (checked,) = search(gallery / "f.faiss", [gallery / "query.png"], k=2)
    assert all(h.inliers is None for h in plain.neighbours) and len(checked.neighbours) == 2
    assert checked.neighbours[0].path.endswith("coffee.png") and checked.neighbours[0].inliers >= 20
    assert main(["search", str(gallery / "f.faiss"), str(gallery / "query.png"), "-k", "2", "--csv"]) in (0, None)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["path"].endswith("coffee.png") and int(rows[0]["inliers"]) >= 20
    assert main(["search", str(gallery / "f.faiss"), str(gallery / "query.png"), "-k", "1", "--json", "--rerank", "0"]) in (0, None)
    assert json.loads(capsys.readouterr().out)[0]["neighbours"][0]["inliers"] is None
    assert main(["search", str(gallery / "f.faiss"), str(gallery / "query.png"), "--csv", "--rerank", "0"]) in (0, None)
    assert "inliers" not in capsys.readouterr().out.splitlines()[0]  # by distance alone: no inliers column
    (vectors,) = search(gallery / "f.faiss", [gallery / "f.npy"], k=2)[:1]  # vector queries: not verified
    assert all(h.inliers is None for h in vectors.neighbours)


def test_hits_shared_by_queries_are_described_once_with_progress(gallery, monkeypatch):
    from featkit.tasks import reranking

    described = []
    real = reranking.keypoint_descriptors
    monkeypatch.setattr(reranking, "keypoint_descriptors", lambda model, image: described.append(image.shape) or real(model, image))
    progress = []
    results = search(gallery / "f.faiss", [gallery / "query.png", gallery / "gallery" / "rocket.png"], k=4,
                     on_progress=lambda done, total: progress.append((done, total)))  # fmt: skip
    assert len(described) == 2 + len(PHOTOS)  # each query once, each of the 4 hits once
    assert progress == [(1, 2), (2, 2)] and all(h.inliers is not None for r in results for h in r.neighbours)


def test_hits_gone_since_indexing_give_one_warning(sample_dir, tmp_path):
    for name in PHOTOS[:3]:
        photo = Image.open(sample_dir / name).convert("RGB")
        photo.thumbnail((96, 96))
        photo.save(tmp_path / f"{name.split('.')[0]}.png")
    extract(tmp_path, None, tmp_path / "f.npy", workers=0)
    build_index(tmp_path / "f.npy", tmp_path / "f.faiss")
    (tmp_path / "chelsea.png").rename(tmp_path / "query.png")
    (tmp_path / "astronaut.png").unlink()
    with pytest.warns(FeatkitWarning, match=r"could not verify 2 hits \(e\.g\. no such image: .*\.png\); they count as 0 inliers") as caught:
        (result,) = search(tmp_path / "f.faiss", [tmp_path / "query.png", tmp_path / "coffee.png"], k=3)[:1]
    assert len([w for w in caught if issubclass(w.category, FeatkitWarning)]) == 1
    inliers = {Path(h.path).name: h.inliers for h in result.neighbours}
    assert inliers["chelsea.png"] == inliers["astronaut.png"] == 0 and inliers["coffee.png"] is not None


def test_rerank_needs_image_queries_and_a_count(gallery, capsys):
    with pytest.raises(FeatkitError, match="--rerank verifies images"):
        search(gallery / "f.faiss", [gallery / "f.npy"], rerank=2)
    assert main(["search", str(gallery / "f.faiss"), str(gallery / "f.npy"), "--rerank", "2"]) == 1
    err = capsys.readouterr().err
    assert "--rerank verifies images" in err and "Traceback" not in err
    assert main(["search", str(gallery / "f.faiss"), str(gallery / "query.png"), "--rerank", "-1"]) == 2


def test_names_of_tar_members_lead_back_to_their_bytes(gallery, tmp_path):
    shard = tmp_path / "part-000.tar"
    with tarfile.open(shard, "w") as tar:
        tar.add(gallery / "gallery" / "coffee.png", arcname="x/coffee.png")
    (member,) = open_collection(str(shard)).refs
    ref = ref_for_name(member.name)
    assert (ref.path, ref.offset, ref.size) == (member.path, member.offset, member.size)
    assert ref.open().read() == (gallery / "gallery" / "coffee.png").read_bytes()
    with pytest.raises(ImageError, match="has no member x/tea.png"):
        ref_for_name(f"{shard}:x/tea.png")
    with pytest.raises(ImageError, match="no such image"):
        ref_for_name(str(tmp_path / "nothing.png"))
    with tarfile.open(shard, "w") as tar:  # rewritten: its headers are read again
        tar.add(gallery / "gallery" / "rocket.png", arcname="y/rocket.png")
        tar.add(gallery / "gallery" / "coffee.png", arcname="x/coffee.png")
    assert ref_for_name(member.name).open().read() == (gallery / "gallery" / "coffee.png").read_bytes()


def test_the_help_gives_the_default_depth(capsys):
    from featkit.tasks.reranking import DEFAULT_RERANK

    assert main(["search", "--help"]) in (0, None)
    assert f"Default: {DEFAULT_RERANK} for image queries" in " ".join(capsys.readouterr().out.replace("│", " ").split())
