"""benchmarks/gpu_throughput.py --quick on the CPU: the same code paths as on a GPU (the device
loop in fp32 and bf16, the textbook loop, real `nasdb worker --slots` processes on a real server,
the cnn reference), and the output it promises."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_throughput.py"


@pytest.mark.timeout(1500)
def test_gpu_benchmark_quick_runs_every_path_on_the_cpu(pg_admin_url: str) -> None:
    args = ["--quick", "--device", "cpu", "--dataset", "digits", "--architectures", "1",
            "--slots", "2", "--jobs", "2", "--url", pg_admin_url]
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=1400, cwd=SCRIPT.parents[1])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    assert lines[0] == "$ " + shlex.join(["python", "benchmarks/gpu_throughput.py", *args])
    assert re.search(r"^device: cpu \(.+, \d+ torch threads of \d+ cpus\), torch .+, load average "
                     r"\d+\.\d\d$", out, re.M)
    assert "best of 1 timed run(s)" in out
    # a sampled CNN under 100k parameters: textbook, ours fp32, ours bf16
    rows = re.findall(r"^(C\S*) \(seed \d+\) +([\d,]+) textbook +([\d,]+) +1\.00x +cpu \d+%$",
                      out, re.M)
    assert len(rows) == 1 and all(int(p.replace(",", "")) < 100_000 for _, p, _ in rows), out
    for loop in ("ours fp32", "ours bf16"):
        rates = re.findall(rf"^ +{loop} +([\d,]+) +(\d+\.\d\d)x +cpu \d+%", out, re.M)
        assert len(rates) == 1 and all(int(r.replace(",", "")) > 0 for r, _ in rates)
        assert re.search(rf"^{loop}: \d+\.\d\dx the textbook loop \(geometric mean", out, re.M)
    assert re.search(r"^slots 1: [\d,]+ img/s over 2 jobs", out, re.M)
    assert re.search(r"^slots 2: [\d,]+ img/s over 2 jobs", out, re.M)
    assert re.search(r"^slots 2 vs 1: \d+\.\d\dx total throughput", out, re.M)
    assert re.search(r"^cnn reference: 1 epoch\(s\) on 1294 digits images in \d+\.\d s wall "
                     r"\(\d+\.\d s training\), test accuracy 0\.\d{4}, fp32", out, re.M)
    assert re.search(r"^load average at the end \d+\.\d\d$", out, re.M)
