"""benchmarks/recipe.py on a few real Fashion-MNIST images: both recipes train, and the output
says which augmentation each one trained with."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from nasdb.search._hyperparameters import MODERN_AUGMENT_FROM_STEPS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "recipe.py"


def test_recipe_benchmark_trains_both_recipes_and_says_what_each_used() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--limit", "400", "--epochs", "1,2"],
                          capture_output=True, text=True, timeout=600, cwd=SCRIPT.parents[1])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^machine: \d+ CPUs, load average", out, re.M)
    for epochs, steps in ((1, 4), (2, 8)):
        assert (f"on 400 Fashion-MNIST images, {epochs} epochs ({steps} steps; auto augments "
                f"from {MODERN_AUGMENT_FROM_STEPS})") in out
    rows = re.findall(r"^(nasdb|baseline) .* trains with (\S+) *: test acc 0\.\d{4}", out, re.M)
    assert rows == [("nasdb", "none"), ("baseline", "crop-flip")] * 2, out
