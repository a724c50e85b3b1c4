"""viewpoint_homography: the second view of a plane from a camera moved round it."""

from __future__ import annotations

import numpy as np
import pytest

from featkit.errors import MatchError
from featkit.tasks.homography import _apply, viewpoint_homography

SIZE = (400, 300)
CENTRE = np.array([[(SIZE[0] - 1) / 2, (SIZE[1] - 1) / 2]])


@pytest.mark.parametrize("axis", ["vertical", "horizontal"])
def test_the_centre_stays_and_the_plane_foreshortens_by_the_cosine(axis):
    h = viewpoint_homography(SIZE, 50.0, axis)
    np.testing.assert_allclose(_apply(h, CENTRE), CENTRE, atol=1e-9)
    step = np.array([[1e-3, 0.0]]) if axis == "vertical" else np.array([[0.0, 1e-3]])
    across = np.linalg.norm(_apply(h, CENTRE + step) - _apply(h, CENTRE - step)) / np.linalg.norm(2 * step)
    along = np.linalg.norm(_apply(h, CENTRE + step[:, ::-1]) - _apply(h, CENTRE - step[:, ::-1])) / 2e-3
    assert across == pytest.approx(np.cos(np.deg2rad(50.0)), rel=1e-6)  # foreshortened across the axis
    assert along == pytest.approx(1.0, rel=1e-6)  # not along it


def test_lines_parallel_to_the_axis_stay_parallel_to_it_and_the_near_side_grows():
    h = viewpoint_homography(SIZE, 40.0, "vertical")
    column = np.array([[300.0, y] for y in (0.0, 150.0, 299.0)])
    assert np.ptp(_apply(h, column)[:, 0]) < 1e-9  # a vertical line stays vertical
    right = np.linalg.norm(_apply(h, np.array([[390.0, 10.0]])) - _apply(h, np.array([[390.0, 290.0]])))
    left = np.linalg.norm(_apply(h, np.array([[10.0, 10.0]])) - _apply(h, np.array([[10.0, 290.0]])))
    assert right > 280.0 > left  # the side turned towards the camera looks taller


def test_zoom_and_roll_about_the_centre():
    h = viewpoint_homography(SIZE, 0.0, scale=2.0, rotation=90.0)
    offset = np.array([[10.0, 0.0]])
    np.testing.assert_allclose(_apply(h, CENTRE + offset) - CENTRE, [[0.0, 20.0]], atol=1e-9)
    np.testing.assert_allclose(viewpoint_homography(SIZE, 0.0), np.eye(3), atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"tilt": 90.0}, "tilt must be below 90"),
    ({"tilt": 10.0, "axis": "diagonal"}, "axis must be"),
    ({"tilt": 10.0, "scale": 0.0}, "scale must be positive"),
])  # fmt: skip
def test_bad_arguments_say_which(kwargs, message):
    with pytest.raises(MatchError, match=message):
        viewpoint_homography(SIZE, **kwargs)
