"""Differential fuzzing of the migration (issue 17): small PyTorch programs generated over a grammar of
every layer rule, argument form, construction context, mode call, ``no_grad`` use and attribute
access (``grammar``), each run under torch and, migrated, under MindSpore on the same inputs
(``runner``). A difference is allowed only where the tool reported a warning or an error on a line
the differing result depends on; anything else is a silent difference.

Used by tests/test_fuzz_numeric.py (a fixed-seed run in CI) and benchmarks/fuzz_numeric.py (long runs).
"""

from .grammar import Program, generate, programs
from .runner import Outcome, check_program, load_frameworks_once

__all__ = ["Outcome", "Program", "check_program", "generate", "load_frameworks_once", "programs"]
