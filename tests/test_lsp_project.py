"""The language server sees the whole workspace (issue 16): a document that uses a model defined in
another file of the workspace gets the same diagnostics and fix-all as ``torch2ms migrate`` of the
tree gives, and they follow changes to the other files (on disk, or saved from the editor)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from tests.test_lsp import TIMEOUT, _apply, _recording_client  # noqa: E402
from tests.test_projects import PROJECTS, expected_tree  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = [sys.executable, "-m", "codemod.cli", "lsp"]
CONFIG = ClientServerConfig(server_command=SERVER, client_factory=_recording_client)
WORKSPACE = Path(tempfile.mkdtemp(prefix="torch2ms-lsp-")) / "workspace"  # removed after the module


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def editor(lsp_client: LanguageClient):
    shutil.copytree(PROJECTS / "layout" / "in", WORKSPACE)
    result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        workspace_folders=[types.WorkspaceFolder(uri=WORKSPACE.as_uri(), name="workspace")]))
    lsp_client.encoding = str(result.capabilities.position_encoding or "utf-16")
    yield
    await lsp_client.shutdown_session()
    shutil.rmtree(WORKSPACE.parent, ignore_errors=True)


async def published(client: LanguageClient, uri: str, version: int, after: int = 0) -> list[types.Diagnostic]:
    async def wait():
        while True:
            for p in client.published[after:]:
                if p.uri == uri and p.version == version:
                    return list(p.diagnostics)
            await asyncio.sleep(0.005)

    return await asyncio.wait_for(wait(), TIMEOUT)


async def fix_all(client: LanguageClient, uri: str, text: str) -> str:
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(0, 0), types.Position(0, 0)),
        context=types.CodeActionContext(diagnostics=[], only=["source.fixAll.torch2ms"])))
    if not actions:
        return text
    (action,) = actions
    (change,) = action.edit.document_changes
    return _apply(text, change.edits, client.encoding)


async def test_the_workspace_is_read_in_the_background(editor):
    async def read():
        while not any("read the project" in m.message for m in editor.log_messages):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(read(), TIMEOUT)


async def test_a_user_of_a_workspace_model_gets_the_project_migration(editor):
    uri = (WORKSPACE / "train.py").as_uri()
    text = (WORKSPACE / "train.py").read_text()
    editor.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    diagnostics = await published(editor, uri, 1)
    assert {"MD001", "set_train", "mode", "attribute"} <= {d.code for d in diagnostics}
    assert await fix_all(editor, uri, text) == expected_tree("layout")["train.py"].decode()


async def test_diagnostics_follow_a_change_of_the_model_on_disk(editor):
    uri = (WORKSPACE / "train.py").as_uri()
    models = WORKSPACE / "models.py"
    # Net with a layer the rules do not map and no normalization layer: models.py is not migrated,
    # Net stays a torch module. (A file whose only torch is module classes is migrated.)
    models.write_text("import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
                      "        super().__init__()\n        self.act = nn.Softplus()\n\n"
                      "    def forward(self, x):\n        return self.act(x)\n")
    mark = len(editor.published)
    editor.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=models.as_uri(), type=types.FileChangeType.Changed)]))
    diagnostics = await published(editor, uri, 1, after=mark)
    assert not {"MD001", "set_train", "mode", "attribute"} & {d.code for d in diagnostics}
    shutil.copy(PROJECTS / "layout" / "in" / "models.py", models)
    mark = len(editor.published)
    editor.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=models.as_uri(), type=types.FileChangeType.Changed)]))
    diagnostics = await published(editor, uri, 1, after=mark)
    assert "MD001" in {d.code for d in diagnostics}


async def test_diagnostics_follow_the_model_edited_in_the_editor(editor):
    train = (WORKSPACE / "train.py").as_uri()
    uri = (WORKSPACE / "models.py").as_uri()
    text = (WORKSPACE / "models.py").read_text()
    editor.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    await published(editor, uri, 1)
    # The batch norm removed in the buffer and saved: train.py's Net is no longer migrated.
    edited = text.replace("self.bn = nn.BatchNorm2d(4, momentum=0.2)", "self.bn = nn.Softplus()")
    mark = len(editor.published)
    editor.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=edited)]))
    editor.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    diagnostics = await published(editor, train, 1, after=mark)
    assert "MD001" not in {d.code for d in diagnostics}
