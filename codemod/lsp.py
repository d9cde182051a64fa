"""``torch2ms lsp``: a language server (pygls, stdio) with diagnostics and quick-fixes."""

from __future__ import annotations

import click


@click.command()
def lsp():
    """Run the language server on stdio (not implemented yet)."""
    raise click.ClickException("lsp is not implemented yet")
