"""``torch2ms lsp``: a language server (pygls, stdio) with diagnostics and quick-fixes.

pygls is imported only when the server starts, so every other command works without the ``lsp`` extra.
"""

from __future__ import annotations

import click


@click.command()
@click.option("--mindspore-version", metavar="VERSION",
              help="Target MindSpore version (default: the installed one, else the newest the rules know).")
@click.option("--debounce", type=click.FloatRange(min=0), default=150, show_default=True, metavar="MS",
              help="Milliseconds of quiet after a change before the document is analysed again.")
def lsp(mindspore_version, debounce):
    """Run the language server on stdin/stdout (for editors; see README "Editors")."""
    try:
        from .server import create_server
    except ImportError as exc:
        raise click.ClickException(f"the language server needs pygls ({exc}): pip install 'torch2ms[lsp]'") from None
    from ..cli import installed_mindspore, validated_version
    from ..model import Config

    validated_version(mindspore_version, "--mindspore-version")
    config = Config(markers=False, mindspore_version=mindspore_version or installed_mindspore())
    create_server(config, debounce / 1000).start_io()
