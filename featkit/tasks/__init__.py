"""What users do with features: nearest-neighbour search (:mod:`~featkit.tasks.index`,
:mod:`~featkit.tasks.search`), clustering (:mod:`~featkit.tasks.clustering`), retrieval scores
(:mod:`~featkit.tasks.evaluation`) and correspondences between two images
(:mod:`~featkit.tasks.matching`, scored against :mod:`~featkit.tasks.homography`).

May import: :mod:`featkit.features` and everything below it; never :mod:`featkit.training`.
"""
