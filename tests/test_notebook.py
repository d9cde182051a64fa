"""Jupyter notebooks: code cells are migrated like a module; IPython lines, other cells, outputs,
metadata and the JSON layout are left exactly as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import MigrationError, migrate_source
from codemod.cli import main
from codemod.notebook import migrate_notebook


def code(source, outputs=None, count=None):
    return {"cell_type": "code", "execution_count": count, "metadata": {"tags": ["keep"]},
            "outputs": outputs or [], "source": source}


def notebook(*cells, language="python", **dump):
    nb = {"cells": list(cells), "metadata": {"kernelspec": {"display_name": "Python 3", "language": language,
                                                            "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    dump.setdefault("indent", 1)
    dump.setdefault("ensure_ascii", False)
    return json.dumps(nb, **dump) + "\n"


def lines(text):
    return text.splitlines(keepends=True)


IMPORTS = code(lines("%matplotlib inline\nimport torch\nfrom torch import nn\n!pip install -q timm"), count=1,
               outputs=[{"output_type": "stream", "name": "stdout", "text": ["Requirement already satisfied\n"]}])
MODEL = code(lines("bn = nn.BatchNorm2d(3, momentum=0.1)  # café\nfiles = !ls\nbn?\ntorch.manual_seed(0)"),
             count=2, outputs=[{"output_type": "execute_result", "data": {"text/plain": ["tensor(1.)"]},
                                "execution_count": 2, "metadata": {}}])
MARKDOWN = {"cell_type": "markdown", "metadata": {}, "source": ["# BatchNorm2d(3, momentum=0.1) stays prose"]}
BASH = code(lines("%%bash\necho nn.BatchNorm2d(3, momentum=0.1)\n"))
TIMED = code(lines("%%time\nbn2 = nn.BatchNorm2d(4, momentum=0.01)\n"))


def sources(text):
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in json.loads(text)["cells"]]


def without_sources(text):
    data = json.loads(text)
    for c in data["cells"]:
        c.pop("source")
    return data


def test_code_cells_are_migrated_across_cells_and_ipython_lines_survive():
    text = notebook(IMPORTS, MARKDOWN, MODEL, BASH, TIMED)
    result = migrate_notebook(text, path="nb.ipynb")
    assert result.changed and not result.problems
    new = sources(result.code)
    # The import in cell 1 serves cells 3 and 5: one namespace, as in the kernel.
    assert new[0] == "%matplotlib inline\nimport torch\nfrom mindspore import nn\n!pip install -q timm"
    assert new[2].startswith("bn = nn.BatchNorm2d(3, momentum=0.9)  # café\n")
    assert "files = !ls\nbn?\n" in new[2]
    assert new[1] == sources(text)[1]  # markdown
    assert new[3] == sources(text)[3]  # %%bash is not Python
    assert new[4] == "%%time\nbn2 = nn.BatchNorm2d(4, momentum=0.99)\n"
    # Outputs, metadata, execution counts: untouched.
    assert without_sources(result.code) == without_sources(text)


def test_only_the_changed_source_values_change_in_the_file():
    text = notebook(IMPORTS, MARKDOWN, MODEL)
    result = migrate_notebook(text, path="nb.ipynb")
    old, new = text.splitlines(), result.code.splitlines()
    changed_old = [l for l in old if l not in new]
    changed_new = [l for l in new if l not in old]
    assert changed_old == ['    "from torch import nn\\n",', '    "bn = nn.BatchNorm2d(3, momentum=0.1)  # café\\n",']
    assert changed_new[:2] == ['    "from mindspore import nn\\n",', '    "bn = nn.BatchNorm2d(3, momentum=0.9)  # café\\n",']
    assert result.code.endswith("}\n")


@pytest.mark.parametrize("dump", [dict(indent=2), dict(indent=1, ensure_ascii=True), dict(indent=None),
                                  dict(indent=1, sort_keys=True)])
def test_the_notebook_s_own_json_style_is_kept(dump):
    text = notebook(IMPORTS, MODEL, **dump)
    result = migrate_notebook(text, path="nb.ipynb")
    expected = json.loads(text)
    for cell, new in zip(expected["cells"], sources(result.code)):
        cell["source"] = lines(new)
    # Re-dumping the expected document in the same style gives exactly the migrated file.
    assert result.code == json.dumps(expected, **{"ensure_ascii": False, **dump}) + "\n"


def test_a_source_stored_as_one_string_stays_one_string():
    text = notebook(code("import torch.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.1)\n"))
    result = migrate_notebook(text, path="nb.ipynb")
    assert json.loads(result.code)["cells"][0]["source"] == "import mindspore.nn as nn\nbn = nn.BatchNorm2d(3, momentum=0.9)\n"


def test_a_notebook_without_changes_is_byte_identical():
    for text in (notebook(MARKDOWN, code(["x = 1\n"])), notebook(BASH), notebook(code(lines("import torch.nn as nn\n")))):
        result = migrate_notebook(text, path="nb.ipynb")
        assert not result.changed and result.code == text


def test_findings_point_at_cell_and_line():
    text = notebook(IMPORTS, MARKDOWN, code(lines("x = 1\nbn = nn.BatchNorm2d(3, momentum=None)\n")))
    result = migrate_notebook(text, path="nb.ipynb")
    (finding,) = [f for f in result.findings if f.code == "BN003"]
    assert (finding.cell, finding.line, finding.column) == (3, 2, finding.column)
    assert finding.format().startswith("nb.ipynb:cell_3:2:")
    stored = text.splitlines()[finding.file_line - 1]
    assert "momentum=None" in stored  # the line of the .ipynb file that holds that source line


def test_a_cell_that_is_not_python_is_left_and_reported_the_others_migrated():
    broken = code(lines("def f(:\n    return nn.BatchNorm2d(3)\n"))
    text = notebook(IMPORTS, broken, MODEL)
    result = migrate_notebook(text, path="nb.ipynb")
    assert result.changed
    assert result.problems == ["cell 2: not Python (1:7: syntax error: invalid syntax (not Python 3 source?)): left as it is"]
    assert sources(result.code)[1] == sources(text)[1]
    assert "momentum=0.9" in sources(result.code)[2]


def test_a_notebook_of_another_language_is_left_alone():
    text = notebook(code(["nn.BatchNorm2d(3, momentum=0.1)\n"]), language="R")
    assert migrate_notebook(text, path="nb.ipynb").code == text


@pytest.mark.parametrize("text", ['{"cells": [{"source": "nn.BatchNorm2d(3)"', '{"worksheets": [], "nbformat": 3, "BatchNorm2d": 1}'])
def test_a_file_that_is_not_a_notebook_raises(text):
    with pytest.raises(MigrationError):
        migrate_notebook(text, path="nb.ipynb")


def test_migrating_twice_changes_nothing_more():
    once = migrate_notebook(notebook(IMPORTS, MARKDOWN, MODEL, BASH, TIMED), path="nb.ipynb").code
    twice = migrate_notebook(once, path="nb.ipynb")
    assert not twice.changed and twice.code == once


def test_the_cli_migrates_notebooks_in_a_tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs/train.ipynb").write_text(notebook(IMPORTS, MODEL))
    (tmp_path / "nbs/broken.ipynb").write_text('{"cells": [{"source": "nn.BatchNorm2d(')
    untouched = notebook(MARKDOWN)
    (tmp_path / "nbs/notes.ipynb").write_text(untouched)
    check = CliRunner().invoke(main, ["migrate", "--diff", "nbs"], catch_exceptions=False)
    assert check.exit_code == 2  # broken.ipynb
    assert '+    "from mindspore import nn\\n",' in check.stdout
    assert "nbs/broken.ipynb: error: 1:1: not a notebook" in check.stderr
    result = CliRunner().invoke(main, ["migrate", "nbs"], catch_exceptions=False)
    assert "3 files scanned, 1 changed" in result.stderr
    assert sources((tmp_path / "nbs/train.ipynb").read_text())[1].startswith("bn = nn.BatchNorm2d(3, momentum=0.9)")
    assert (tmp_path / "nbs/notes.ipynb").read_text() == untouched


def test_the_cli_prints_notebook_findings_with_the_cell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("nb.ipynb").write_text(notebook(IMPORTS, code(lines("bn = nn.BatchNorm2d(3, momentum=None)\n"))))
    result = CliRunner().invoke(main, ["migrate", "--check", "nb.ipynb"], catch_exceptions=False)
    assert "nb.ipynb:cell_2:1:" in result.stderr and "BN003 [error]" in result.stderr


def test_cells_with_windows_line_endings_keep_them_and_their_magics():
    text = notebook(code(["%matplotlib inline\r\n", "import torch.nn as nn\r\n", "bn = nn.BatchNorm2d(3, momentum=0.1)\r\n"]))
    result = migrate_notebook(text, path="nb.ipynb")
    assert not result.problems
    assert sources(result.code)[0] == "%matplotlib inline\r\nimport mindspore.nn as nn\r\nbn = nn.BatchNorm2d(3, momentum=0.9)\r\n"


# -- magics that run Python ------------------------------------------------------------------

TORCH_NN = code(["from torch import nn\n"])


def test_a_line_magic_s_code_is_migrated_with_the_import_it_uses():
    """The issue's case: the import was switched under an unconverted %time line, which then built
    a MindSpore layer with torch's momentum."""
    text = notebook(TORCH_NN, code(lines("%time bn = nn.BatchNorm2d(3, momentum=0.1)\ny = bn(x)\n")))
    result = migrate_notebook(text, path="nb.ipynb")
    assert not result.problems
    assert sources(result.code) == ["from mindspore import nn\n",
                                    "%time bn = nn.BatchNorm2d(3, momentum=0.9)\nbn.set_train()\ny = bn(x)\n"]
    (md001,) = [f for f in result.findings if f.code == "MD001"]
    assert (md001.cell, md001.line, md001.column) == (2, 1, len("%time "))  # at `bn`, as written


def test_every_magic_that_runs_python_is_read_with_its_options():
    cell = lines("%timeit -n 10 -r3 nn.BatchNorm2d(3, momentum=0.2)\n"
                 "%prun -s cumulative -q nn.BatchNorm2d(3, momentum=0.3)\n"
                 "t = %timeit -o nn.BatchNorm2d(3, momentum=0.4)\n"
                 "%debug nn.BatchNorm2d(3, momentum=0.5)\n"
                 "bn = %time nn.BatchNorm2d(3, momentum=0.6)\n"
                 "for _ in range(2):\n"
                 "    %time nn.BatchNorm2d(3, momentum=0.7)  # timed\n"
                 "bn(x)\n")
    result = migrate_notebook(notebook(TORCH_NN, code(cell)), path="nb.ipynb")
    assert not result.problems
    assert sources(result.code)[1] == (
        "%timeit -n 10 -r3 nn.BatchNorm2d(3, momentum=0.8)\n"
        "%prun -s cumulative -q nn.BatchNorm2d(3, momentum=0.7)\n"
        "t = %timeit -o nn.BatchNorm2d(3, momentum=0.6)\n"  # t is a timing, not the layer
        "%debug nn.BatchNorm2d(3, momentum=0.5)\n"
        "bn = %time nn.BatchNorm2d(3, momentum=0.4)\n"  # %time returns the value: bn is the layer
        "bn.set_train()\n"
        "for _ in range(2):\n"
        "    %time nn.BatchNorm2d(3, momentum=0.3)  # timed\n"
        "bn(x)\n")
    assert sources(result.code)[0] == "from mindspore import nn\n"


def test_a_finding_on_a_magic_line_points_into_the_line_as_written():
    statement = "nn.BatchNorm2d(3, momentum=None)"
    (in_module,) = [f for f in migrate_source("from torch import nn\n" + statement + "\n").findings if f.code == "BN003"]
    text = notebook(TORCH_NN, code(lines("x = 1\n%prun -q " + statement + "\n")))
    result = migrate_notebook(text, path="nb.ipynb")
    (bn003,) = [f for f in result.findings if f.code == "BN003"]
    shift = len("%prun -q ")
    assert (bn003.cell, bn003.line, bn003.column, bn003.end_column) == \
        (2, 2, in_module.column + shift, in_module.end_column + shift)
    # Left unconverted, with its marker, and the import it uses stays torch.
    assert sources(result.code)[1].startswith("x = 1\n%prun -q " + statement + "  # torch2ms: BN003")
    assert sources(result.code)[0] == "from torch import nn\n"


def test_cell_magics_that_run_python_go_through_the_same_table():
    text = notebook(TORCH_NN,
                    code(lines("%%timeit -n1 bn = nn.BatchNorm2d(3, momentum=0.1)\nbn(x)\n")),
                    code(lines("%%prun -q\nnn.BatchNorm2d(3, momentum=0.2)\n")),
                    code(lines("%%capture out\nnn.BatchNorm2d(3, momentum=0.3)\n")))
    result = migrate_notebook(text, path="nb.ipynb")
    assert not result.problems
    assert sources(result.code) == ["from mindspore import nn\n",
                                    "%%timeit -n1 bn = nn.BatchNorm2d(3, momentum=0.9)\nbn.set_train()\nbn(x)\n",
                                    "%%prun -q\nnn.BatchNorm2d(3, momentum=0.8)\n",
                                    "%%capture out\nnn.BatchNorm2d(3, momentum=0.7)\n"]


@pytest.mark.parametrize("cell", [
    "%lprun -f f nn.BatchNorm2d(3, momentum=0.2)\n",  # an extension's magic: its argument is not read
    "%timeit -n '10' nn.BatchNorm2d(3, momentum=0.2)\n",  # quoted options: IPython splits them as a shell
    "%debug -b model.py:3 nn.BatchNorm2d(3, momentum=0.2)\n",  # IPython rebuilds the code from words
    "%time bn = nn.BatchNorm2d(3, \\\n    momentum=0.2)\n",  # continued over two lines
])
def test_a_magic_line_torch2ms_does_not_read_keeps_its_torch_import_and_is_reported(cell):
    text = notebook(TORCH_NN, code(["bn = nn.BatchNorm2d(3, momentum=0.1)\n"]), code(lines(cell)))
    result = migrate_notebook(text, path="nb.ipynb")
    assert not result.problems
    new = sources(result.code)
    assert new[0] == "from torch import nn\nfrom mindspore import nn as ms_nn\n"  # nn stays torch's
    assert new[1].startswith("bn = ms_nn.BatchNorm2d(3, momentum=0.9)\n")  # (and set_train() if the line names bn)
    assert new[2] == sources(text)[2]
    (nb001,) = [f for f in result.findings if f.code == "NB001"]
    assert (nb001.cell, nb001.line, nb001.severity) == (3, 1, "warning")
    assert "nn (torch)" in nb001.message


def test_a_magic_line_whose_torch_name_the_migration_would_switch_leaves_the_notebook():
    # A class imported by name is converted by switching its import: that would change the
    # meaning of the line torch2ms cannot read, so nothing is written.
    text = notebook(code(["from torch.nn import BatchNorm2d\n"]), code(["bn = BatchNorm2d(3, momentum=0.1)\n"]),
                    code(["%lprun -f f BatchNorm2d(3, momentum=0.2)\n"]))
    result = migrate_notebook(text, path="nb.ipynb")
    assert not result.changed and result.code == text
    assert "cell 3: line 1" in result.problems[0] and "uses BatchNorm2d" in result.problems[0]
    assert [f.code for f in result.findings if f.code == "NB001"] == ["NB001"]


def test_magic_lines_without_torch_names_are_left_and_not_reported():
    text = notebook(code(lines("%pip install torch\n%matplotlib inline\n%load_ext autoreload\n%autoreload 2\n"
                               "import torch\nfrom torch import nn\n")),
                    code(["bn = nn.BatchNorm2d(3, momentum=0.1)\n"]))
    result = migrate_notebook(text, path="nb.ipynb")
    assert sources(result.code)[0] == ("%pip install torch\n%matplotlib inline\n%load_ext autoreload\n%autoreload 2\n"
                                       "import torch\nfrom mindspore import nn\n")
    assert not [f for f in result.findings if f.code == "NB001"]  # a package named torch is no use of it


def test_migrating_magics_twice_changes_nothing_more():
    text = notebook(TORCH_NN, code(lines("%time bn = nn.BatchNorm2d(3, momentum=0.1)\n%timeit -n1 bn(x)\n")))
    once = migrate_notebook(text, path="nb.ipynb").code
    twice = migrate_notebook(once, path="nb.ipynb")
    assert not twice.changed and twice.code == once


def _as_program(cells: list[str]) -> str:
    """The cells as the kernel runs them, for this test's one magic: ``%time CODE`` runs CODE in
    the notebook's namespace (and prints a timing)."""
    return "".join(line.replace("%time ", "", 1) if line.startswith("%time ") else line
                   for cell in cells for line in lines(cell if cell.endswith("\n") else cell + "\n"))


def test_a_migrated_time_magic_computes_what_the_original_did(frameworks):
    from codemod.verify import Tolerance, load_frameworks
    from codemod.verify.harness import compare_records, run_program

    cells = ["from torch import nn\n",
             "%time bn = nn.BatchNorm2d(3, momentum=0.3)\n",
             "for seed in range(3):\n    record(f'train{seed}', bn(sample(2, 3, 4, 4, seed=seed) * 2 + 0.5))\n"
             "bn.eval()\nrecord('eval', bn(sample(2, 3, 4, 4, seed=9)))\n"]
    migrated = sources(migrate_notebook(notebook(*(code(lines(c)) for c in cells)), path="nb.ipynb").code)
    fw = load_frameworks()
    expected = run_program(_as_program(cells), "torch", fw)
    actual = run_program(_as_program(migrated), "mindspore", fw)
    failed = [f"{c.phase}: max abs {c.max_abs:.3g}" for c in compare_records(expected, actual, Tolerance()) if not c.passed]
    assert len(expected) == 4 and not failed, failed
    assert migrated[1].startswith("%time bn = nn.BatchNorm2d(3, momentum=0.7)\n")
