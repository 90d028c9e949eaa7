"""The analysis benchmark's quick mode meets its targets (it exits 1 on a MISS)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_analysis.py"


def test_analysis_benchmark_quick_targets_are_met():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-3000:]
    for section in ("## Outlier detection", "## Location", "## Speed"):
        assert section in out
    # 2 marginal F1 cases (medium ones print "n/a"), 3 location shares, 2 speed targets
    assert out.count("PASS") >= 7 and "MISS" not in out and "n/a (not marginal)" in out
