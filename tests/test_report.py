"""`--report FILE`: JSON and SARIF parse and carry every finding; Markdown groups per file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from codemod import migrate_source
from codemod.cli import main

MODEL = ("import torch\nimport torch.nn as nn\n\n"
         "bn = nn.BatchNorm2d(3, momentum=None)\n"
         "bn2 = nn.BatchNorm2d(3, momentum=0.1, device='cpu')\n"
         "torch.manual_seed(0)\n")
PY2 = "import torch.nn as nn\nprint 'x'\nbn = nn.BatchNorm2d(3)\n"
NOTEBOOK = json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": ["import torch.nn as nn\n", "bn = nn.BatchNorm2d(3, momentum=None)\n"]}],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src/model.py").write_text(MODEL)
    (tmp_path / "src/py2.py").write_text(PY2)
    (tmp_path / "src/plain.py").write_text("x = 1\n")
    (tmp_path / "src/nb.ipynb").write_text(NOTEBOOK)
    return tmp_path


def report(name: str, *extra: str):
    result = CliRunner().invoke(main, ["migrate", "--check", "src", "--report", name, *extra], catch_exceptions=False)
    assert result.exit_code == 2, result.output  # py2.py
    return Path(name)


def expected_findings():
    return migrate_source(MODEL, path="src/model.py").findings


def remaining_torch():
    remaining = migrate_source(MODEL, path="src/model.py").remaining_torch
    assert "torch.manual_seed" in remaining and "torch.nn.BatchNorm2d" in remaining  # momentum=None stays torch
    return remaining


def test_json_report_lists_every_finding_and_the_summary(project):
    data = json.loads(report("out/report.json").read_text())  # the report's directory is created
    assert data["summary"]["files_scanned"] == 4
    assert data["summary"]["files_with_errors"] == 1
    files = {f["path"]: f for f in data["files"]}
    assert sorted(files) == ["src/model.py", "src/nb.ipynb", "src/py2.py"]
    got = [(f["line"], f["column"], f["code"], f["severity"], f["message"]) for f in files["src/model.py"]["findings"]]
    want = [(f.line, f.column, f.code, f.severity, f.message) for f in expected_findings()]
    assert got == want and want
    assert files["src/model.py"]["remaining_torch"] == remaining_torch()
    assert files["src/py2.py"]["error"].startswith("2:")
    (nb_finding,) = [f for f in files["src/nb.ipynb"]["findings"] if f["code"] == "BN003"]
    assert (nb_finding["cell"], nb_finding["line"]) == (1, 2)
    counts = data["summary"]["findings"]
    assert sum(counts.values()) == sum(len(f["findings"]) for f in data["files"])


def test_markdown_report_groups_per_file_with_remaining_torch_apis(project):
    text = report("report.md").read_text()
    assert text.startswith("# torch2ms report\n")
    sections = text.split("\n## ")[1:]
    by_file = {s.split(" (", 1)[0]: s for s in sections}
    assert sorted(by_file) == ["src/model.py", "src/nb.ipynb", "src/py2.py"]
    model = by_file["src/model.py"]
    for f in expected_findings():
        assert f"| {f.line}:{f.column + 1} | {f.code} | {f.severity} |" in model
    assert "torch APIs that remain: " + ", ".join(f"`{r}`" for r in remaining_torch()) in model
    assert by_file["src/model.py"].startswith("src/model.py (would change)")
    assert "**not processed**: 2:" in by_file["src/py2.py"]
    assert "| cell 1, 2:" in by_file["src/nb.ipynb"]


# What the SARIF 2.1.0 schema requires of the objects torch2ms writes, and the properties it allows
# there (the schema forbids any other: additionalProperties is false).
SARIF = {
    "log": ({"version", "runs"}, {"$schema", "version", "runs", "inlineExternalProperties", "properties"}),
    "run": ({"tool"}, {"tool", "invocations", "conversion", "language", "versionControlProvenance",
                       "originalUriBaseIds", "artifacts", "logicalLocations", "graphs", "results", "automationDetails",
                       "runAggregates", "baselineGuid", "redactionTokens", "defaultEncoding", "defaultSourceLanguage",
                       "newlineSequences", "columnKind", "externalPropertyFileReferences", "threadFlowLocations",
                       "taxonomies", "addresses", "translations", "policies", "webRequests", "webResponses",
                       "specialLocations", "properties"}),
    "rule": ({"id"}, {"id", "deprecatedIds", "guid", "deprecatedGuids", "name", "deprecatedNames", "shortDescription",
                      "fullDescription", "messageStrings", "defaultConfiguration", "helpUri", "help", "relationships",
                      "properties"}),
    "result": ({"message"}, {"ruleId", "ruleIndex", "rule", "kind", "level", "message", "analysisTarget", "locations",
                             "guid", "correlationGuid", "occurrenceCount", "partialFingerprints", "fingerprints",
                             "stacks", "codeFlows", "graphs", "graphTraversals", "relatedLocations", "suppressions",
                             "baselineState", "rank", "attachments", "hostedViewerUri", "workItemUris", "provenance",
                             "fixes", "taxonomies", "webRequest", "webResponse", "properties"}),
    "location": (set(), {"id", "physicalLocation", "logicalLocations", "message", "annotations", "relationships",
                         "properties"}),
    "physicalLocation": ({"artifactLocation"}, {"address", "artifactLocation", "region", "contextRegion", "properties"}),
    "artifactLocation": (set(), {"uri", "uriBaseId", "index", "description", "properties"}),
    "region": ({"startLine"}, {"startLine", "startColumn", "endLine", "endColumn", "charOffset", "charLength",
                               "byteOffset", "byteLength", "snippet", "message", "sourceLanguage", "properties"}),
    "invocation": ({"executionSuccessful"}, None),
    "notification": ({"message"}, {"locations", "message", "level", "threadId", "timeUtc", "exception", "descriptor",
                                   "associatedRule", "properties"}),
}
LEVELS = {"none", "note", "warning", "error"}


def conforms(kind: str, obj: dict) -> None:
    required, allowed = SARIF[kind]
    assert required <= set(obj), f"{kind} lacks {required - set(obj)}"
    if allowed is not None:
        assert set(obj) <= allowed, f"{kind} has {set(obj) - allowed}"


def check_location(location: dict) -> dict:
    conforms("location", location)
    physical = location["physicalLocation"]
    conforms("physicalLocation", physical)
    conforms("artifactLocation", physical["artifactLocation"])
    if "region" in physical:
        conforms("region", physical["region"])
        assert all(physical["region"][k] >= 1 for k in physical["region"] if k.endswith(("Line", "Column")))
    return physical


def test_sarif_report_conforms_to_the_schema_and_locates_every_finding(project):
    log = json.loads(report("report.sarif").read_text())
    conforms("log", log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    conforms("run", run)
    assert run["columnKind"] == "unicodeCodePoints"  # our columns count code points
    driver = run["tool"]["driver"]
    assert driver["name"] == "torch2ms"
    for rule in driver["rules"]:
        conforms("rule", rule)
        assert rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in LEVELS
    rule_ids = [r["id"] for r in driver["rules"]]
    model_results = []
    for result in run["results"]:
        conforms("result", result)
        assert result["level"] in LEVELS and result["message"]["text"]
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]  # rule ids are the finding codes
        (location,) = result["locations"]
        physical = check_location(location)
        if physical["artifactLocation"]["uri"] == "src/model.py":
            assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
            model_results.append((result["ruleId"], result["level"], physical["region"]["startLine"],
                                  physical["region"]["startColumn"]))
    levels = {"error": "error", "warning": "warning", "info": "note"}
    assert model_results == [(f.code, levels[f.severity], f.line, f.column + 1) for f in expected_findings()]
    assert {"error", "note"} <= {level for _, level, _, _ in model_results}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.as_uri() + "/"
    (invocation,) = run["invocations"]
    conforms("invocation", invocation)
    (notification,) = invocation["toolExecutionNotifications"]
    conforms("notification", notification)
    assert notification["level"] == "error" and "src/py2.py" in notification["message"]["text"]
    check_location(notification["locations"][0])


def test_sarif_locates_notebook_findings_on_the_line_of_the_ipynb_file(project):
    log = json.loads(report("report.sarif").read_text())
    (result,) = [r for r in log["runs"][0]["results"] if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                 == "src/nb.ipynb" and r["ruleId"] == "BN003"]
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert "momentum=None" in NOTEBOOK.splitlines()[line - 1]
    assert result["properties"] == {"cell": 1, "cellLine": 2, "cellColumn": result["properties"]["cellColumn"]}
    assert result["message"]["text"].startswith("cell 1, line 2: ")


def sarif_locations(path: Path) -> set[tuple]:
    log = json.loads(path.read_text())
    (run,) = log["runs"]
    found = {(location["physicalLocation"]["artifactLocation"]["uri"],
              location["physicalLocation"]["artifactLocation"].get("uriBaseId"))
             for result in run["results"] for location in result["locations"]}
    return found | {("base", run["originalUriBaseIds"]["%SRCROOT%"]["uri"])}


@pytest.mark.parametrize("marker", [".git", "pyproject.toml"])
def test_sarif_uris_do_not_depend_on_how_the_path_was_spelled(tmp_path, monkeypatch, marker):
    repo = tmp_path / "repo"
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "elsewhere").mkdir()
    (repo / marker).mkdir() if marker == ".git" else (repo / marker).write_text("[project]\nname = 'x'\n")
    if marker == ".git":
        (repo / "src" / "pyproject.toml").write_text("")  # a sub-package's: the repository still wins
    (repo / "src" / "pkg" / "model.py").write_text(MODEL)
    spellings = [(repo, "src/pkg/model.py"), (repo / "src" / "pkg", "model.py"),
                 (repo / "elsewhere", str(repo / "src" / "pkg" / "model.py")),
                 (repo / "elsewhere", "../src/pkg/model.py")]
    seen = []
    for cwd, spelled in spellings:
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(main, ["migrate", "--check", spelled, "--report", str(tmp_path / "r.sarif")],
                                    catch_exceptions=False)
        assert result.exit_code == 1, result.output
        seen.append(sarif_locations(tmp_path / "r.sarif"))
    assert seen[0] == {("src/pkg/model.py", "%SRCROOT%"), ("base", repo.as_uri() + "/")}
    assert all(s == seen[0] for s in seen), seen


def test_a_file_outside_the_project_root_gets_an_absolute_uri(tmp_path, monkeypatch):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "model.py").write_text(MODEL)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path / "repo")
    CliRunner().invoke(main, ["migrate", "--check", ".", "../other/model.py", "--report", "r.sarif"], catch_exceptions=False)
    # The two files share no marked directory: the root is the working directory.
    assert sarif_locations(tmp_path / "repo" / "r.sarif") == {
        ("model.py", "%SRCROOT%"), ((tmp_path / "other" / "model.py").as_uri(), None),
        ("base", (tmp_path / "repo").as_uri() + "/")}


def test_the_report_file_gets_the_usual_mode_of_a_new_file(project):
    umask = os.umask(0o027)
    try:
        path = report("report.json")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_report_that_cannot_be_written_fails_the_run(project):
    (project / "not_a_dir").write_text("")
    result = CliRunner().invoke(main, ["migrate", "src/model.py", "--report", "not_a_dir/report.json"],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert "cannot write the report not_a_dir/report.json" in result.stderr
    assert "momentum=0.9" in (project / "src/model.py").read_text()  # the migration itself went through
