"""The language server end to end: a real LSP client (pytest-lsp) drives ``torch2ms lsp`` over stdio,
with the capabilities of real editors (VS Code: UTF-16 positions, lazily resolved code actions,
versioned edits; Emacs: UTF-32, edits up front; Neovim: UTF-8).

The client applies every edit itself, with its own position arithmetic, and the results are compared
with the core (``migrate_source``)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pygls.protocol import default_converter  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features  # noqa: E402

from codemod.engine import migrate_source  # noqa: E402
from codemod.model import Config  # noqa: E402

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVER = [sys.executable, "-m", "codemod.cli", "lsp"]
CORE = Config(markers=False)  # the editor shows findings as diagnostics, not as comments in the file
TIMEOUT = 30


def fix_all(text: str) -> str:
    return migrate_source(text, config=CORE).code


# -- documents ------------------------------------------------------------------------------------

SEED = """\
from torch import nn, tensor
import numpy as np

m = nn.BatchNorm2d(num_features=3, momentum=0.1)
input_py = tensor(np.ones((1, 3, 2, 2), dtype=np.float32))
output = m(input_py)
print(output.detach().numpy())
"""

# The bundled example: torch stays in use for what torch2ms does not convert (Conv2d, relu).
RESNET = (Path(__file__).resolve().parent.parent / "examples" / "resnet_block.py").read_text(encoding="utf-8")

WHOLE_MODULE = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, momentum=0.05), nn.ReLU())
        self.norm = nn.LayerNorm(8, eps=1e-6)
        self.gn = nn.GroupNorm(2, 8)

    def forward(self, x):
        return self.gn(self.norm(self.features(x)))


net = Net()
net.eval()
bn = nn.BatchNorm1d(4, track_running_stats=False)
out = bn(torch.zeros(2, 4))
print(bn.running_mean, bn.weight)
"""

FUNCTIONAL = """\
import torch.nn as nn
import torch.nn.functional as F

bn_a = nn.BatchNorm2d(3)
bn_b = nn.BatchNorm2d(3)
bn_a(x); bn_b(x)
bn_a.train()
y = F.batch_norm(x, bn_a.running_mean, bn_a.running_var, bn_a.weight, bn_a.bias, True, 0.1, 1e-5)
"""

# Every use of `nn` converts: the import swaps and the constructor keeps its text (a site with no
# edit of its own).
IMPORT_ONLY = """\
import torch.nn as nn

bn = nn.BatchNorm3d(2)
bn.eval()
mean = bn.running_mean
gamma = bn.weight
"""

PARTIAL = """\
import functools

import torch.nn as nn

norm = functools.partial(nn.BatchNorm2d, momentum=0.01, eps=1e-3)
a = norm(64)
b = norm(32, momentum=0.2)
"""

# One site cannot be converted (an error finding, no quick-fix), the others can.
MIXED = """\
from torch import nn

cma = nn.BatchNorm2d(3, momentum=None)
ema = nn.BatchNorm2d(3, momentum=0.3)
ema(x)
"""

# Non-BMP (two UTF-16 units, four UTF-8 bytes) and CJK (one unit, three bytes) before the site.
WIDE = 'import torch.nn as nn\n\nx = "🚀 中文"; bn = nn.BatchNorm2d(3, momentum=0.1)  # 注释 🚀\nbn(x)\n'


# -- the client -----------------------------------------------------------------------------------


def _recording_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics (with its version), in order."""
    client = LanguageClient(converter_factory=default_converter)
    client.published = []

    def on_publish(ls: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        ls.diagnostics[params.uri] = params.diagnostics
        ls.published.append(params)

    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: on_publish})
    return client


CONFIG = ClientServerConfig(server_command=SERVER, client_factory=_recording_client)


async def _session(client: LanguageClient, editor: str):
    result = await client.initialize_session(types.InitializeParams(capabilities=client_capabilities(editor)))
    client.encoding = str(result.capabilities.position_encoding or "utf-16")
    yield
    await client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def vscode(lsp_client: LanguageClient):
    async for _ in _session(lsp_client, "visual-studio-code"):
        yield


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def emacs(lsp_client: LanguageClient):
    async for _ in _session(lsp_client, "emacs"):
        yield


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def neovim(lsp_client: LanguageClient):
    async for _ in _session(lsp_client, "neovim"):
        yield


# Position arithmetic of the client side, written independently of the server's.

def _units(text: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


def _offset(text: str, position: types.Position, encoding: str) -> int:
    lines = re.split(r"(?<=\n)|(?<=\r)(?!\n)", text)  # LSP's line breaks: \n, \r\n, \r
    start = sum(len(line) for line in lines[: position.line])
    line = lines[position.line] if position.line < len(lines) else ""
    for i in range(len(line) + 1):
        if _units(line[:i], encoding) >= position.character:
            return start + i
    return start + len(line)


def _range_text(text: str, at: types.Range, encoding: str) -> str:
    return text[_offset(text, at.start, encoding):_offset(text, at.end, encoding)]


def _apply(text: str, edits, encoding: str) -> str:
    spans = sorted(((_offset(text, e.range.start, encoding), _offset(text, e.range.end, encoding), e.new_text)
                    for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


class Document:
    """One open document, as an editor holds it."""

    _names = iter(range(10**6))

    def __init__(self, client: LanguageClient, text: str):
        self.client = client
        self.uri = f"file:///work/doc{next(self._names)}.py"
        self.text = text
        self.version = 1

    @property
    def encoding(self) -> str:
        return self.client.encoding

    @property
    def identifier(self) -> types.TextDocumentIdentifier:
        return types.TextDocumentIdentifier(uri=self.uri)

    async def open(self) -> list[types.Diagnostic]:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=self.uri, language_id="python", version=self.version, text=self.text)))
        return await self.diagnostics()

    def change(self, text: str, *, save: bool = False) -> None:
        self.version += 1
        self.text = text
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        if save:
            self.client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=self.identifier))

    async def diagnostics(self, version: int | None = None) -> list[types.Diagnostic]:
        """The diagnostics published for a version of the document (default: the current one)."""
        version = self.version if version is None else version

        async def published():
            while True:
                for p in self.client.published:
                    if p.uri == self.uri and p.version == version:
                        return list(p.diagnostics)
                await asyncio.sleep(0.005)

        return await asyncio.wait_for(published(), TIMEOUT)

    def published_versions(self) -> list[int]:
        return [p.version for p in self.client.published if p.uri == self.uri]

    async def actions(self, at: types.Range, diagnostics=(), only=None) -> list[types.CodeAction]:
        return list(await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=self.identifier, range=at,
            context=types.CodeActionContext(diagnostics=list(diagnostics), only=only))) or [])

    async def quick_fix(self, diagnostic: types.Diagnostic) -> types.CodeAction:
        """The quick-fix the editor offers for a diagnostic (resolved, as the editor does on choosing)."""
        actions = await self.actions(diagnostic.range, [diagnostic], only=[types.CodeActionKind.QuickFix])
        mine = [a for a in actions if any((d.code, d.range, d.message) == (diagnostic.code, diagnostic.range, diagnostic.message)
                                          for d in a.diagnostics or [])]
        assert len(mine) == 1, (diagnostic, actions)
        action = mine[0]
        if action.edit is None:
            action = await self.client.code_action_resolve_async(action)
        return action

    def apply(self, action: types.CodeAction, *, save: bool = True) -> str:
        """Apply an action's workspace edit to the text, and tell the server (as the editor does)."""
        edit = action.edit
        assert edit is not None, action
        if edit.document_changes:
            (change,) = edit.document_changes
            assert change.text_document.uri == self.uri
            assert change.text_document.version == self.version, "an edit for another version"
            edits = change.edits
        else:
            edits = edit.changes[self.uri]
        self.change(_apply(self.text, edits, self.encoding), save=save)
        return self.text


def _sites(diagnostics) -> list[types.Diagnostic]:
    return [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Hint and d.data]


# -- diagnostics ----------------------------------------------------------------------------------


async def test_open_publishes_a_diagnostic_per_finding_and_per_convertible_site(vscode):
    doc = Document(vscode, SEED)
    diagnostics = await doc.open()
    shown = {(d.code, d.severity, _range_text(SEED, d.range, doc.encoding)) for d in diagnostics}
    assert shown == {
        ("construct", types.DiagnosticSeverity.Hint, "nn.BatchNorm2d(num_features=3, momentum=0.1)"),
        ("set_train", types.DiagnosticSeverity.Hint, "m = nn.BatchNorm2d(num_features=3, momentum=0.1)"),
        ("MD001", types.DiagnosticSeverity.Information, "m = nn.BatchNorm2d(num_features=3, momentum=0.1)"),
        # torch's tensor() and the tensor method detach() convert too (issue 15's function and method rules)
        ("function", types.DiagnosticSeverity.Hint, "tensor(np.ones((1, 3, 2, 2), dtype=np.float32))"),
        ("method", types.DiagnosticSeverity.Hint, "detach()"),
    }
    by_code = {d.code: d for d in diagnostics}
    assert "momentum=0.9" in by_code["construct"].message
    assert "m.set_train()" in by_code["set_train"].message
    assert all(d.source == "torch2ms" for d in diagnostics)


async def test_error_findings_are_errors_without_a_quick_fix(vscode):
    doc = Document(vscode, MIXED)
    diagnostics = await doc.open()
    (error,) = [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Error]
    assert error.code == "BN003"
    assert error.range.start.line == 2 and _range_text(MIXED, error.range, doc.encoding) == "None"
    assert await doc.actions(error.range, [error], only=[types.CodeActionKind.QuickFix]) == []
    # The convertible constructor next to it has its fix; the error site stays as it is.
    (construct,) = [d for d in _sites(diagnostics) if d.code == "construct"]
    fixed = doc.apply(await doc.quick_fix(construct))
    assert fixed == (
        "from torch import nn\nfrom mindspore import nn as ms_nn\n\n"
        "cma = nn.BatchNorm2d(3, momentum=None)\n"
        "ema = ms_nn.BatchNorm2d(3, momentum=0.7)\nema.set_train()\nema(x)\n")
    assert fixed == fix_all(MIXED)


async def _check_wide_characters(client: LanguageClient) -> None:
    doc = Document(client, WIDE)
    diagnostics = await doc.open()
    (construct,) = [d for d in diagnostics if d.code == "construct"]
    assert _range_text(WIDE, construct.range, doc.encoding) == "nn.BatchNorm2d(3, momentum=0.1)"
    prefix = 'x = "🚀 中文"; bn = '
    assert construct.range.start.character == _units(prefix, client.encoding)
    fixed = doc.apply(await doc.quick_fix(construct))
    assert fixed == fix_all(WIDE)
    assert 'x = "🚀 中文"; bn = nn.BatchNorm2d(3, momentum=0.9); bn.set_train()  # 注释 🚀\n' in fixed


async def test_utf16_positions_after_wide_characters(vscode):
    await _check_wide_characters(vscode)


async def test_utf32_positions_after_wide_characters(emacs):
    await _check_wide_characters(emacs)


async def test_utf8_positions_after_wide_characters(neovim):
    await _check_wide_characters(neovim)


async def test_the_three_editors_negotiate_their_encodings(vscode, emacs, neovim):
    assert (vscode.encoding, emacs.encoding, neovim.encoding) == ("utf-16", "utf-32", "utf-8")


# -- quick-fixes and fix-all ----------------------------------------------------------------------


async def test_quick_fix_converts_its_site_and_what_only_it_reveals(vscode):
    text = "import torch\nfrom torch import nn\n\nbn = nn.BatchNorm2d(3, momentum=0.1)\nln = nn.LayerNorm(8)\ny = bn(x)\n"
    doc = Document(vscode, text)
    diagnostics = await doc.open()
    (construct,) = [d for d in diagnostics if d.code == "construct" and "BatchNorm2d" in d.message]
    action = await doc.quick_fix(construct)
    assert action.kind == types.CodeActionKind.QuickFix
    # The set_train site is only detectable while bn is torch: the fix takes it along. The LayerNorm
    # stays torch, so `nn` stays and MindSpore's comes in under another name.
    assert doc.apply(action) == (
        "import torch\nfrom torch import nn\nfrom mindspore import nn as ms_nn\n\n"
        "bn = ms_nn.BatchNorm2d(3, momentum=0.9)\nbn.set_train()\nln = nn.LayerNorm(8)\n"
        "y = bn(x)\n")
    remaining = _sites(await doc.diagnostics())
    assert [d.code for d in remaining] == ["construct"]
    assert _range_text(doc.text, remaining[0].range, doc.encoding) == "nn.LayerNorm(8)"


async def test_fix_all_is_migrate_source(emacs):
    doc = Document(emacs, RESNET)
    await doc.open()
    whole = types.Range(types.Position(0, 0), types.Position(0, 0))
    actions = await doc.actions(whole, only=["source.fixAll"])
    assert [a.kind for a in actions] == ["source.fixAll.torch2ms"]
    assert doc.apply(actions[0]) == fix_all(RESNET)
    assert _sites(await doc.diagnostics()) == []
    # Nothing left to fix: no action.
    assert await doc.actions(whole, only=["source"]) == []


async def test_clients_without_resolve_get_edits_up_front(emacs):
    doc = Document(emacs, SEED)
    diagnostics = await doc.open()
    (construct,) = [d for d in diagnostics if d.code == "construct"]
    actions = await doc.actions(construct.range, [construct], only=[types.CodeActionKind.QuickFix])
    assert actions and all(a.edit is not None for a in actions)


ONE_BY_ONE = {
    "seed": SEED, "resnet": RESNET, "whole_module": WHOLE_MODULE, "functional": FUNCTIONAL,
    "import_only": IMPORT_ONLY, "partial": PARTIAL, "mixed": MIXED, "wide": WIDE,
}


async def test_a_finding_inside_a_converted_call_offers_the_calls_fix(vscode):
    text = 'import torch.nn as nn\n\nbn = nn.BatchNorm2d(8, device="cuda", momentum=0.2)\nbn.eval()\n'
    doc = Document(vscode, text)
    diagnostics = await doc.open()
    (device,) = [d for d in diagnostics if d.code == "TM001"]
    assert device.severity == types.DiagnosticSeverity.Information
    assert _range_text(text, device.range, doc.encoding) == '"cuda"'
    assert doc.apply(await doc.quick_fix(device)) == (
        "import mindspore.nn as nn\n\nbn = nn.BatchNorm2d(8, momentum=0.8)\nbn.set_train(False)\n")


@pytest.mark.parametrize("order", ["first", "last"])
@pytest.mark.parametrize("name", sorted(ONE_BY_ONE))
async def test_every_quick_fix_one_by_one_ends_where_fix_all_does(vscode, name, order):
    original = ONE_BY_ONE[name]
    doc = Document(vscode, original)
    diagnostics = await doc.open()
    steps = 0
    while _sites(diagnostics):
        site = _sites(diagnostics)[0 if order == "first" else -1]
        before = doc.text
        doc.apply(await doc.quick_fix(site))
        assert doc.text != before, f"the quick-fix for {site.message!r} changed nothing"
        diagnostics = await doc.diagnostics()
        steps += 1
        assert steps < 50
    assert steps >= 1
    one_by_one = doc.text
    doc.change(original, save=True)
    await doc.diagnostics()
    whole = types.Range(types.Position(0, 0), types.Position(len(original.splitlines()), 0))
    (fix_all_action,) = await doc.actions(whole, only=["source.fixAll.torch2ms"])
    assert one_by_one == doc.apply(fix_all_action) == fix_all(original)


# -- editing --------------------------------------------------------------------------------------


async def test_a_document_that_does_not_parse_loses_its_diagnostics_until_it_parses(vscode):
    doc = Document(vscode, SEED)
    assert _sites(await doc.open())
    broken = SEED.replace("print(output.detach().numpy())", "print(output.detach(.numpy())")
    doc.change(broken, save=True)
    (hint,) = await doc.diagnostics()
    assert hint.severity == types.DiagnosticSeverity.Hint and hint.code == "not-analysed"
    assert "syntax error" in hint.message and hint.range.start.line == 6
    assert await doc.actions(hint.range, [hint]) == []
    doc.change(SEED, save=True)
    assert _sites(await doc.diagnostics())


async def test_a_document_that_never_parses_does_not_break_the_server(vscode):
    doc = Document(vscode, "import torch.nn as nn\nprint 'python 2'\nbn = nn.BatchNorm2d(3)\n")
    (hint,) = await doc.open()
    assert hint.code == "not-analysed" and hint.range.start.line == 1
    after = Document(vscode, SEED)
    assert _sites(await after.open())


async def test_changes_are_debounced_and_applied_incrementally(vscode):
    doc = Document(vscode, WIDE)
    await doc.open()
    # Type "25" after "momentum=0.1" on the line with the emoji, one character per change, as an
    # editor does: incremental changes whose positions are UTF-16 units.
    line = WIDE.splitlines()[2]
    column = _units(line[: line.index("0.1)") + 3], "utf-16")
    for i, char in enumerate("25"):
        doc.version += 1
        at = types.Position(2, column + i)
        vscode.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(at, at), text=char)]))
    doc.text = WIDE.replace("momentum=0.1)", "momentum=0.125)")
    diagnostics = await doc.diagnostics()
    (construct,) = [d for d in diagnostics if d.code == "construct"]
    assert "momentum=0.875" in construct.message
    assert _range_text(doc.text, construct.range, "utf-16") == "nn.BatchNorm2d(3, momentum=0.125)"
    # Only the last version was analysed and published (none for the version in between).
    assert doc.published_versions() == [1, 3]


async def test_closing_a_document_clears_its_diagnostics(vscode):
    doc = Document(vscode, SEED)
    await doc.open()
    vscode.text_document_did_close(types.DidCloseTextDocumentParams(text_document=doc.identifier))

    async def cleared():
        while vscode.published[-1].uri != doc.uri or vscode.published[-1].diagnostics:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(cleared(), TIMEOUT)
