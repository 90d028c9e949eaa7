"""The estimator benchmark script runs (its --quick mode; the figures need the full run)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_estimators.py"


def test_estimator_benchmark_runs_and_reports_every_target():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for section in ("## Robustness", "## Efficiency", "## Textbook", "## Speed", "## Classification"):
        assert section in out
    assert out.count("PASS") + out.count("MISS") >= 15
