"""The ``convert-ckpt`` command: read a torch state dict, rename (and reshape) the keys of the layers
whose MindSpore parameters are named (or laid out) otherwise (keys.py decides: from the built
model's own parameters, from the source's structure, or from the keys), write a MindSpore
checkpoint, and optionally prove it on the models (check.py)."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from .frameworks import CkptError

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2


@dataclass
class Outcome:
    """Everything one conversion found and did, for the text and JSON reports."""

    checkpoint: str
    output: str | None
    dry_run: bool
    found_in: str = ""
    tensors: int = 0
    stripped: int = 0
    plan: object = None  # keys.Plan
    verdict: object = None  # check.Verdict
    written: bool = False
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        plan = self.plan
        return {
            "checkpoint": self.checkpoint, "output": self.output, "dry_run": self.dry_run,
            "found_in": self.found_in, "tensors": self.tensors, "stripped": self.stripped,
            "model": plan.model if plan else None,
            "framework": plan.model_class.framework if plan and plan.model_class else None,
            "renamed": {m.key: m.new for m in plan.renamed} if plan else {},
            "reshaped": {m.key: str(m.layout) for m in plan.reshaped} if plan else {},
            "layers": {m.key: {"layer": m.layer, "found_by": m.found_by} for m in plan.moves if m.layer} if plan else {},
            "dropped": [{"key": m.key, "why": m.why} for m in plan.dropped] if plan else [],
            "unchanged": [m.key for m in plan.unchanged] if plan else [],
            "mismatches": [{"key": k, "why": w} for k, w in plan.mismatches] if plan else [],
            "notes": plan.notes if plan else [], "warnings": plan.warnings if plan else [],
            "verify": self.verdict.to_dict() if self.verdict else None,
            "written": self.written, "errors": self.errors,
        }


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"expected positive integers like 2,3,8,8, got {text!r}", param_hint="--input-shape")
    return tuple(int(p) for p in parts)


@click.command("convert-ckpt")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("output", required=False, type=click.Path(path_type=Path))
@click.option("--source", type=click.Path(path_type=Path),
              help="The source (file or directory) defining the model: the original PyTorch code or its "
                   "migration to MindSpore (after torch2ms migrate). Its normalization layers are found there. "
                   "Without it they are recognised by their keys (batch norm only).")
@click.option("--model", "model_text", metavar="CLASS[(ARGS)]",
              help="The model class of the checkpoint (default: the class the keys fit). Written as a call with "
                   "its constructor arguments as Python literals ('Net(3, depth=2)', 'Net()'), it builds the "
                   "MindSpore model (runs the source) and maps the keys onto the model's own parameters; "
                   "--verify builds both models with these arguments.")
@click.option("--strip-prefix", metavar="PREFIX", help="Remove PREFIX from keys starting with it ('module.').")
@click.option("--dry-run", is_flag=True, help="Print the mapping; write nothing.")
@click.option("--verify", "verify_models", is_flag=True,
              help="Build the torch model and the migrated MindSpore model, load the weights into each and "
                   "compare their outputs (runs the source; needs --source and --input-shape).")
@click.option("--original", "original_path", type=click.Path(path_type=Path),
              help="With a migrated --source and --verify: the original PyTorch source (file or directory) "
                   "the torch model is built from.")
@click.option("--input-shape", metavar="N,C,...", help="Shape of the random sample input for --verify.")
@click.option("--tolerance", type=float, default=None, help="Largest absolute difference --verify accepts (default 1e-5).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def convert_ckpt(checkpoint, output, source, model_text, strip_prefix, dry_run, verify_models, original_path,
                 input_shape, tolerance, as_json):
    """Convert the PyTorch checkpoint CHECKPOINT (a state dict) to the MindSpore checkpoint OUTPUT.

    Keys of normalization layers are renamed (weight/bias/running_mean/running_var ->
    gamma/beta/moving_mean/moving_variance, BatchNorm3d one level deeper), num_batches_tracked is
    dropped, every other key is copied unchanged. The layers are found in --source (PyTorch or
    migrated), in the built model (--model 'Net(...)'), or by their keys. Exit 0 done, 1 --verify
    found different outputs, 2 error (nothing written)."""
    from .check import ModelSpec

    outcome = Outcome(str(checkpoint), str(output) if output else None, dry_run)
    spec = None
    if model_text is not None:
        try:
            spec = ModelSpec.parse(model_text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--model") from None
    try:
        _check_options(output, source, dry_run, verify_models, input_shape, spec, original_path)
        shape = _shape(input_shape)
        _convert(outcome, checkpoint, output, source, spec, strip_prefix, dry_run, verify_models, original_path,
                 shape, tolerance)
    except CkptError as exc:
        outcome.errors.append(str(exc))
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), indent=2))
    else:
        _print(outcome)
    if outcome.errors:
        sys.exit(EXIT_ERROR)
    if outcome.verdict is not None and not outcome.verdict.ok:
        sys.exit(EXIT_MISMATCH)
    sys.exit(EXIT_OK)


def _check_options(output, source, dry_run, verify_models, input_shape, spec, original_path) -> None:
    if output is None and not dry_run:
        raise click.UsageError("give OUTPUT (the .ckpt to write), or --dry-run")
    if output is not None and output.suffix != ".ckpt":
        # MindSpore's save_checkpoint would append .ckpt to any other name.
        raise click.BadParameter(f"must end in .ckpt: {output}", param_hint="OUTPUT")
    if verify_models and source is None:
        raise click.UsageError("--verify needs --source (the source of the model)")
    if verify_models and input_shape is None:
        raise click.UsageError("--verify needs --input-shape (e.g. 2,3,8,8)")
    if spec is not None and spec.called and source is None:
        raise click.UsageError(f"--model {spec} builds the model from its source: give --source")
    if original_path is not None and not verify_models:
        raise click.UsageError("--original is for --verify (it builds the torch model from it)")


def _convert(outcome: Outcome, checkpoint: Path, output: Path | None, source_path: Path | None,
             spec, strip_prefix: str | None, dry_run: bool, verify_models: bool, original_path: Path | None,
             input_shape, tolerance) -> None:
    from ..ruleset import RuleError, default_rules
    from .frameworks import load_state_dict
    from .keys import PlanError, plan_from_keys, plan_from_source
    from .structure import SourceModel

    try:
        rules = default_rules()
    except RuleError as exc:
        raise CkptError(f"the rules are broken: {exc}") from None
    if checkpoint.is_dir():
        raise CkptError(f"cannot read {checkpoint}: is a directory")
    if output is not None and output.resolve() == checkpoint.resolve():
        raise click.BadParameter("OUTPUT must differ from CHECKPOINT", param_hint="OUTPUT")
    if output is not None and not output.parent.resolve().is_dir():
        raise CkptError(f"cannot write {output}: no directory {output.parent}")
    source = None
    if source_path is not None:
        if not source_path.exists():
            raise CkptError(f"--source: no such file or directory: {source_path}")
        source = SourceModel.read(source_path, rules)
        if not source.files:
            raise CkptError(f"--source: no Python source could be read in {source_path}"
                            + (f" ({source.skipped[0]})" if source.skipped else ""))

    state, outcome.found_in = load_state_dict(checkpoint)
    if strip_prefix:
        stripped = {(k[len(strip_prefix):] if k.startswith(strip_prefix) else k): v for k, v in state.items()}
        if len(stripped) != len(state):
            raise CkptError(f"--strip-prefix {strip_prefix!r} makes two keys the same")
        outcome.stripped = sum(1 for k in state if k.startswith(strip_prefix))
        state = stripped
    outcome.tensors = len(state)
    keys = list(state)

    if source is None:
        plan = plan_from_keys(keys, rules)
    else:
        try:
            plan, not_built = None, ""
            if spec is not None and spec.called:  # the user asks for the model to be built
                plan, not_built = _plan_from_built(keys, state, source, spec, rules)
            if plan is None:
                plan = plan_from_source(keys, source, spec.name if spec else None)
                if not_built:
                    plan.warnings.insert(0, not_built)
        except PlanError as exc:
            raise CkptError(f"--source: {exc}") from None
    outcome.plan = plan
    if plan.mismatches:
        raise CkptError(f"{len(plan.mismatches)} key(s) do not fit the model {plan.model}:\n"
                        + _grouped(plan.mismatches) + _prefix_hint(keys, plan))
    collisions = plan.collisions()
    if collisions:
        new, old = collisions[0]
        raise CkptError(f"{' and '.join(old)} would both be written as {new}")
    if dry_run and not verify_models:
        return

    import tempfile

    from .frameworks import write_checkpoint

    entries = [(m.new, state[m.key], m.layout) for m in plan.moves if m.new is not None]
    # Written next to OUTPUT and renamed over it only when everything succeeded.
    tmp = write_checkpoint(entries, output.parent.resolve() if output else Path(tempfile.gettempdir()))
    try:
        if verify_models:
            outcome.verdict = _verify(plan, spec, state, tmp, input_shape, tolerance, original_path, rules)
        if not dry_run and (outcome.verdict is None or outcome.verdict.ok):
            os.replace(tmp, output)
            outcome.written = True
    finally:
        if tmp.exists():
            tmp.unlink()


def _grouped(mismatches: list[tuple[str, str]], limit: int = 10) -> str:
    """One line per reason, with the keys it applies to."""
    by_why: dict[str, list[str]] = {}
    for key, why in mismatches:
        by_why.setdefault(why, []).append(key)
    lines = []
    for why, keys in list(by_why.items())[:limit]:
        shown = ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")
        lines.append(f"  {shown}: {why}")
    if len(by_why) > limit:
        lines.append(f"  ... and {len(by_why) - limit} more reasons")
    return "\n".join(lines)


def _prefix_hint(keys: list[str], plan) -> str:
    """DataParallel and friends prefix every key; say so when that is what went wrong."""
    first = {k.split(".", 1)[0] for k, _ in plan.mismatches}
    if len(first) == 1 and all(k.startswith(f"{next(iter(first))}.") for k in keys):
        return f"\nevery key starts with {next(iter(first))}.: try --strip-prefix {next(iter(first))}."
    return ""


def _plan_from_built(keys: list[str], state: dict, source, spec, rules):
    """The plan from the built MindSpore model's own parameters, or (None, why it cannot be built)."""
    from .check import CannotVerify, cell_layout_of
    from .keys import find_class, plan_from_cell

    root = find_class(source, spec.name)
    try:
        layout = cell_layout_of(_mindspore_code(root), spec, rules)
    except CannotVerify as exc:
        return None, f"cannot build {spec} ({exc}): the layers are read from the source instead"
    plan = plan_from_cell(keys, {k: tuple(v.shape) for k, v in state.items()}, layout)
    plan.model_class = root
    return plan, ""


def _mindspore_code(root):
    """The MindSpore code of the model class's file: the file itself when it is migrated already,
    else torch2ms's migration of it. Raises CannotVerify when either still uses torch."""
    from ..engine import migrate_source
    from ..model import MigrationError
    from .check import CannotVerify, Code, still_torch, why_not_mindspore

    if root.framework == "mindspore":
        reason, code = still_torch(root.file.analysis.torch_names()), root.file.text
        if reason is None:
            return _project_code(root.file.display, code, migrate=False) or Code(code, root.file.display)
    else:
        project = _project_code(root.file.display, root.file.text, migrate=True)
        if project is not None:
            return project
        try:
            migration = migrate_source(root.file.text, path=root.file.display)
        except MigrationError as exc:
            raise CannotVerify(str(exc)) from None
        reason, code = why_not_mindspore(migration), migration.code
    if reason is not None:
        raise CannotVerify(reason)
    return Code(code, root.file.display)


def _project_code(path: str, text: str, *, migrate: bool):
    """The model's file with the files of its project it imports (None: it imports none), run as
    the packages they are: as they lie, or each migrated with the project's knowledge (as
    ``torch2ms migrate`` does). Raises CannotVerify while a migrated one is not all MindSpore."""
    import ast

    from ..engine import migrate_source
    from ..facts.project import Project
    from ..model import Config, MigrationError
    from ..project_model import needed_files, project_imports
    from .check import CannotVerify, ProjectCode, why_not_mindspore

    project = Project.around([path])
    try:
        imports = project_imports(ast.parse(text), path, project)
    except SyntaxError:
        return None
    if not imports:
        return None
    files = needed_files(path, project)
    if files is None:
        raise CannotVerify(f"{path} imports {', '.join(imports)} from its project but cannot itself be imported by "
                           "a dotted name there")
    if not migrate:
        return ProjectCode(files)
    codes = {}
    for file in files.files:
        where = files.relative(file)
        original = project.text(file)
        if original is None:
            raise CannotVerify(f"cannot read {where}, which the model's file imports")
        try:
            migration = migrate_source(original, path=file, config=Config(project=project))
        except MigrationError as exc:
            raise CannotVerify(f"{where}: {exc}") from None
        reason = why_not_mindspore(migration)
        if reason is not None:
            raise CannotVerify(f"{where}: {reason}")
        codes[file] = migration.code
    return ProjectCode(files, codes)


def _original_code(root, original_path: Path | None, rules):
    """The PyTorch code of the model class's file: the file itself, or for a migrated source the
    file of --original that defines the class."""
    from .check import CannotVerify, Code
    from .structure import SourceModel

    if root.framework == "torch":
        if original_path is not None:
            raise CkptError(f"--original: {root.name} ({root.where}) is PyTorch code already, the torch model is "
                            "built from it; --original is for a migrated --source")
        return _project_code(root.file.display, root.file.text, migrate=False) or Code(root.file.text, root.file.display)
    if original_path is None:
        raise CannotVerify(f"cannot verify: {root.name} ({root.where}) is MindSpore code (a migrated source); "
                           "--verify builds the torch model from the original PyTorch source: give it with "
                           "--original PATH")
    if not original_path.exists():
        raise CkptError(f"--original: no such file or directory: {original_path}")
    found = [c for c in SourceModel.read(original_path, rules).named(root.name) if c.framework == "torch"]
    if len(found) != 1:
        where = f" ({', '.join(c.where for c in found)})" if found else ""
        raise CannotVerify(f"cannot verify: --original {original_path} defines {len(found) or 'no'} PyTorch module "
                           f"class(es) named {root.name!r}{where}; it takes the source {root.file.display} was "
                           "migrated from")
    original = found[0].file
    return _project_code(original.display, original.text, migrate=False) or Code(original.text, original.display)


def _verify(plan, spec, state, ckpt: Path, input_shape, tolerance, original_path: Path | None, rules):
    from .check import DEFAULT_TOLERANCE, CannotVerify, ModelSpec, verify

    root = plan.model_class
    if root is None:
        raise CannotVerify("cannot verify: no model class was matched")
    spec = spec or ModelSpec(root.name)
    original = _original_code(root, original_path, rules)
    try:
        migrated = _mindspore_code(root)
    except CannotVerify as exc:
        raise CannotVerify(f"cannot verify: {exc}") from None
    return verify(original=original, migrated=migrated, spec=spec, torch_state=state, ckpt_path=str(ckpt),
                  input_shape=input_shape, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)


# -- the text report -------------------------------------------------------------------------------


def _print(outcome: Outcome) -> None:
    plan = outcome.plan
    if outcome.tensors:
        stripped = f", prefix stripped from {outcome.stripped}" if outcome.stripped else ""
        click.echo(f"{outcome.checkpoint}: {outcome.tensors} tensors ({outcome.found_in}{stripped})")
    if plan is not None:
        if plan.built:
            click.echo(f"layers from the built model: keys mapped onto the parameters of {plan.model}")
        elif plan.model:
            migrated = plan.model_class is not None and plan.model_class.framework == "mindspore"
            click.echo(f"layers from the source: keys matched against {plan.model}"
                       + (", a MindSpore Cell (migrated source)" if migrated else ""))
        for note in plan.notes:
            click.echo(f"info: {note}")
        for m in plan.moves if not plan.mismatches else ():
            if m.renamed or m.reshaped:
                what = m.layer or "the name MindSpore gives it"
                reshaped = f"; {m.layout}" if m.reshaped else ""
                click.echo(f"  {m.key} -> {m.new}  ({what}{', by its keys' if m.found_by == 'keys' else ''}{reshaped})")
            elif m.new is None:
                click.echo(f"  {m.key}: dropped ({m.why})")
        for warning in plan.warnings:
            click.echo(f"warning: {warning}")
        if not plan.mismatches:
            reshaped = f"{len(plan.reshaped)} reshaped, " if plan.reshaped else ""
            click.echo(f"{len(plan.renamed)} renamed, {reshaped}{len(plan.dropped)} dropped, "
                       f"{len(plan.unchanged)} copied unchanged")
    verdict = outcome.verdict
    if verdict is not None:
        for name in verdict.kept_initial:
            click.echo(f"info: {name} is not in the torch checkpoint: it keeps its initial value in MindSpore")
        if verdict.problem:
            click.echo(f"verify: {verdict.model}: FAILED: {verdict.problem}")
        else:
            result = "outputs match" if verdict.ok else "FAILED: the outputs differ"
            click.echo(f"verify: {verdict.model} on a sample input of shape {verdict.input_shape}: largest "
                       f"absolute difference {verdict.max_abs_error:.3g} (tolerance {verdict.tolerance:g}): {result}")
    for error in outcome.errors:
        click.echo(f"error: {error}", err=True)
    if outcome.written:
        click.echo(f"wrote {outcome.output}")
    elif outcome.dry_run and not outcome.errors:
        click.echo("dry run: nothing written")
    elif outcome.output and (outcome.errors or (verdict is not None and not verdict.ok)):
        click.echo(f"{outcome.output} not written", err=True)
