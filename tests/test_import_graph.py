"""The package's imports run one way (benchmarks/import_graph.py prints the graph)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "import_graph.py"


def test_no_module_of_the_package_imports_one_that_imports_it_back() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "no circle" in done.stdout


def test_the_data_types_depend_on_nothing_of_the_package() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    lines = {line.split("<-")[0].strip(): line.split("<-")[1].strip() for line in done.stdout.splitlines() if "<-" in line}
    for module in ("codemod.plan", "codemod.findings"):
        assert lines[module] == "(nothing of the package)"
    assert lines["codemod.model"] == "codemod.findings"
