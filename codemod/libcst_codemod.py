"""torch2ms as a LibCST codemod command, so it composes with the codemods a team already runs::

    python -m libcst.tool codemod --no-format -x codemod.libcst_codemod.Migrate src/

It writes the files ``torch2ms migrate`` writes (each file on its own: no project index, no
notebooks); findings are LibCST warnings. ``--no-format``: torch2ms never reformats code.
"""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext, SkipFile

from .engine import plan_source
from .model import Config, MigrationError


class Migrate(CodemodCommand):
    DESCRIPTION = "Migrate PyTorch code to MindSpore (torch2ms): what `torch2ms migrate` writes."

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--no-markers", action="store_true",
                                help="no '# torch2ms: CODE ...' comments on the lines left unconverted")
        arg_parser.add_argument("--mindspore-version", default=None, help="the MindSpore the code targets")
        arg_parser.add_argument("--select", action="append", default=[], metavar="SELECTOR",
                                help="rules to run, as `torch2ms migrate --select` (repeat or separate by commas)")
        arg_parser.add_argument("--ignore", action="append", default=[], metavar="SELECTOR",
                                help="rules to leave out, as `torch2ms migrate --ignore`")

    def __init__(self, context: CodemodContext, no_markers: bool = False, mindspore_version: str | None = None,
                 select: list[str] | None = None, ignore: list[str] | None = None):
        super().__init__(context)
        self.config = Config(markers=not no_markers, mindspore_version=mindspore_version,
                             select=_selectors(select), ignore=_selectors(ignore))

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        try:
            planned = plan_source(tree.code, path=self.context.filename, config=self.config)
        except MigrationError as exc:
            raise SkipFile(str(exc)) from None
        for finding in planned.findings:
            self.warn(finding.format())
        if not planned.plan.changes:
            raise SkipFile("no torch code to migrate")
        return planned.rewrite(tree)


def _selectors(given: list[str] | None) -> tuple[str, ...]:
    return tuple(part.strip() for item in given or () for part in item.split(",") if part.strip())
