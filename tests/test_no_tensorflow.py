"""The core must import where TensorFlow is absent (accelerator images usually lack it)."""

import subprocess
import sys

CORE = ["mmlaws", "mmlaws.main", "mmlaws.laws", "mmlaws.objectives", "mmlaws.data", "mmlaws.model",
        "mmlaws.train"]


def test_core_does_not_import_tensorflow():
    code = (
        "import importlib, sys\n"
        f"for m in {CORE!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'seqio'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
