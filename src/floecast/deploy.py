"""Blue-green model runs: ``staging`` and ``production`` name a model run per hemisphere.

Layout, per hemisphere, under the workflow's root (the folder holding ``models/`` and
``results/``)::

    models/<hemi>/<run>/member_<k>/...          a trained run (one model generation)
    models/<hemi>/staging    -> <run>           relative symlinks, switched atomically
    models/<hemi>/production -> <run>
    models/<hemi>/deployments.jsonl             append-only history, one JSON line per change
    results/<hemi>/<run>/verification/scorecard.csv   the run's hindcast scorecard (the gate's input)

A promotion passes its gate only when the candidate's hindcast is at least as good as
production's on the same dates, so a model that forecasts worse never reaches operations
by accident; ``force`` overrides the gate and says so in the history. ``rollback`` undoes
promotions one by one (the history is replayed as a stack of production runs).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from floecast import layout

ENSEMBLE = "ensemble_mean"  # the method the gate compares (floecast.verify.ENSEMBLE)
LINKS = ("staging", "production")
HISTORY = "deployments.jsonl"
LOCK = ".deploy.lock"
EXIT_GATE_FAILED = 4  # `floecast promote`: the candidate is worse than production
EXIT_NOT_COMPARABLE = 5  # `floecast promote`: the two hindcasts are not on the same dates


class DeployError(RuntimeError):
    """A refused deployment action; the message names the files involved."""


class RunNotFoundError(DeployError):
    """The run (or the run a link or the history names) has no model folder."""


class ScorecardError(DeployError):
    """A scorecard is missing or lacks the rows the gate needs."""


class NotComparableError(DeployError):
    """The two scorecards do not cover the same leads and init dates."""


class GateFailedError(DeployError):
    """The candidate is worse than production at some lead; ``result`` holds the comparison."""

    def __init__(self, message: str, result: GateResult) -> None:
        super().__init__(message)
        self.result = result


class NoPreviousProductionError(DeployError):
    """Rollback asked for, but the history holds no earlier production run."""


class HistoryMismatchError(DeployError):
    """The production link and the history disagree (the link was changed by hand)."""


class AlreadyDeployedError(DeployError):
    """The run already holds that role."""


@dataclass(frozen=True)
class LeadComparison:
    """One lead of the gate: ensemble-mean RMSE of candidate and production."""

    lead: int
    candidate_rmse: float
    production_rmse: float | None
    difference: float | None
    ok: bool


@dataclass
class GateResult:
    """What the gate compared and decided; ``report()`` is the table operators read."""

    hemisphere: str
    candidate: str
    production: str | None
    candidate_scorecard: str
    production_scorecard: str | None
    tolerance: float
    passed: bool
    verdict: str
    first_promotion: bool = False
    forced: bool = False
    n_init_dates: int | None = None
    leads: list[LeadComparison] = field(default_factory=list)
    mean_iiee_km2: dict[str, float | None] = field(default_factory=dict)
    mean_binary_accuracy: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The comparison as recorded in the history (JSON-safe: NaN becomes null)."""
        return _json_safe(asdict(self))

    def report(self) -> str:
        """Comparison table (lead, candidate rmse, production rmse, difference, ok) and the verdict."""
        lines = [
            f"gate {self.hemisphere}: candidate {self.candidate} vs production {self.production or '(none)'}"
            f" - ensemble-mean RMSE, month=all, tolerance {self.tolerance:.1%}",
            f"  candidate:  {self.candidate_scorecard}",
        ]
        if self.production_scorecard:
            lines.append(f"  production: {self.production_scorecard}")
        if self.leads:
            lines.append(f"{'lead':>5}  {'candidate_rmse':>14}  {'production_rmse':>15}  {'difference':>10}  ok")
            for row in self.leads:
                lines.append(
                    f"{row.lead:>5}  {row.candidate_rmse:>14.5f}  {_fmt(row.production_rmse, '15.5f')}"
                    f"  {_fmt(row.difference, '+10.5f')}  {'yes' if row.ok else 'NO'}"
                )
        for name, values in (("mean IIEE (km2)", self.mean_iiee_km2), ("mean binary accuracy", self.mean_binary_accuracy)):
            if values:
                candidate, production = _fmt(values.get("candidate"), ".4g"), _fmt(values.get("production"), ".4g")
                lines.append(f"{name}: candidate {candidate}, production {production}")
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    width = "".join(c for c in spec.split(".")[0] if c.isdigit())
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(int(width or 1))
    return format(value, spec)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def hemisphere_dir(root: str | os.PathLike[str], hemi: str) -> Path:
    """models/<hemi>: the runs, their staging/production links and the history live together."""
    return layout.path(root, layout.MODELS_DIR, hemi=hemi)


def scorecard_path(root: str | os.PathLike[str], hemi: str, run: str) -> Path:
    """The run's hindcast scorecard, the only evidence the gate accepts."""
    return layout.path(root, layout.SCORECARD, hemi=hemi, run=run)


def _check_run(root: str | os.PathLike[str], hemi: str, run: str) -> Path:
    if not run or run in LINKS or "/" in run or run.startswith(".") or run == HISTORY:
        raise DeployError(f"not a run name: {run!r} (a folder name under models/{hemi}/, not staging/production)")
    folder = layout.path(root, layout.RUN_DIR, hemi=hemi, run=run)
    if not folder.is_dir():
        raise RunNotFoundError(f"run {run!r}: no model folder {folder}")
    if not any(folder.glob("member_*")):
        raise RunNotFoundError(f"run {run!r}: {folder} holds no member_<k> folder (not trained yet?)")
    return folder


def _read_link(root: str | os.PathLike[str], hemi: str, name: str) -> str | None:
    link = hemisphere_dir(root, hemi) / name
    if link.is_symlink():
        return Path(os.readlink(link)).name
    if link.exists():
        raise DeployError(f"{link} is not a symlink: move it away (staging/production must be links to runs)")
    return None


def current(root: str | os.PathLike[str], hemi: str) -> dict[str, str | None]:
    """The runs ``staging`` and ``production`` name now (None where the link is not there)."""
    return {name: _read_link(root, hemi, name) for name in LINKS}


def history(root: str | os.PathLike[str], hemi: str) -> list[dict[str, Any]]:
    """Every recorded change, oldest first (an unreadable line is an error naming the file)."""
    path = hemisphere_dir(root, hemi) / HISTORY
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DeployError(f"{path} line {number}: not JSON ({err.msg})") from None
    return entries


def _operator() -> str:
    if os.environ.get("FLOECAST_OPERATOR"):
        return os.environ["FLOECAST_OPERATOR"]
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user entry (some containers)
        return "unknown"


@contextmanager
def _locked(root: str | os.PathLike[str], hemi: str) -> Iterator[Path]:
    """One deployment change at a time per hemisphere (two operators, or cron and a person)."""
    folder = hemisphere_dir(root, hemi)
    if not folder.is_dir():
        raise RunNotFoundError(f"no model folder {folder}")
    with open(folder / LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _switch(folder: Path, name: str, run: str) -> None:
    """Point ``folder/name`` at ``run`` atomically: a temporary symlink renamed over the link."""
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(run, tmp)
    try:
        os.replace(tmp, folder / name)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _record(folder: Path, action: str, run: str, previous: str | None, gate: dict[str, Any] | None) -> dict[str, Any]:
    entry = {
        "action": action,
        "run": run,
        "previous": previous,
        "who": _operator(),
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gate": gate,
    }
    with open(folder / HISTORY, "a") as handle:
        handle.write(json.dumps(entry, sort_keys=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def stage(root: str | os.PathLike[str], hemi: str, run: str) -> str | None:
    """Point ``staging`` at a trained run (no gate: staging is where a run is tried out); returns the run it replaced."""
    _check_run(root, hemi, run)
    with _locked(root, hemi) as folder:
        previous = _read_link(root, hemi, "staging")
        if previous == run:
            raise AlreadyDeployedError(f"run {run!r} is already staging ({folder / 'staging'})")
        _switch(folder, "staging", run)
        _record(folder, "stage", run, previous, None)
    return previous


def _ensemble_rows(path: Path) -> pd.DataFrame:
    """The ensemble-mean rows over all months of a scorecard, indexed by lead."""
    if not path.exists():
        raise ScorecardError(f"no hindcast scorecard {path} (run the workflow's scorecard rule for this run first)")
    table = pd.read_csv(path)
    missing = {"lead_days", "method", "rmse", "n_init_dates"} - set(table.columns)
    if missing:
        raise ScorecardError(f"{path}: no column(s) {sorted(missing)}")
    if "month" in table:  # scorecards before the by-month rows have only the aggregate
        table = table[table["month"].astype(str) == "all"]
    if "date_set" in table:  # the rows over every hindcast init date, not the subset shared with SEAS5
        table = table[table["date_set"].astype(str) == "hindcast"]
    rows = table[table["method"] == ENSEMBLE]
    if rows.empty:
        raise ScorecardError(f"{path}: no {ENSEMBLE} rows with month == 'all'")
    if rows["lead_days"].duplicated().any():
        raise ScorecardError(f"{path}: several {ENSEMBLE} rows for one lead with month == 'all'")
    return rows.set_index("lead_days").sort_index()


def _leads_text(rows: pd.DataFrame) -> str:
    leads = list(rows.index)
    dates = sorted(set(rows["n_init_dates"].astype(int)))
    span = f"{leads[0]}-{leads[-1]}" if leads == list(range(leads[0], leads[-1] + 1)) else ",".join(map(str, leads))
    return f"{len(leads)} leads ({span}), {'/'.join(map(str, dates))} init dates"


def _mean(rows: pd.DataFrame, column: str) -> float | None:
    if column not in rows:
        return None
    value = float(pd.to_numeric(rows[column], errors="coerce").mean())
    return None if math.isnan(value) else value


def _relative_difference(row: LeadComparison) -> float:
    if row.difference is None or not row.production_rmse or not math.isfinite(row.difference):
        return math.inf
    return row.difference / row.production_rmse


def compare(
    candidate_csv: str | os.PathLike[str],
    production_csv: str | os.PathLike[str],
    tolerance: float = 0.0,
    *,
    hemisphere: str = "",
    candidate: str = "candidate",
    production: str = "production",
) -> GateResult:
    """The gate on two scorecards: every lead's RMSE <= production's x (1 + tolerance), same dates only."""
    cand_path, prod_path = Path(candidate_csv), Path(production_csv)
    cand, prod = _ensemble_rows(cand_path), _ensemble_rows(prod_path)
    same_leads = list(cand.index) == list(prod.index)
    if not same_leads or not cand["n_init_dates"].astype(int).equals(prod["n_init_dates"].astype(int)):
        raise NotComparableError(
            f"scorecards not comparable: {cand_path} has {_leads_text(cand)}, {prod_path} has {_leads_text(prod)};"
            " the gate only compares hindcasts over the same init dates and leads. Re-run the hindcast of both runs on"
            " the same test years and leads (config splits.test, model.leads), e.g."
            f" `snakemake {cand_path} --forcerun hindcast_member` and `snakemake {prod_path} --forcerun hindcast_member`"
            " with that config, then promote again"
        )
    leads = []
    for lead, row in cand.iterrows():
        c, p = float(row["rmse"]), float(prod.loc[lead, "rmse"])
        ok = math.isfinite(c) and math.isfinite(p) and c <= p * (1 + tolerance)
        leads.append(LeadComparison(int(lead), c, p, c - p, ok))
    worse = [row for row in leads if not row.ok]
    n_dates = int(cand["n_init_dates"].iloc[0])
    if worse:
        worst = max(worse, key=_relative_difference)
        share = _relative_difference(worst)
        verdict = (
            f"FAIL - candidate RMSE above production's{f' + {tolerance:.1%}' if tolerance else ''}"
            f" at {len(worse)} of {len(leads)} leads"
            f" ({', '.join(str(r.lead) for r in worse[:12])}{' ...' if len(worse) > 12 else ''});"
            f" worst lead {worst.lead}: {share:+.1%}"
        )
    else:
        verdict = f"PASS - candidate at least as good at all {len(leads)} leads ({n_dates} init dates)"
    return GateResult(
        hemisphere=hemisphere,
        candidate=candidate,
        production=production,
        candidate_scorecard=str(cand_path),
        production_scorecard=str(prod_path),
        tolerance=tolerance,
        passed=not worse,
        verdict=verdict,
        n_init_dates=n_dates,
        leads=leads,
        mean_iiee_km2={"candidate": _mean(cand, "iiee_km2"), "production": _mean(prod, "iiee_km2")},
        mean_binary_accuracy={"candidate": _mean(cand, "binary_accuracy"), "production": _mean(prod, "binary_accuracy")},
    )


def _gate(root: str | os.PathLike[str], hemi: str, run: str, production: str | None, tolerance: float) -> GateResult:
    cand_csv = scorecard_path(root, hemi, run)
    if production is None:
        _ensemble_rows(cand_csv)  # a first promotion still needs a readable hindcast
        return GateResult(
            hemisphere=hemi,
            candidate=run,
            production=None,
            candidate_scorecard=str(cand_csv),
            production_scorecard=None,
            tolerance=tolerance,
            passed=True,
            verdict="PASS - no current production: the first promotion passes without comparison",
            first_promotion=True,
        )
    return compare(
        cand_csv, scorecard_path(root, hemi, production), tolerance, hemisphere=hemi, candidate=run, production=production
    )


def promote(
    root: str | os.PathLike[str],
    hemi: str,
    run: str,
    force: bool = False,
    tolerance: float = 0.0,
    out: TextIO | None = None,
) -> GateResult:
    """Make ``run`` production if its hindcast is at least as good as production's on the same dates.

    Prints the gate's table and verdict to ``out`` (stdout by default). ``force`` promotes
    despite a failed or impossible comparison (recorded as forced); it never promotes a run
    that has no model folder.
    """
    _check_run(root, hemi, run)
    with _locked(root, hemi) as folder:
        production = _read_link(root, hemi, "production")
        if production == run:
            raise AlreadyDeployedError(f"run {run!r} is already production ({folder / 'production'})")
        try:
            result = _gate(root, hemi, run, production, tolerance)
        except (NotComparableError, ScorecardError) as err:
            if not force:
                raise
            result = GateResult(
                hemisphere=hemi,
                candidate=run,
                production=production,
                candidate_scorecard=str(scorecard_path(root, hemi, run)),
                production_scorecard=str(scorecard_path(root, hemi, production)) if production else None,
                tolerance=tolerance,
                passed=False,
                verdict=f"NOT COMPARED - {err}",
            )
        if not result.passed and not force:
            print(result.report(), file=out or sys.stdout)
            raise GateFailedError(
                f"promotion of {run!r} refused: {result.verdict} (compared {result.candidate_scorecard}"
                f" with {result.production_scorecard}; --force overrides)",
                result,
            )
        if not result.passed:
            result.forced = True
            result.verdict += " - PROMOTED ANYWAY (forced)"
        elif result.first_promotion:
            result.verdict += f"; {run} is now production"
        else:
            result.verdict += f"; {run} replaces {production} as production"
        _switch(folder, "production", run)
        _record(folder, "promote", run, production, result.as_dict())
    print(result.report(), file=out or sys.stdout)
    return result


def production_stack(entries: list[dict[str, Any]]) -> list[str]:
    """The production runs in order, replaying promotions (push) and rollbacks (pop)."""
    stack: list[str] = []
    for entry in entries:
        if entry.get("action") == "promote":
            stack.append(entry["run"])
        elif entry.get("action") == "rollback" and stack:
            stack.pop()
    return stack


def rollback(root: str | os.PathLike[str], hemi: str) -> str:
    """Return production to the run before the current one in the history; returns that run.

    Repeated rollbacks walk further back (A, B, C promoted: rollback -> B, rollback -> A).
    No gate: a rollback is the way out of a bad promotion.
    """
    with _locked(root, hemi) as folder:
        path = folder / HISTORY
        production = _read_link(root, hemi, "production")
        stack = production_stack(history(root, hemi))
        if not stack or production is None:
            raise NoPreviousProductionError(f"nothing to roll back: no production run recorded in {path}")
        if stack[-1] != production:
            raise HistoryMismatchError(
                f"{folder / 'production'} points to {production!r} but {path} says {stack[-1]!r} is production:"
                f" the link was changed outside floecast; promote the intended run (--force) to record it"
            )
        if len(stack) < 2:
            raise NoPreviousProductionError(f"no earlier production run than {production!r} in {path}")
        target = stack[-2]
        _check_run(root, hemi, target)
        _switch(folder, "production", target)
        _record(folder, "rollback", target, production, None)
    return target
