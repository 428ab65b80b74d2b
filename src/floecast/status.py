"""Operational status: what data, forecasts and models a workflow root holds, how the last
Snakemake run ended, and a notification hook, so an operator (or a mail/webhook) sees in one
screen whether today's forecast is there and, if not, which rule failed and where its log is.

Everything here reads files only (no network): the newest day of each source comes from
``data/raw`` manifests and files and from ``data/interim``; upstream availability is what
``floecast poll`` last wrote to ``data/poll/state.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from floecast import clock, deploy, layout
from floecast.inputs import latency_days, newest_atmos, newest_sic
from floecast.sources.osisaf import date_from_filename

log = logging.getLogger(__name__)
NOTIFY_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 15
_YEAR_FILE = re.compile(r"^\d{4}\.nc$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PERIOD = re.compile(r"^\d{4}(/\d{2})?$")
_PROGRESS = re.compile(r"^(\d+) of (\d+) steps \((\d+)%\) done")
_RULE_ERROR = re.compile(r"^Error in rule (\S+):\s*$")
_PARSE_ERROR = re.compile(r"^(\w+(?:Error|Exception)) in (?:file|line) .*$")
_LINT_MARKERS = ("Lints for ", "Congratulations, your workflow is in a good condition")
_DRY_FLAGS = re.compile(r"^(--lint.*|--dry-?run|--summary|--detailed-summary|--list.*|-[A-Za-z]*n[A-Za-z]*)$")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _newest_time(path: Path) -> str | None:
    """The last day of a NetCDF file's time axis (``time`` or ERA5's ``valid_time``)."""
    import xarray as xr

    with xr.open_dataset(path, engine="netcdf4", decode_times=True) as ds:
        for name in ("time", "valid_time"):
            if name in ds.coords and ds.sizes.get(name, 0):
                return str(ds[name].values.max())[:10]
    return None


def _newest_year_file(folder: Path) -> str | None:
    files = sorted(p for p in folder.glob("*.nc") if _YEAR_FILE.match(p.name)) if folder.is_dir() else []
    for path in reversed(files):  # an empty newest year (a just-started January) falls back a year
        day = _newest_time(path)
        if day:
            return day
    return None


def newest_raw_sic(root: str | os.PathLike[str], source: str, hemi: str) -> str | None:
    """Newest daily SIC file listed in a period manifest (a folder without its manifest is still filling).

    Falls back to the file names themselves where no manifest exists (raw data from before manifests).
    """
    base = layout.path(root, layout.RAW_SIC_DIR, sic_source=source, hemi=hemi)
    if not base.is_dir():
        return None
    days: list[dt.date] = []
    manifests = _sic_manifests(root, source, hemi)
    for manifest in manifests:
        try:
            days += [date_from_filename(name) for name in json.loads(manifest.read_text()).get("files", [])]
        except (ValueError, OSError) as err:
            log.warning("%s: unreadable manifest (%s)", manifest, err)
    if not manifests:
        for path in base.rglob("ice_conc_*.nc"):
            try:
                days.append(date_from_filename(path.name))
            except ValueError:
                continue
    return max(days).isoformat() if days else None


def _wildcards(template: str, path: Path, root: str | os.PathLike[str]) -> dict[str, str]:
    """The wildcards of a file under ``root`` that ``template`` describes (none if it does not)."""
    return layout.match(template, _relative(path, Path(root))) or {}


def _sic_manifests(root: str | os.PathLike[str], source: str, hemi: str) -> list[Path]:
    """The period manifests (layout.RAW_SIC) of a SIC source and hemisphere."""
    base = layout.path(root, layout.RAW_SIC_DIR, sic_source=source, hemi=hemi)
    if not base.is_dir():
        return []
    return [p for p in base.rglob("*.json") if _PERIOD.match(_wildcards(layout.RAW_SIC, p, root).get("period", ""))]


def raw_sic_product(root: str | os.PathLike[str], source: str, hemi: str) -> str | None:
    """The product (and version) that served the newest SIC day of the raw store."""
    newest = newest_sic(_sic_manifests(root, source, hemi))
    return newest[1] if newest else None


def raw_atmos_product(root: str | os.PathLike[str], source: str, variable: str, hemi: str) -> str | None:
    """What served the newest day of an atmospheric variable (ERA5, ERA5T or the HRES fill)."""
    folder = layout.path(root, layout.RAW_ATMOS_DIR, atmos_source=source, variable=variable, hemi=hemi)
    files = sorted(p for p in folder.glob("*.nc") if _YEAR_FILE.match(p.name)) if folder.is_dir() else []
    newest = newest_atmos(files[-1]) if files else None
    return newest[1] if newest else None


def _safe(function: Any, *args: Any) -> str | None:
    try:
        return function(*args)
    except Exception as err:  # a broken file must not hide the rest of the status
        log.warning("status: %s%s failed: %s", function.__name__, args, err)
        return f"unreadable ({type(err).__name__})"


def _raw_folders(root: str | os.PathLike[str], config: Mapping[str, Any], role: str, hemi: str) -> tuple[str, str] | None:
    """The raw folder template of a role's data and its source wildcard (for the first variable of atmos)."""
    if role == "sic":
        return layout.fill(layout.RAW_SIC_DIR, hemi=hemi), "sic_source"
    variables = list(config.get("channels", {}).get("atmos", {}))
    if role == "atmos" and variables:
        return layout.fill(layout.RAW_ATMOS_DIR, hemi=hemi, variable=variables[0]), "atmos_source"
    return None


def sources_on_disk(root: str | os.PathLike[str], config: Mapping[str, Any], hemi: str) -> dict[str, str]:
    """The source that produced each role's data on disk: the configured one where its raw folder
    exists or no source's does, else the one source whose raw folder exists (a demo's synthetic
    data looked at with the production config is synthetic, whatever the config says)."""
    found = {}
    for role, configured in config.get("sources", {}).items():
        folders = _raw_folders(root, config, role, hemi)
        if folders is None:
            found[role] = configured
            continue
        template, wildcard = folders
        folders_found = Path(root).glob(layout.fill(template, **{wildcard: "*"}))
        present = sorted((_wildcards(template, p, root) or {}).get(wildcard, "") for p in folders_found if p.is_dir())
        found[role] = present[0] if configured not in present and len(present) == 1 else configured
    return found


def data_days(root: str | os.PathLike[str], config: Mapping[str, Any], hemi: str) -> dict[str, dict[str, str | None]]:
    """Newest day per input (``<role>:<source>[:<variable>]``) in data/raw and data/interim, labelled
    with the source that produced the data on disk (:func:`sources_on_disk`)."""
    sources = sources_on_disk(root, config, hemi)
    days: dict[str, dict[str, str | None]] = {}

    def interim(variable: str) -> Path:
        return layout.path(root, layout.INTERIM_OBS_DIR, hemi=hemi, variable=variable)

    if "sic" in sources:
        days[f"sic:{sources['sic']}"] = {
            "raw": _safe(newest_raw_sic, root, sources["sic"], hemi),
            "interim": _safe(_newest_year_file, interim("sic")),
            "served_by": _safe(raw_sic_product, root, sources["sic"], hemi),
        }
    if "atmos" in sources:
        for variable in config.get("channels", {}).get("atmos", {}):
            raw = layout.path(root, layout.RAW_ATMOS_DIR, atmos_source=sources["atmos"], variable=variable, hemi=hemi)
            days[f"atmos:{sources['atmos']}:{variable}"] = {
                "raw": _safe(_newest_year_file, raw),
                "interim": _safe(_newest_year_file, interim(variable)),
                "served_by": _safe(raw_atmos_product, root, sources["atmos"], variable, hemi),
            }
    for name, entry in days.items():  # days behind the clock's today, of the newest raw day
        entry["latency_days"] = latency_days(entry["raw"])
        if ":synthetic" in name and entry["served_by"]:
            entry["served_by"] = f"synthetic ({entry['served_by']} layout)"
    return days


def newest_forecasts(root: str | os.PathLike[str], hemi: str) -> dict[str, dict[str, str]]:
    """Newest forecast file (by init date) of each run (layout.FORECAST)."""
    root = Path(root)
    newest: dict[str, dict[str, str]] = {}
    for path in sorted(root.glob(layout.fill(layout.FORECAST, hemi=hemi, run="*", date="*"))):
        found = _wildcards(layout.FORECAST, path, root)
        run, date = found.get("run", ""), found.get("date", "")
        if _DATE.match(date) and (run not in newest or date > newest[run]["date"]):
            newest[run] = {"run": run, "date": date, "path": _relative(path, root)}
    return newest


def _is_run_log(text: str) -> bool:
    """True for a real run's log; False for lint, dry-run or listing logs (they land in the same folder)."""
    if any(marker in text for marker in _LINT_MARKERS):
        return False
    command = re.search(r"^\s*Command: (.*)$", text, re.MULTILINE)
    return not (command and any(_DRY_FLAGS.match(token) for token in command.group(1).split()))


def newest_run_log(root: str | os.PathLike[str]) -> Path | None:
    """The newest ``.snakemake/log/*.snakemake.log`` of a real run (newest by its timestamped name)."""
    folder = Path(root) / ".snakemake" / "log"
    for path in sorted(folder.glob("*.snakemake.log"), reverse=True):
        try:
            if _is_run_log(path.read_text(errors="replace")):
                return path
        except OSError:
            continue
    return None


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def parse_snakemake_log(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Outcome of one Snakemake run from its log: success, failed (with each failed job's rule
    and log files), nothing-to-do, or incomplete (still running, or killed)."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent.parent.parent
    lines = path.read_text(errors="replace").splitlines()
    failed: dict[str, dict[str, Any]] = {}
    progress, error, job = None, None, None
    for number, line in enumerate(lines):
        if match := _RULE_ERROR.match(line):
            job = {"rule": match.group(1), "jobid": None, "wildcards": None, "message": None, "logs": []}
            failed[f"{number}"] = job
            continue
        if job is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "jobid":
                job["jobid"] = value
            elif key in ("wildcards", "message"):
                job[key] = None if value == "None" else value
            elif key == "log":
                value = value.split(" (check log file(s)")[0]
                job["logs"] = [item.strip() for item in value.split(",") if item.strip()]
            continue
        job = None
        if match := re.match(r"^Trying to restart job (\S+?)\.?$", line):
            failed = {k: v for k, v in failed.items() if v["jobid"] != match.group(1)}  # retried, not failed (yet)
        elif match := _PROGRESS.match(line):
            progress = match.group(0)
        elif error is None and (match := _PARSE_ERROR.match(line)):
            following = lines[number + 1].strip() if number + 1 < len(lines) else ""
            error = f"{line.strip()} {following}".strip()
    text = "\n".join(lines)
    done = progress and (m := _PROGRESS.match(progress)) and m.group(1) == m.group(2)
    if "Nothing to be done" in text:
        outcome = "nothing-to-do"
    elif failed or "Exiting because a job execution failed" in text or "did not complete successfully" in text:
        outcome = "failed"
    elif done:
        outcome = "success"
    elif error:
        outcome = "failed"  # the Snakefile or the config failed before any job ran
    else:
        outcome = "incomplete"
    jobs = []
    for job in failed.values():
        logs = job["logs"]
        tail = _log_tail(root / logs[0]) if logs else []
        jobs.append({**job, "log_tail": tail})
    stamp = re.search(r"^\s*Date: (.+)$", text, re.MULTILINE)
    return {
        "log": _relative(path, root),
        "started": stamp.group(1).strip() if stamp else path.name.split(".snakemake.log")[0],
        "outcome": outcome,
        "progress": progress,
        "failed_jobs": jobs if outcome == "failed" else [],
        "error": error if outcome == "failed" and not jobs else None,
    }


def last_run(root: str | os.PathLike[str], snakemake_log: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The last workflow run: the given Snakemake log, or the newest real run's log under root."""
    root = Path(root).resolve()
    locks = root / ".snakemake" / "locks"
    locked = locks.is_dir() and any(locks.iterdir())
    path = Path(snakemake_log) if snakemake_log else newest_run_log(root)
    if path is None or not path.exists():
        return {"log": str(path) if path else None, "outcome": "none", "locked": locked, "failed_jobs": []}
    return {**parse_snakemake_log(path, root), "locked": locked}


def _poll_state(root: Path) -> dict[str, Any] | None:
    path = root / layout.POLL_STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = ("checked_at", "target_date", "ready", "waiting_for", "newest", "latency_days", "served_by", "resolved_date")
    return {key: state.get(key) for key in keys}


def status(
    root: str | os.PathLike[str], config: Mapping[str, Any], snakemake_log: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Per hemisphere: newest data day per source, newest forecast, staging/production runs;
    plus the last run's outcome (and failing rules with their logs) and the last poll."""
    root = Path(root).resolve()  # log paths print relative to it, as Snakemake's do
    hemispheres: dict[str, Any] = {}
    warnings: list[str] = []
    for hemi in config.get("hemispheres", ["north"]):
        try:
            models: dict[str, Any] = deploy.current(root, hemi)
        except deploy.DeployError as err:
            models = {"staging": None, "production": None}
            warnings.append(str(err))
        for name, run in list(models.items()):
            folder = layout.path(root, layout.RUN_DIR, hemi=hemi, run=run) if run else None
            if folder and not folder.is_dir():
                warnings.append(f"{hemi}: {name} points to {run!r}, which has no folder {_relative(folder, root)}")
        for role, source in sources_on_disk(root, config, hemi).items():
            if source != config["sources"][role]:
                warnings.append(
                    f"{hemi}: the {role} data on disk come from {source}, not from sources.{role} "
                    f"({config['sources'][role]}) of this config: is it the config of this workflow folder?"
                )
        forecasts = newest_forecasts(root, hemi)
        newest = max(forecasts.values(), key=lambda f: (f["date"], f["run"]), default=None)
        hemispheres[hemi] = {
            "data": data_days(root, config, hemi),
            "newest_forecast": newest,
            "production_forecast": forecasts.get(models["production"] or ""),
            "models": models,
        }
    return {
        "root": str(root),
        "checked_at": clock.stamp(),
        "hemispheres": hemispheres,
        "last_run": last_run(root, snakemake_log),
        "poll": _poll_state(root),
        "warnings": warnings,
    }


def subject(summary: Mapping[str, Any]) -> str:
    """One line for a mail subject: the outcome and the first failing rule."""
    run = summary.get("last_run", {})
    text = f"floecast {Path(str(summary.get('root', '.'))).name}: last run {run.get('outcome', 'none')}"
    jobs = run.get("failed_jobs") or []
    if jobs:
        text += f" in rule {jobs[0]['rule']}" + (f" (+{len(jobs) - 1} more)" if len(jobs) > 1 else "")
    return text


def format_status(summary: Mapping[str, Any]) -> str:
    """The status as the text an operator reads (and a notification carries)."""
    run = summary.get("last_run", {})
    lines = [f"floecast status of {summary.get('root')} at {summary.get('checked_at')}"]
    outcome = str(run.get("outcome", "none")).upper()
    if run.get("locked") and run.get("outcome") == "incomplete":
        outcome += " (locked: still running, or killed - then `snakemake --unlock`)"
    lines.append(f"last run: {outcome}  {run.get('log') or ''}  {run.get('progress') or ''}".rstrip())
    for job in run.get("failed_jobs", []):
        where = f", {job['wildcards']}" if job.get("wildcards") else ""
        lines.append(f"  failed rule {job['rule']} (jobid {job.get('jobid')}{where}): log {', '.join(job['logs']) or '-'}")
        if job.get("message"):
            lines.append(f"    message: {job['message']}")
        lines += [f"    | {text}" for text in job.get("log_tail", [])]
    if run.get("error"):
        lines.append(f"  error: {run['error']}")
    for hemi, part in summary.get("hemispheres", {}).items():
        models = part.get("models", {})
        lines.append(f"{hemi}:")
        lines.append(f"  models: production {models.get('production') or '-'}, staging {models.get('staging') or '-'}")
        for label in ("newest_forecast", "production_forecast"):
            forecast = part.get(label)
            text = f"{forecast['date']} (run {forecast['run']}) {forecast['path']}" if forecast else "-"
            lines.append(f"  {label.replace('_', ' ')}: {text}")
        data = part.get("data", {})
        if data:
            width = max(len(name) for name in data) + 2
            lines.append(f"  {'newest day'.ljust(width)}{'raw':<12}{'interim':<12}{'latency':<10}served by")
            for name, days in data.items():
                lag = days.get("latency_days")
                lines.append(
                    f"  {name.ljust(width)}{str(days.get('raw') or '-'):<12}{str(days.get('interim') or '-'):<12}"
                    f"{(f'{lag} days' if lag is not None else '-'):<10}{days.get('served_by') or '-'}"
                )
    poll = summary.get("poll")
    if poll:
        waiting = ", ".join(poll.get("waiting_for") or []) or "nothing"
        lines.append(
            f"last poll {poll.get('checked_at')}: init date {poll.get('target_date')}"
            f" {'ready' if poll.get('ready') else 'not ready'} (waiting for {waiting});"
            f" newest init date with all inputs {poll.get('resolved_date') or '-'}"
        )
        for name, day in (poll.get("newest") or {}).items():
            lag = (poll.get("latency_days") or {}).get(name)
            served = (poll.get("served_by") or {}).get(name)
            lines.append(f"  upstream {name}: {day or '-'}" + (f" ({lag} days behind, {served})" if day else ""))
    lines += [f"warning: {text}" for text in summary.get("warnings", [])]
    return "\n".join(lines)


def notify(
    summary_text: str,
    command: str | Sequence[str] | None,
    timeout: float = NOTIFY_TIMEOUT_S,
    subject_line: str | None = None,
) -> bool:
    """Run the notify command with the summary on stdin; True when it exited 0.

    Never raises: a failed notification is logged, and must not turn a forecast run's error
    into a second one. A string runs through the shell (``mail -s "$FLOECAST_SUBJECT" ops@...``),
    a list runs as is. On timeout the command's whole process group is killed.
    """
    if not command:
        log.info("notify: no command configured (notify.command); not sent")
        return False
    env = {**os.environ, "FLOECAST_SUBJECT": subject_line or "floecast status"}
    try:
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                command,
                shell=isinstance(command, str),
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group, so a timeout kills children too
            )
            try:
                process.communicate(summary_text.encode(), timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                log.warning("notify: %s timed out after %.0f s (killed)", command, timeout)
                return False
            output.seek(0)
            said = output.read()[-2000:].decode(errors="replace").strip()
    except Exception as err:  # OSError (no such command), broken pipe, ...: logged, never raised
        log.warning("notify: %s could not run: %s: %s", command, type(err).__name__, err)
        return False
    if process.returncode != 0:
        log.warning("notify: %s exited %d: %s", command, process.returncode, said)
        return False
    log.info("notify: sent with %s", command)
    return True


def notify_run(
    root: str | os.PathLike[str],
    config: Mapping[str, Any],
    snakemake_log: str | os.PathLike[str] | Sequence[str] | None = None,
) -> bool:
    """The Snakefile's onerror/onsuccess hook: status of that run, sent with ``notify.command``.

    Snakemake 9 hands the handler ``log`` as a list of paths; a string or None works too.
    Never raises.
    """
    settings = config.get("notify") or {}
    if isinstance(snakemake_log, list | tuple):
        snakemake_log = snakemake_log[0] if snakemake_log else None
    try:
        summary = status(root, config, snakemake_log)
        text, line = format_status(summary), subject(summary)
    except Exception as err:  # still tell the operator something
        log.warning("notify: status failed: %s", err)
        text = f"floecast: the workflow run ended; status failed ({type(err).__name__}: {err}); log {snakemake_log}"
        line = "floecast: run ended (status unavailable)"
    return notify(text + "\n", settings.get("command"), float(settings.get("timeout_s", NOTIFY_TIMEOUT_S)), line)
