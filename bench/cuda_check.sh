#!/usr/bin/env bash
# The CUDA path, end to end, on a machine with a GPU: train (fp32 and --amp), extract, match,
# and the same training step on CPU and GPU side by side. Run from the repository root with
# featkit importable (pip install -e .); writes under ${OUT:-/tmp/cuda_check}.
set -euo pipefail
OUT=${OUT:-/tmp/cuda_check}
mkdir -p "$OUT"
S=$(python3 -c "from featkit.data import sample_images; print(sample_images())")
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
time python3 -m featkit train --device cuda --epochs 4 --max-side 256 --out "$OUT/fp32" --quiet
time python3 -m featkit train --device cuda --amp --epochs 4 --max-side 256 --out "$OUT/amp" --quiet
time python3 -m featkit train --device cpu --epochs 4 --max-side 256 --out "$OUT/cpu" --quiet
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for name in ("cpu", "fp32", "amp"):
    c = json.load(open(f"{out}/{name}/config.json")); s = json.load(open(f"{out}/{name}/summary.json"))
    print(name, "device", c["device"], "amp", c["amp"], "seconds", s["seconds"], {k: round(v, 5) for k, v in s["final"].items()})
PY
time python3 -m featkit extract "$S" -m "$OUT/fp32" --device cuda -o "$OUT/f_cuda.npy" --quiet
time python3 -m featkit extract "$S" -m "$OUT/fp32" --device cpu -o "$OUT/f_cpu.npy" --quiet
python3 -c "import numpy as np, sys; a=np.load('$OUT/f_cuda.npy'); b=np.load('$OUT/f_cpu.npy'); print('extract cuda vs cpu: shape', a.shape, 'max abs diff', float(abs(a-b).max()))"
python3 -m featkit match "$S/motorcycle_left.png" "$S/motorcycle_right.png" -m "$OUT/fp32" --device cuda \
  --ransac fundamental -o "$OUT/match.png" --json "$OUT/match.json" || echo "match exit $?"
python3 -m pytest -q tests/test_devices.py 2>&1 | tail -3
