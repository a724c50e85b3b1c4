"""`featkit match`: correspondences between two images, drawn and optionally measured."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featkit.cli._common import DeviceOpt, ModelOpt, OverwriteOpt, err_console, out_console
from featkit.io import ensure_new
from featkit.choices import KEYPOINT_MODES, RANSAC_MODEL_NAMES

Ransac = Enum("Ransac", {name: name for name in RANSAC_MODEL_NAMES}, type=str)
KeypointMode = Enum("KeypointMode", {name: name for name in KEYPOINT_MODES}, type=str)

#: Exit status when matching ran fine but no match survived (outputs are still written).
NO_MATCHES_EXIT = 3


def match(
    image_a: Annotated[Path, typer.Argument(help="First image.")],
    image_b: Annotated[Path, typer.Argument(help="Second image.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture of the matches to write (.png or .jpg).")],
    model: ModelOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write every match (xa, ya, xb, yb, score, inlier) and the summary as JSON.")] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="Hidden layer (see `featkit encoders`); default: the encoder's.")] = None,
    ratio: Annotated[float, typer.Option("--ratio", help="Lowe's ratio test threshold, applied both ways; lower keeps fewer, surer matches.")] = 0.8,
    ransac: Annotated[Ransac, typer.Option("--ransac", help="Geometric verification (scikit-image RANSAC): homography or affine for planar scenes and a rotating camera, fundamental (epipolar geometry) for scenes with depth; none keeps every match as an inlier.")] = Ransac.homography,
    ransac_threshold: Annotated[float | None, typer.Option("--ransac-threshold", help="Inlier reprojection error in pixels of IMAGE_B; for fundamental, the distance to the epipolar line (default: 1.5 feature cells, at least 3).")] = None,
    max_matches: Annotated[int | None, typer.Option("--max-matches", min=1, help="Keep only the N most distinctive matches (before RANSAC).")] = None,
    gt_homography: Annotated[Path | None, typer.Option("--gt-homography", help="Text file with the true 3x3 homography IMAGE_A -> IMAGE_B: report MMA at 1/3/5 px and the corner error.")] = None,
    max_side: Annotated[int, typer.Option("--max-side", min=0, help="Downscale each image to this longer side before matching (0: full size; cost grows with the square of the cell count). Coordinates stay in original pixels.")] = 512,
    window: Annotated[Optional[int], typer.Option("--window", min=1, help="Stack the WINDOW x WINDOW neighbouring cells into each descriptor (odd; 1: the cell alone). Default: the encoder's, 3 for the CAEs.")] = None,
    whiten: Annotated[bool, typer.Option("--whiten/--no-whiten", help="Apply the run's descriptor whitening, fitted on its training images (trained runs have one).")] = True,
    scales: Annotated[int, typer.Option("--scales", min=1, help="Describe each image on a pyramid of this many levels, 1/sqrt(2) apart, and match across them: 3 covers a zoom of 0.5-2x between the images (about 1.75x the descriptors and 3x the search of 1).")] = 1,
    keypoints: Annotated[KeypointMode, typer.Option("--keypoints", help="dense: every cell of the layer with contrast; log: sparse blobs of the normalised LoG (the paper's eq. 5), each described on a patch turned and scaled to its own orientation and scale: fewer, surer matches under viewpoint change, zoom and roll (takes no --scales); log2x: the same with an octave at twice the resolution too, as SIFT does: about 6x the descriptors and 2.5-3x the right matches, for about 8x the time (dense: for stereo).")] = KeypointMode.dense,
    max_size_ratio: Annotated[float, typer.Option("--max-size-ratio", min=1.0, help="Refuse pairs whose longer sides, as matched, differ by more than this factor.")] = 4.0,
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
) -> int:
    """Match IMAGE_A to IMAGE_B with MODEL's dense hidden features (default: the shipped featkit-cae) and draw the matches.

    Descriptors are the cells of a hidden layer, each L2-normalised and stacked with its neighbours (--window), then whitened when MODEL is a trained run; with --keypoints log they are read at sparse LoG blobs instead, each on a patch resampled to the blob's scale and orientation. Mutual nearest neighbours (faiss) that pass Lowe's ratio test both ways are verified with RANSAC. Coordinates are in the original images' pixels. One summary line goes to stdout.

    Exit status: 0 matches found; 1 error (unreadable image, sizes more than --max-size-ratio apart, bad options); 2 usage error; 3 ran fine but found no matches (none survived the ratio test or RANSAC): the picture and an empty but valid JSON are still written.
    """
    from featkit.report.match_drawing import plot_format, save_match_plot
    from featkit.tasks.matching import match as find_matches, save_match_json

    plot_format(out)
    ensure_new(out, overwrite=overwrite)
    if json_out is not None:
        ensure_new(json_out, overwrite=overwrite)
    if window is not None and window % 2 == 0:
        raise typer.BadParameter(f"must be odd, got {window}", param_hint="'--window'")
    if keypoints is not KeypointMode.dense and scales != 1:
        raise typer.BadParameter("LoG keypoints are described at their own scale; leave --scales at 1", param_hint="'--scales'")
    with err_console.status("matching"):
        result = find_matches(
            image_a, image_b, model, layer=layer, ratio=ratio, ransac=ransac.value, max_matches=max_matches,
            max_side=max_side or None, ransac_threshold=ransac_threshold, window=window, whiten=whiten,
            scales=scales, keypoints=keypoints.value, max_size_ratio=max_size_ratio, gt_homography=gt_homography, device=device,
        )  # fmt: skip
        save_match_plot(out, image_a, image_b, result, overwrite=overwrite)
        if json_out is not None:
            save_match_json(result, json_out, overwrite=overwrite)
    out_console.print(result.summary(), markup=False, soft_wrap=True)
    written = f"wrote {out}" + (f" and {json_out}" if json_out is not None else "")
    err_console.print(written, markup=False)
    if result.num_inliers == 0:
        err_console.print(f"no matches found (exit status {NO_MATCHES_EXIT})")
        return NO_MATCHES_EXIT
    return 0
