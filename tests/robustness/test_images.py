"""Decoding under faults: bad files are skipped with reasons, odd files are used correctly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featkit.data.images import find_images, load_image, load_images
from featkit.errors import ImageError
from tests.robustness.faults import BAD, make_fault_folder


@pytest.fixture(scope="module")
def fault_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    names = make_fault_folder(root, n_good=20)
    return root, names


def test_bad_files_skipped_with_reasons_and_the_rest_used(fault_folder):
    root, names = fault_folder
    records, skipped = load_images(find_images(root))
    skipped_names = {p.name: reason for p, reason in skipped}
    assert sorted(skipped_names) == names["bad"]
    for name, word in BAD.items():
        assert word in skipped_names[name], (name, skipped_names[name])
        assert skipped_names[name]  # never an empty reason
    used = {r.path.name for r in records}
    assert used == set(names["good"]) | set(names["odd"])
    for r in records:
        assert r.image.dtype == torch.float32 and r.image.shape[0] == 3
        assert float(r.image.min()) >= -1.0 and float(r.image.max()) <= 1.0


def test_exif_orientation_matches_physically_rotated_copy(fault_folder):
    root, _ = fault_folder
    rotated_by_exif = load_image(root / "exif6.jpg")
    physically_rotated = load_image(root / "exif6_rotated.png")
    assert rotated_by_exif.shape == (3, 40, 24)
    assert torch.equal(rotated_by_exif, physically_rotated)


def test_odd_modes_become_rgb(fault_folder):
    root, _ = fault_folder
    deep = load_image(root / "deep16.png")
    assert torch.equal(deep[0], deep[1]) and torch.equal(deep[1], deep[2])  # grey -> equal channels
    assert float(deep.max()) > 0.0  # 16-bit values scaled, not clipped to black
    assert load_image(root / "one_pixel.png").shape == (3, 1, 1)
    assert load_image(root / "animated.gif").shape[0] == 3
    alpha = load_image(root / "palette_alpha.png")
    assert torch.isfinite(alpha).all()


def test_decompression_bomb_refused_before_decoding(fault_folder):
    root, _ = fault_folder
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(root / "bomb.png")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=512), header=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM"]))
def test_random_bytes_decode_or_raise_image_error(tmp_path, data, header):
    path = tmp_path / "random.img.png"
    path.write_bytes(header + data)
    try:
        image = load_image(path)
    except ImageError as exc:
        assert str(path) in str(exc)
    else:
        assert image.dim() == 3 and image.shape[0] == 3
        assert np.isfinite(image.numpy()).all()
