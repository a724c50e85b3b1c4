"""Float32 comparisons that hold on every CPU.

Two float32 computations of the same quantity that batch, split or reduce differently (another
batch size, decoding workers, extraction shards, gradients summed over two processes, a
channels-last layout) take their sums in another order, and oneDNN and ATen choose that order
by CPU (AVX2, AVX-512, ...) and by tensor shape. They agree to float32 rounding, not bit for
bit, so the suite compares them with the bound that rounding obeys, not with equality:

A sum of ``n`` float32 terms taken in any order lies within :math:`\\gamma_n = n u / (1 - n u)`,
:math:`u = 2^{-24}`, of the exact sum, relative to the sum of the terms' magnitudes (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 4.2); two orders therefore
differ by at most :math:`2 \\gamma_n` of it. A chain of such sums (the layers of a network, then
normalisations, a projection, a pooling mean) adds its steps' errors to first order, so ``n``
below is the total length of the reductions along the chain, named where each test calls a
helper. featkit's values are sums whose terms are of the order of the largest value of the row
or tensor they land in (unit descriptors, weights of one layer), which is the scale the bound
is taken against.

What is computed in literally the same way (a resumed training run, the same images in the same
batches) stays bit-identical and keeps its equality tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Unit roundoff of float32.
FLOAT32_U = 2.0**-24


def gamma(terms: int) -> float:
    """Higham's :math:`\\gamma_n`: the relative error bound of a float32 sum of ``terms`` terms."""
    return terms * FLOAT32_U / (1 - terms * FLOAT32_U)


def assert_rows_close(actual, expected, *, terms: int) -> None:
    """Each row equals the same row of ``expected`` to float32 rounding of sums of ``terms``
    terms: :math:`|a_{ij} - b_{ij}| \\le 2 \\gamma_n \\max_j |b_{ij}|` (a 1-D array is one row).

    A wrong row, image, order or pooling differs by the row's own magnitude, thousands of
    times more than this allows.
    """
    a, b = np.atleast_2d(np.asarray(actual, np.float64)), np.atleast_2d(np.asarray(expected, np.float64))
    assert a.shape == b.shape, f"shapes differ: {a.shape} against {b.shape}"
    bound = 2 * gamma(terms) * np.abs(b).max(axis=1, keepdims=True)
    excess = np.abs(a - b) - bound
    if (excess > 0).any():
        row = int(np.argmax(excess.max(axis=1)))
        worst = float(np.abs(a[row] - b[row]).max())
        raise AssertionError(f"row {row} differs by {worst:.3g}, beyond float32 rounding of {terms}-term sums "
                             f"({float(bound[row, 0]):.3g} = 2 gamma_{terms} x its largest magnitude); "
                             f"{int((excess > 0).any(axis=1).sum())} of {len(a)} rows are beyond it")  # fmt: skip


def assert_weights_close(actual: Mapping, expected: Mapping, *, terms: int, steps: int) -> None:
    """Weights trained along two summation orders agree to float32 rounding.

    Each of the ``steps`` updates is a float32 function of gradient sums of at most ``terms``
    terms, rounded within :math:`\\gamma_n` of their magnitude in each order, and changes every
    weight by less than the tensor's largest weight; their errors add up over the steps, so
    :math:`\\max |a - b| \\le 2 \\gamma_n \\cdot \\text{steps} \\cdot \\max |b|` per tensor. This holds for
    plain or momentum SGD, whose updates are linear in the gradients; Adam's division by the
    root of its second moment can turn a gradient that is zero to within rounding into a full
    step of either sign, so tests comparing summation orders train with SGD.
    """
    assert actual.keys() == expected.keys(), f"tensors differ: {sorted(actual)} against {sorted(expected)}"
    for name in expected:
        a, b = (np.asarray(t.double() if hasattr(t, "double") else t, np.float64) for t in (actual[name], expected[name]))
        assert a.shape == b.shape, f"{name}: shape {a.shape} against {b.shape}"
        bound = 2 * gamma(terms) * steps * float(np.abs(b).max())
        worst = float(np.abs(a - b).max())
        assert worst <= bound, (f"{name} differs by {worst:.3g}, beyond float32 rounding of {steps} steps of "
                                f"{terms}-term gradient sums ({bound:.3g})")  # fmt: skip
