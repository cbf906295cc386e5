"""The README's complete example runs as written and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_pipeline_example_prints_its_documented_score():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "print(" in b)
    documented = [float(v) for v in re.findall(r"0\.\d{6,}", example)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, str(README), "exec"), {})
    printed = float(out.getvalue().split()[-1])
    # The suite runs at one torch thread (conftest.py); the README gives the
    # one- and two-thread scores, which differ by float rounding only.
    assert min(abs(printed - d) for d in documented) < 0.005  # 2 of 450 images
    assert printed > 0.95
