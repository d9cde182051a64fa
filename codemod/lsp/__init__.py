"""``torch2ms lsp``: a language server (pygls, stdio) with diagnostics and quick-fixes.

pygls is imported only when the server starts, so every other command works without the ``lsp`` extra.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..options import selection_options


@click.command()
@click.option("--mindspore-version", metavar="VERSION",
              help="Target MindSpore version (default: the installed one, else the newest the rules know).")
@click.option("--debounce", type=click.FloatRange(min=0), default=150, show_default=True, metavar="MS",
              help="Milliseconds of quiet after a change before the document is analysed again.")
@selection_options
def lsp(mindspore_version, debounce, select, extend_select, ignore):
    """Run the language server on stdin/stdout (for editors; see README "Editors")."""
    try:
        from .server import create_server
    except ImportError as exc:
        raise click.ClickException(f"the language server needs pygls ({exc}): pip install 'torch2ms[lsp]'") from None
    from ..options import config_from, project_config, selection

    # The selection of the workspace's [tool.torch2ms] (the directory the editor starts the server in).
    config = config_from(False, mindspore_version,
                         *selection(select, extend_select, ignore, project_config(Path.cwd())))
    create_server(config, debounce / 1000).start_io()
