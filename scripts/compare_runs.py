"""Compare two model folders trained with the same config: metrics.json, thresholds and test probabilities.

    python scripts/compare_runs.py RUN_A RUN_B
"""
import sys
from pathlib import Path

import numpy as np

from genrelens.bundle import read_artifact, read_meta

a, b = Path(sys.argv[1]), Path(sys.argv[2])
ma, mb = (read_artifact(d, "metrics") for d in (a, b))
for part in ("test", "val", "test_at_0.5"):
    for k in ("weighted_f1", "micro_f1", "macro_f1", "samples_f1"):
        x, y = ma[part][k], mb[part][k]
        print(f"{part:12s} {k:12s} before {x:.6f} after {y:.6f} diff {y - x:+.2e}")
pa, pb = (read_artifact(d, "test_proba") for d in (a, b))
print("test_proba max |diff|", float(np.abs(pa - pb).max()), "shape", pa.shape)
(_, _, la, ta), (_, _, lb, tb) = (read_meta(d) for d in (a, b))
print("thresholds equal:", la == lb and np.array_equal(ta, tb))
print("test ids equal:", read_artifact(a, "test_ids") == read_artifact(b, "test_ids"))
ha = [(h["epoch"], round(h["val_weighted_f1"], 6)) for h in ma["history"]]
hb = [(h["epoch"], round(h["val_weighted_f1"], 6)) for h in mb["history"]]
print("head history equal:", ha == hb, len(ha), len(hb))
