"""Running whole programs: the original under torch, the migrated one under MindSpore, each with
two injected builtins, ``sample(*shape, seed=0)`` (the same seeded numbers as a tensor of the running
framework) and ``record(name, value)`` (keeps ``value`` as a numpy array), then the records compared
by name.

This executes the program: it is for the project's own executable fixtures and tests, never for
user files (``torch2ms verify`` builds layers from evaluated arguments instead)."""

from __future__ import annotations

from typing import Any, Mapping

from .compare import Comparison, Tolerance, compare_arrays
from .frameworks import Frameworks

FRAMEWORKS = ("torch", "mindspore")


def sample_array(*shape: int, seed: int = 0):
    """float32 standard-normal numbers from a generator seeded with ``seed``."""
    import numpy as np

    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def to_tensor(fw: Frameworks, framework: str, array):
    if framework == "torch":
        return fw.torch.from_numpy(array.copy())
    if framework == "mindspore":
        return fw.mindspore.Tensor(array.copy())
    raise ValueError(f"unknown framework {framework!r}")


def to_numpy(value: Any):
    """A torch tensor, a MindSpore tensor or parameter, or anything numpy takes, as an array."""
    import numpy as np

    # Copies: both frameworks' arrays may share a tensor's memory (torch's .numpy(), MindSpore's
    # .asnumpy() of a parameter), which a later training pass updates in place.
    if hasattr(value, "detach"):  # torch
        return value.detach().cpu().numpy().copy()
    if hasattr(value, "asnumpy"):  # MindSpore
        return value.asnumpy().copy()
    return np.asarray(value)


class ProgramError(Exception):
    """The program raised; ``framework`` tells which run."""

    def __init__(self, framework: str, exc: BaseException):
        super().__init__(f"under {framework}: {type(exc).__name__}: {exc}")
        self.framework = framework
        self.__cause__ = exc


def run_program(source: str, framework: str, fw: Frameworks, *, filename: str = "<program>",
                inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Execute ``source`` as a script (``__name__ == "__main__"``) and return what it recorded.
    ``inputs`` are numpy arrays made available as global names, as tensors of ``framework``."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}")
    records: dict[str, Any] = {}

    def sample(*shape: int, seed: int = 0):
        return to_tensor(fw, framework, sample_array(*shape, seed=seed))

    def record(name: str, value: Any) -> None:
        if name in records:
            raise ValueError(f"record({name!r}, ...) called twice")
        records[name] = to_numpy(value)

    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": filename,
                                 "sample": sample, "record": record}
    for name, array in (inputs or {}).items():
        namespace[name] = to_tensor(fw, framework, array)
    code = compile(source, filename, "exec")
    try:
        exec(code, namespace)  # the project's own fixture programs; see the module docstring
    except Exception as exc:
        raise ProgramError(framework, exc) from exc
    return records


def compare_records(expected: Mapping[str, Any], actual: Mapping[str, Any],
                    tolerance: Tolerance = Tolerance()) -> list[Comparison]:
    """One comparison per record name (torch's records are ``expected``); a name recorded on one
    side only is a failed comparison."""
    out = []
    for name in list(expected) + [n for n in actual if n not in expected]:
        if name not in actual or name not in expected:
            side = "MindSpore" if name not in actual else "torch"
            out.append(Comparison(name, "record", float("inf"), float("inf"), False,
                                  f"not recorded under {side}"))
            continue
        out.append(compare_arrays(name, "record", expected[name], actual[name], tolerance))
    return out
