"""The estimator benchmark script runs, and its quick mode meets the targets it checks.

The figures need the full run (``python benchmarks/bench_estimators.py``);
``--quick --strict`` exits with status 1 when a target that quick mode checks
is missed, and says which targets it cannot check.
"""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_estimators.py"


def test_estimator_benchmark_quick_mode_meets_the_targets_it_checks():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--strict"], capture_output=True, text=True, timeout=900)
    out = done.stdout
    missed = [line for line in out.splitlines() if line.startswith("MISSED")]
    assert done.returncode == 0, (missed, done.stderr[-3000:])
    assert not missed and "MISS" not in out.replace("MISSED", "")
    for section in ("## Robustness", "## Efficiency", "## Textbook", "## Speed", "## Iterations", "## Classification", "## Summary"):
        assert section in out
    assert out.count("PASS") >= 10
    # What quick mode cannot check is named, not reported as a miss.
    assert "not checked in quick mode" in out and "speed vs LinearRegression" in out
