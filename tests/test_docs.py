"""Docs that cannot drift: the report captions, docs/output-format.md and the runbook agree with
the code they describe (the scorecard's methods and columns, the plot styles, the rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_repository import rule_blocks

from floecast import checkdata, community, deploy, plots, seas5_benchmark, verify, verify_tables

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "report"
OUTPUT_FORMAT = REPO / "docs" / "output-format.md"
RUNBOOK = REPO / "docs" / "runbook.md"
SEAS5_METHODS = tuple(seas5_benchmark.METHODS.values())  # seas5 (sources.seas5: cds), seas5_synthetic (the demo)
METHODS = (verify.ENSEMBLE, *verify.BASELINES, *SEAS5_METHODS)
# the skill figure's lines: every method, and the ensemble mean on the init dates it shares with SEAS5
LINES_DRAWN = (*METHODS, f"{verify.ENSEMBLE}{plots.ON_SEAS5_STARTS}")
# the words the docs use for matplotlib's colours and line styles
COLOURS = {
    "tab:blue": "blue",
    "tab:orange": "orange",
    "tab:red": "red",
    "tab:green": "green",
    "tab:purple": "purple",
    "0.3": "dark grey",
}
LINES = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dotted", (0, (5, 1, 1, 1, 1, 1)): "dash-dot-dotted"}


def style_words(method: str) -> str:
    """How the skill figure draws ``method``, in the docs' words, e.g. "thick solid blue"."""
    style = plots.METHOD_STYLE[method]
    assert style["color"] in COLOURS and style["ls"] in LINES, f"{method}: name its style {style} in COLOURS and LINES"
    return f"{'thick ' if style['lw'] >= 2 else ''}{LINES[style['ls']]} {COLOURS[style['color']]}"


def test_style_words() -> None:
    assert style_words("ensemble_mean") == "thick solid blue"
    assert style_words("persistence") == "dashed orange"
    assert style_words("seas5_synthetic") == "solid purple"


def test_the_gate_compares_the_scorecards_ensemble() -> None:
    assert deploy.ENSEMBLE == verify.ENSEMBLE


def test_every_method_has_a_style() -> None:
    assert set(LINES_DRAWN) <= set(plots.METHOD_STYLE)


def test_seas5_methods_are_the_scorecards() -> None:
    """The synthetic stand-in keeps its own name wherever it is scored (never plain seas5)."""
    assert seas5_benchmark.method_name("cds") == "seas5" and seas5_benchmark.method_name("synthetic") == "seas5_synthetic"
    assert not set(SEAS5_METHODS) & {verify.ENSEMBLE, *verify.BASELINES}


@pytest.mark.parametrize("method", LINES_DRAWN)
def test_skill_figure_docs_say_how_each_method_is_drawn(method: str) -> None:
    words = style_words(method)
    assert f"``{method}`` ({words})" in (REPORT / "skill_by_lead.rst").read_text(), "report/skill_by_lead.rst"
    assert f"`{method}` ({words})" in OUTPUT_FORMAT.read_text(), "docs/output-format.md, skill.png"


def test_skill_figure_caption_names_its_panels() -> None:
    caption = (REPORT / "skill_by_lead.rst").read_text()
    for metric in plots.SKILL_METRICS:
        assert f"**{plots.METRICS[metric].short}**" in caption, metric


@pytest.mark.parametrize("doc", ["report/scorecard.rst", "report/workflow.rst", "docs/output-format.md"])
def test_docs_name_every_baseline(doc: str) -> None:
    text = (REPO / doc).read_text()
    quote = "``" if doc.endswith(".rst") else "`"
    missing = [m for m in verify.BASELINES if f"{quote}{m}{quote}" not in text]
    assert not missing, f"{doc} does not name the baselines {missing}"


def test_output_format_describes_every_method_and_column() -> None:
    text = OUTPUT_FORMAT.read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    assert set(METHODS) <= rows, f"methods table lacks {set(METHODS) - rows}"
    assert set(verify.SCORECARD_COLUMNS) <= rows, f"columns table lacks {set(verify.SCORECARD_COLUMNS) - rows}"
    header = re.search(r"^lead_days,method,.*$", text, re.MULTILINE).group(0)
    assert header.split(",") == verify.SCORECARD_COLUMNS


def test_scorecard_caption_names_every_column() -> None:
    caption = (REPORT / "scorecard.rst").read_text()
    missing = [c for c in verify.SCORECARD_COLUMNS if f"``{c}``" not in caption]
    assert not missing, f"report/scorecard.rst does not describe {missing}"


@pytest.mark.parametrize("doc", ["report/scorecard.rst", "report/reliability.rst", "docs/runbook.md"])
def test_docs_name_the_seas5_methods(doc: str) -> None:
    text = (REPO / doc).read_text()
    quote = "``" if doc.endswith(".rst") else "`"
    missing = [m for m in SEAS5_METHODS if f"{quote}{m}" not in text]
    assert not missing, f"{doc} does not name {missing}"


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("reliability.csv", verify_tables.RELIABILITY_COLUMNS),
        ("scores_by_region.csv", verify_tables.REGION_COLUMNS),
        ("data_check.csv", checkdata.FINDING_COLUMNS),
        ("the Sea Ice Outlook table", community.SIO_COLUMNS),
    ],
)
def test_other_tables_columns_are_documented(table: str, columns: list[str]) -> None:
    """The CSV files beside the scorecard, of the data check and of the exports: each column in docs/output-format.md."""
    text = OUTPUT_FORMAT.read_text()
    missing = [c for c in columns if f"`{c}`" not in text]
    assert not missing, f"docs/output-format.md does not describe the columns {missing} of {table}"


def test_maps_caption_names_each_row_and_line() -> None:
    caption = (REPORT / "forecast_maps.rst").read_text()
    for quantity in plots.MAP_QUANTITIES:
        assert f"**{plots.MAP_STYLES[quantity].label}" in caption, quantity
    assert f"The {plots.EDGE_COLOUR} line" in caption and f"the {plots.SIP_EDGE_COLOUR} dashed line" in caption


def test_docs_name_only_rules_that_exist() -> None:
    rules = set(rule_blocks())
    sections = set(re.findall(r"^### (\w+)$", RUNBOOK.read_text(), re.MULTILINE))
    assert rules <= sections, f"runbook has no section for {rules - sections}"
    for doc in (RUNBOOK, OUTPUT_FORMAT, REPO / "README.md"):
        # the member rules (one per GPU job); sic_member is the per-member export's variable
        named = set(re.findall(r"`(\w+_member)`", doc.read_text())) - {community.MEMBER_VARIABLE}
        assert named <= rules, f"{doc.name} names rules that do not exist: {named - rules}"


def test_runbook_names_each_rules_env() -> None:
    sections = re.split(r"^### ", RUNBOOK.read_text(), flags=re.MULTILINE)
    envs = {s.split("\n", 1)[0]: re.findall(r"^- Env \(`--sdm conda`\): `(envs/[\w.]+)`", s, re.MULTILINE) for s in sections}
    for rule, body in rule_blocks().items():
        env = re.search(r'conda:\n\s+"\.\./(envs/[\w.-]+\.yaml)"', body).group(1)
        assert envs.get(rule) == [env], f"runbook, {rule}: its env is {env}"


def test_reliability_names_only_tests_that_exist() -> None:
    """docs/reliability.md maps each fault to its tests as `file.py::test_name`: each one is there."""
    text = (REPO / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"`(test_\w+\.py)::(test_\w+)`", text))
    assert len(named) > 40
    missing = [
        f"{name}::{test}"
        for name, test in sorted(named)
        if not re.search(rf"^def {test}\(", (REPO / "tests" / name).read_text(), re.MULTILINE)
    ]
    assert missing == []
