"""Drawing matches: the two images side by side, joined by lines coloured by RANSAC's verdict."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from featkit.data.images import load_image
from featkit.errors import MatchError
from featkit.io import atomic_path, ensure_new

if TYPE_CHECKING:  # annotations only: drawing needs no matching code
    from featkit.tasks.matching import ImageInput, MatchResult

__all__ = ["INLIER_COLOUR", "OUTLIER_COLOUR", "draw_matches", "plot_format", "save_match_plot"]

INLIER_COLOUR = (40, 220, 60)
OUTLIER_COLOUR = (235, 50, 50)
_GAP = 8
_LINE = 14  # caption line height of Pillow's default font, in pixels


def _to_pil(image: ImageInput, height: int, original: tuple[int, int]) -> Image.Image:
    """``image`` as RGB scaled so that its original ``(W, H)`` becomes ``height`` tall."""
    width = max(1, round(original[0] * height / original[1]))
    if not isinstance(image, torch.Tensor):
        image = load_image(image, max_side=max(width, height))
    arr = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB").resize((width, height), Image.Resampling.LANCZOS)


def draw_matches(
    image_a: ImageInput,
    image_b: ImageInput,
    result: MatchResult,
    *,
    height: int = 480,
    max_lines: int = 200,
) -> Image.Image:
    """Render A and B side by side with a line per match and a caption.

    Inliers are drawn in green over outliers in red; with more than ``max_lines`` matches the
    most distinctive (by score) of each kind are drawn, in proportion to their counts.

    Args:
        image_a: the file or :math:`(3, H, W)` tensor given to :func:`~featkit.tasks.matching.match`.
        image_b: the same for B.
        result: what :func:`~featkit.tasks.matching.match` returned for them.
        height: pixel height both images are scaled to.
        max_lines: most lines drawn.

    Returns:
        An RGB image ``height`` plus a caption tall, with A on the left and B on the right.
    """
    left = _to_pil(image_a, height, result.size_a)
    right = _to_pil(image_b, height, result.size_b)
    offset = left.width + _GAP
    m = result.matches  # sorted by decreasing score
    inliers, outliers = np.flatnonzero(m["inlier"]), np.flatnonzero(~m["inlier"])
    caption = f"inliers: {len(inliers)} (green), outliers: {len(outliers)} (red)"
    if len(m) > max_lines:
        keep = round(max_lines * len(inliers) / len(m))
        inliers, outliers = inliers[:keep], outliers[: max_lines - keep]
        caption += f", {max_lines} most distinctive drawn"
    lines = textwrap.wrap(f"{caption}. {result.summary()}", width=max(20, (offset + right.width) // 6))
    canvas = Image.new("RGB", (offset + right.width, height + 4 + _LINE * len(lines)), (255, 255, 255))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (offset, 0))

    order = np.concatenate([outliers, inliers])  # inliers drawn last, on top
    sa = height / result.size_a[1]
    sb = height / result.size_b[1]
    draw = ImageDraw.Draw(canvas)
    for i in order:
        colour = INLIER_COLOUR if m["inlier"][i] else OUTLIER_COLOUR
        xa, ya = (m["xa"][i] + 0.5) * sa - 0.5, (m["ya"][i] + 0.5) * sa - 0.5
        xb, yb = (m["xb"][i] + 0.5) * sb - 0.5 + offset, (m["yb"][i] + 0.5) * sb - 0.5
        draw.line([(xa, ya), (xb, yb)], fill=colour, width=1)
        for x, y in ((xa, ya), (xb, yb)):
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], outline=colour)
    font = ImageFont.load_default()
    for k, line in enumerate(lines):
        draw.text((4, height + 2 + k * _LINE), line, fill=(0, 0, 0), font=font)
    return canvas


def plot_format(path: str | os.PathLike) -> str:
    """The Pillow format that ``path``'s suffix names (``"PNG"`` for ``.png``).

    Raises:
        MatchError: the suffix is not an image format Pillow writes.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise MatchError(f"{path}: cannot write a '{path.suffix}' image; use .png or .jpg")
    return fmt


def save_match_plot(
    path: str | os.PathLike,
    image_a: ImageInput,
    image_b: ImageInput,
    result: MatchResult,
    *,
    overwrite: bool = False,
    **options,
) -> Path:
    """Write :func:`draw_matches` to ``path`` (format from its suffix), atomically.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        MatchError: the suffix is not an image format Pillow writes.
    """
    fmt = plot_format(path)
    path = ensure_new(path, overwrite=overwrite)
    picture = draw_matches(image_a, image_b, result, **options)
    with atomic_path(path) as tmp:
        picture.save(tmp, format=fmt)
    return path
