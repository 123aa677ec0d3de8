"""Training depends on neither the analysis package nor the fitter's solvers (scipy)."""

import json
import subprocess
import sys


def test_importing_training_leaves_analysis_and_scipy_out():
    code = ("import json, sys, mmlaws.train\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'\n"
            "      or m.startswith(('mmlaws.analysis', 'mmlaws.laws.')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    # records (and its line codec, runfile) and the spike rule, and σ-membership (numpy only)
    # which the laws package loads
    assert json.loads(out) == ["mmlaws.laws.membership", "mmlaws.laws.records",
                               "mmlaws.laws.runfile", "mmlaws.laws.spikes"]
