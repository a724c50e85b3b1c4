"""Where the code runs: the device (CPU or CUDA) and how tensors reach it
(:mod:`~featkit.runtime.devices`), and the process's memory allocator settings
(:mod:`~featkit.runtime.allocator`).

May import: :mod:`featkit.errors`.
"""
