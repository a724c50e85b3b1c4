"""The pictures: training curves and reconstruction figures (:mod:`~featkit.report.figures`),
a run's HTML page (:mod:`~featkit.report.page`) and match drawings
(:mod:`~featkit.report.match_drawing`).

May import: :mod:`featkit.data` (to read images back) and the foundation; never the stages
that call it (training, tasks), so any stage can draw.
"""

from featkit._lazy import lazy_exports

#: Exported name -> the module defining it, imported on first use.
_EXPORTS = {
    "write_report": "featkit.report.page",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
