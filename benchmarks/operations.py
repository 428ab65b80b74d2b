"""A month of daily operation, simulated: the real daily runner, day after day, on an injected clock.

``scripts/daily-run`` (poll, then Snakemake for the newest init date whose inputs are all there)
runs once per simulated day in a copy of the workflow, with ``FLOECAST_TODAY`` (read only by
``floecast.clock``) set to that day, against the local provider stand-ins of ``tests/servers``:
OSI SAF THREDDS (nominal files, 16 days behind) and FTP (fast-track files, 2 days behind), the
CDS (ERA5, 6 days behind) and ECMWF open data (the HRES run of yesterday). Each day the
providers publish what they would have by then, so fast-track files are replaced by nominal
ones 14 days later. The models are trained once, on the day before the first simulated day.

Demo size, on the real sources: the demo's grid (300 km, 36 x 36), channels, model, 3 members
and 30 leads, with shorter data: 2023-2026 instead of 2003-2020 (train 2023, validate 2024,
test 2025) and no CMIP6 pretraining (the stand-in ESGF is not part of the daily run).

Faults are injected with the servers' own fault queues and the machinery of
``tests/test_faults.py`` (a tmpfs for a full disk); each day's run that fails is run again
once, as cron's next try does, after the operator's fix where one is needed (room on the
disk). A fault is recovered when that day's forecast is issued and its own check holds.
At the end every forecast file and store part is checked with the project's readers
(NetCDF Fletcher-32 checksums and the forecast's layout, each store chunk against its
manifest).

    python benchmarks/operations.py [--days 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the provider stand-ins and the fault machinery of the tests

from servers.cds import CdsServer  # noqa: E402
from servers.opendata import OpendataServer  # noqa: E402
from servers.osisaf import OsisafServers  # noqa: E402
from servers.thredds import Fault as ThreddsFault  # noqa: E402

CDS_KEY = "00000000-ops-sim-0000"  # the stand-in CDS's key (a test value, not a secret)
FIRST_DAY = dt.date(2026, 2, 1)
DATA_START = dt.date(2023, 1, 1)
NOMINAL_LAG, FAST_TRACK_LAG, ERA5_LAG, HRES_LAG = 16, 2, 6, 1
ORAS5_LAG = 15  # days after a month ends before its ORAS5 fields are on the CDS (assumed: docs/data-sources.md)
WORKFLOW = ("Snakefile", "rules", "config", "envs", "report", "scripts", "profiles")
FAULTS = ("truncated_file", "provider_down", "never_delivered", "killed_job", "full_disk", "all_zero_sic")


def ops_config(servers: OsisafServers, opendata: OpendataServer, base: Path, start: dt.date) -> dict:
    """The config ``base`` (the demo's) on the real sources at the stand-ins' addresses, ``date: today``."""
    config = yaml.safe_load(base.read_text())
    production = yaml.safe_load((REPO / "config/config.yaml").read_text())
    years = start.year
    config.update(
        run="ops",
        date="today",
        data={"start": start.isoformat(), "end": None},
        sources={"sic": "osisaf", "atmos": "era5", "ocean": "oras5", "cmip6": "synthetic"},
        osisaf={**production["osisaf"], "servers": servers.servers, "known_bad_days": []},
        era5={"area_lat": production["era5"]["area_lat"], "realtime_url": opendata.base_url},
        cmip6={"runs": [], "years": config["cmip6"]["years"]},
        splits={"train": [years, years], "validate": [years + 1, years + 1], "test": [years + 2, years + 2]},
    )
    return config


class Providers:
    """The stand-ins, publishing what each provider has on a given day (with its latency)."""

    def __init__(self, root: Path, data_start: dt.date) -> None:
        self.data_start = data_start
        self.osisaf = OsisafServers(root / "osisaf")
        self.cds = CdsServer(root / "cds", key=CDS_KEY, polls_accepted=0, polls_running=0)
        self.opendata = OpendataServer()
        self.templates: dict[str, Path] = {}
        self.withheld: set[tuple[str, dt.date]] = set()  # (product, day) never published
        self.zeroed: set[dt.date] = set()  # fast-track days delivered as an all-zero field
        self.hres_runs: set[dt.date] = set()

    def listen_as_in(self, config: dict) -> None:
        """Listen on the ports a kept work folder's config names (a resumed simulation: same addresses)."""
        from urllib.parse import urlsplit

        self.osisaf.thredds.listen_port = urlsplit(config["osisaf"]["servers"]["thredds"]).port or 0
        self.osisaf.ftp.listen_port = urlsplit(config["osisaf"]["servers"]["ftp"]).port or 0
        self.opendata.listen_port = urlsplit(config["era5"]["realtime_url"]).port or 0

    def __enter__(self) -> Providers:
        self.osisaf.__enter__()
        self.cds.start()
        self.opendata.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.opendata.stop()
        self.cds.stop()
        self.osisaf.__exit__()

    def environment(self, workdir: Path) -> dict[str, str]:
        return {"CDSAPI_URL": self.cds.base_url, "CDSAPI_KEY": CDS_KEY, "CDSAPI_RC": str(workdir / "no-cdsapirc")}

    def relpath(self, product: str, day: dt.date) -> str:
        chain = self.osisaf.chain
        return self.osisaf.relpath(chain.product(product), "north", day)

    def path(self, product: str, day: dt.date) -> Path:
        chain = self.osisaf.chain
        return self.osisaf.server_for(chain.product(product)).path(self.relpath(product, day))

    def publish_sic(self, product: str, day: dt.date) -> None:
        if (product, day) in self.withheld or self.path(product, day).exists():
            return
        if product.endswith("fast-track") and day in self.zeroed:
            from floecast.grid import Ease2Grid

            grid = Ease2Grid("north", 1)
            zeros = np.zeros(grid.shape)
            self.osisaf.publish(product, "north", day, zeros, zeros.astype(np.int16), grid)
            return
        if product not in self.templates:
            self.templates[product] = self.osisaf.publish(product, "north", day)
            return
        self.osisaf.publish_copy(self.templates[product], product, "north", day)

    def advance(self, today: dt.date) -> None:
        """Publish everything the providers have on ``today`` (idempotent)."""
        chain = self.osisaf.chain
        nominal_end = today - dt.timedelta(days=NOMINAL_LAG)
        for day in pd.date_range(self.data_start, today - dt.timedelta(days=FAST_TRACK_LAG)).date:
            products = [p.name for p in chain.candidates(day) if p.serves(day)]
            primary, stand_ins = products[0], products[1:]
            if day <= nominal_end or not stand_ins:
                if day <= nominal_end:
                    self.publish_sic(primary, day)
            if stand_ins and day > nominal_end - dt.timedelta(days=30):  # fast-track files stay on the FTP a while
                self.publish_sic(stand_ins[-1], day)
        era5_end = today - dt.timedelta(days=ERA5_LAG)
        self.cds.era5_end = f"{era5_end:%Y-%m-%d}T23:00:00Z"
        # the newest month whose ORAS5 fields are out: the last month that ended ORAS5_LAG days ago
        oras5_end = pd.Timestamp(today - dt.timedelta(days=ORAS5_LAG - 1)) - pd.offsets.MonthEnd(1)
        self.cds.oras5_end = f"{oras5_end:%Y-%m-%d}T00:00:00Z"
        for day in pd.date_range(era5_end - dt.timedelta(days=3), today - dt.timedelta(days=HRES_LAG)).date:
            if day not in self.hres_runs:
                self.opendata.add_run(day)
                self.hres_runs.add(day)


def prepare_workdir(workdir: Path, config: dict) -> Path:
    """A copy of the workflow (the daily runner works in its own checkout) and the ops config."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, dirs_exist_ok=True)
        else:
            shutil.copy(source, workdir / name)
    configfile = workdir / "config" / "ops.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    return configfile


@dataclass
class Injected:
    """A fault's parts: during the run, the operator's fix before cron's next try, after the day,
    and the day's check; each optional. A check at the end of the month is ``final_<fault>``."""

    during: Callable[[subprocess.Popen], None] | None = None
    fix: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    check: Callable[[], tuple[bool, str]] | None = None


@dataclass
class DayRun:
    today: dt.date
    seconds: float
    status: int
    tries: int
    init: str | None = None
    newest_sic: str | None = None
    issued: bool = False
    fault: str | None = None
    recovered: bool | None = None
    note: str = ""


@dataclass
class Simulation:
    root: Path
    days: int = 30
    faults: dict[int, str] = field(default_factory=dict)  # simulated day index -> fault
    base: Path = REPO / "config" / "demo.yaml"  # the config whose sizes are simulated
    data_start: dt.date = DATA_START
    first_day: dt.date = FIRST_DAY
    resume: bool = False  # go on in a kept work folder from the day after the last in its runs.json
    log: Callable[[str], None] = lambda text: print(text, flush=True)

    def __post_init__(self) -> None:
        self.workdir = self.root / "ops"
        self.runs: list[DayRun] = []
        self.mounted: list[Path] = []

    # -- the daily runner --------------------------------------------------------------------

    def env(self, today: dt.date) -> dict[str, str]:
        env = dict(os.environ, FLOECAST_TODAY=today.isoformat(), **self.providers.environment(self.workdir))
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        return env

    def daily_run(self, today: dt.date, during: Callable[[subprocess.Popen], None] | None = None) -> tuple[int, float]:
        cmd = [str(self.workdir / "scripts/daily-run"), "config/ops.yaml", "profiles/default"]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env(today), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        watcher = threading.Thread(target=during, args=(proc,), daemon=True) if during else None
        if watcher:
            watcher.start()
        out, _ = proc.communicate(timeout=3600)
        if watcher:
            watcher.join(timeout=5)
        seconds = time.perf_counter() - started
        if proc.returncode:
            self.log(f"#   daily run {today}: status {proc.returncode} {out.decode()[-300:].strip()}")
        return proc.returncode, seconds

    def state(self) -> dict:
        return json.loads((self.workdir / "data/poll/state.json").read_text())

    def forecast(self, init: str) -> Path:
        return self.workdir / f"results/north/ops/forecasts/{init}.nc"

    # -- the month ------------------------------------------------------------------------------

    def run(self) -> None:
        self.days_list = [self.first_day + dt.timedelta(days=k) for k in range(self.days)]
        providers = Providers(self.root / "providers", self.data_start)
        saved = self.root / "runs.json"
        if self.resume:
            providers.listen_as_in(yaml.safe_load((self.workdir / "config" / "ops.yaml").read_text()))
            kept = json.loads(saved.read_text())
            self.setup_s = kept["setup_s"]
            self.runs = [DayRun(**{**r, "today": dt.date.fromisoformat(r["today"])}) for r in kept["runs"]]
        with providers:
            self.providers = providers
            for index, fault in self.faults.items():
                self.plan(index, fault)
            if not self.resume:
                config = ops_config(providers.osisaf, providers.opendata, self.base, self.data_start)
                self.configfile = prepare_workdir(self.workdir, config)
                setup_day = self.first_day - dt.timedelta(days=1)
                providers.advance(setup_day)
                started = time.perf_counter()
                status, _ = self.daily_run(setup_day)
                self.setup_s = time.perf_counter() - started
                if status:
                    raise RuntimeError(f"the setup run (training) failed with status {status}; see {self.workdir}/logs")
                self.log(f"# setup (ingest {self.data_start}..{setup_day}, training, first forecast): {self.setup_s:.0f} s")
            for index, today in enumerate(self.days_list):
                if index < len(self.runs):
                    continue
                self.day(index, today)
                runs = [{**r.__dict__, "today": r.today.isoformat()} for r in self.runs]
                saved.write_text(json.dumps({"setup_s": self.setup_s, "runs": runs}, indent=1))
            self.final_checks()
            self.validation = self.validate()
            self.unmount()

    def plan(self, index: int, fault: str) -> None:
        """Faults decided before the month: days that will never come, or come all zero."""
        today = self.first_day + dt.timedelta(days=index)
        if fault == "never_delivered":
            day = today - dt.timedelta(days=FAST_TRACK_LAG)
            self.providers.withheld |= {("OSI-438", day), ("OSI-438-fast-track", day)}
        elif fault == "all_zero_sic":
            self.providers.zeroed.add(today - dt.timedelta(days=FAST_TRACK_LAG))

    def day(self, index: int, today: dt.date) -> None:
        self.providers.advance(today)
        fault = self.faults.get(index)
        injected = getattr(self, f"inject_{fault}")(today) if fault else Injected()
        try:
            status, seconds = self.daily_run(today, injected.during)
            tries, total = 1, seconds
            if status != 0:
                if injected.fix:
                    injected.fix()
                status, seconds = self.daily_run(today)  # cron's next try
                tries, total = 2, total + seconds
        finally:
            if injected.after:
                injected.after()
        run = DayRun(today, total, status, tries, fault=fault)
        if status == 0:
            state = self.state()
            run.init, run.newest_sic = state["target_date"], state["newest"].get("north:sic:osisaf")
            run.issued = self.forecast(run.init).is_file()
        if fault:
            run.recovered, run.note = injected.check() if injected.check else (True, "")
            if not run.issued:
                run.recovered, run.note = False, f"no forecast; {run.note}"
        self.runs.append(run)
        lag = (today - dt.date.fromisoformat(run.newest_sic)).days if run.newest_sic else None
        self.log(
            f"# {today}: init {run.init} issued={run.issued} SIC lag {lag} d, {run.seconds:.0f} s, {run.tries} tries"
            + (f", fault {fault}: recovered={run.recovered} ({run.note})" if fault else "")
        )

    def final_checks(self) -> None:
        """The checks that need the days after a fault (a gap filled once days after it came)."""
        for run in self.runs:
            final = getattr(self, f"final_{run.fault}", None) if run.fault else None
            if final is None:
                continue
            ok, note = final(run.today)
            run.recovered = bool(run.recovered and ok)
            run.note += f"; {note}"
            self.log(f"# {run.today} {run.fault}: by the end of the month: recovered={run.recovered} ({note})")

    # -- faults -----------------------------------------------------------------------------------

    def inject_truncated_file(self, today: dt.date) -> Injected:
        """The nominal file that replaces a fast-track day today breaks off twice mid-transfer."""
        day = today - dt.timedelta(days=NOMINAL_LAG)
        rel = self.providers.relpath("OSI-438", day)
        server = self.providers.osisaf.thredds
        before = server.requests_for(rel)
        server.fail(rel, "truncate", times=3, fraction=0.4)  # HEADs are answered whole; GETs break off

        def check() -> tuple[bool, str]:
            raw = self.workdir / f"data/raw/osisaf/ice_conc/north/{day:%Y}/{day:%m}/{Path(rel).name}"
            with server._lock:
                left = len(server._faults.get(rel, []))
            served = self.providers.path("OSI-438", day).read_bytes()
            same = raw.is_file() and raw.read_bytes() == served
            return same and not left, f"{day}'s nominal file whole after {server.requests_for(rel) - before} requests"

        return Injected(check=check)

    def inject_provider_down(self, today: dt.date) -> Injected:
        """THREDDS answers 503 to every request all day (the nominal files); the FTP server is up."""
        server = self.providers.osisaf.thredds
        original = server._request
        answered: list[str] = []

        def down(rel: str, authorization: str | None):
            original(rel, authorization)
            answered.append(rel)
            return ThreddsFault("status", None, status=503)

        server._request = down  # type: ignore[method-assign]

        def after() -> None:
            server._request = original  # type: ignore[method-assign]

        def check() -> tuple[bool, str]:
            return bool(answered), f"{len(answered)} requests answered 503; the forecast from the fast-track files"

        return Injected(after=after, check=check)

    def final_provider_down(self, today: dt.date) -> tuple[bool, str]:
        day = today - dt.timedelta(days=NOMINAL_LAG)
        manifest = json.loads((self.workdir / f"data/raw/osisaf/ice_conc/north/{day:%Y}/{day:%m}.json").read_text())
        product = manifest["days"][day.isoformat()]["product"]
        return product == "OSI-438", f"{day} (due from THREDDS that day) served by {product}"

    def inject_never_delivered(self, today: dt.date) -> Injected:
        day = today - dt.timedelta(days=FAST_TRACK_LAG)

        def check() -> tuple[bool, str]:
            newest = self.state()["newest"]["north:sic:osisaf"]
            return newest < day.isoformat(), f"{day} never delivered: newest SIC day {newest}, the forecast waits a day"

        return Injected(check=check)

    def final_never_delivered(self, today: dt.date) -> tuple[bool, str]:
        day = today - dt.timedelta(days=FAST_TRACK_LAG)
        return self._filled(day, expected=True), f"{day} filled in time and flagged in the interim file"

    def inject_killed_job(self, today: dt.date) -> Injected:
        """SIGKILL to the first member prediction of the day's run."""
        killed: list[int] = []

        def during(proc: subprocess.Popen) -> None:
            deadline = time.monotonic() + 900
            while proc.poll() is None and time.monotonic() < deadline and not killed:
                for pid in _descendants_running(proc.pid, "floecast predict"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
                time.sleep(0.02)

        def check() -> tuple[bool, str]:
            return bool(killed), f"killed a member prediction (pid {killed[0]})" if killed else "no job was killed"

        return Injected(during=during, check=check)

    def inject_full_disk(self, today: dt.date) -> Injected:
        """The store's folder on a tmpfs with no room to spare: Snakemake removes the current year's part before
        its job runs, and the rebuilt part, a day longer, does not fit in the room the old one leaves."""
        obs = self.workdir / "data/store/north/obs"
        if not _mount_tmpfs(obs, free=0):
            return Injected(check=lambda: (False, "cannot mount a tmpfs here (needs root)"))
        self.mounted.append(obs)
        seen: dict[str, str] = {}

        def fix() -> None:  # the operator reads the message, looks at the part, and makes room
            seen["log"] = (self.workdir / f"logs/build_store_obs/north_{today:%Y}.log").read_text(errors="replace")
            part = obs / f"{today:%Y}.zarr"
            # Snakemake removes a directory output before its job runs; what is there must not be a partial part
            seen["part"] = (store_problem(part) or "valid") if part.exists() else "absent"
            seen["left"] = ", ".join(p.name for p in obs.iterdir() if p.name.startswith("."))
            subprocess.run(["mount", "-o", "remount,size=1g", str(obs)], check=True)

        def check() -> tuple[bool, str]:
            said = "no space left" in seen.get("log", "").lower()
            rebuilt = store_problem(obs / f"{today:%Y}.zarr")
            ok = said and seen.get("part") in ("valid", "absent") and not seen.get("left") and rebuilt is None
            return ok, (
                f"the store build stopped on the full disk ({'naming it' if said else 'NOT said'}), "
                f"the part under its name then {seen.get('part', 'not looked at')}, temporary folders left: "
                f"{seen.get('left') or 'none'}; rebuilt once room was made: {rebuilt or 'valid'}"
            )

        return Injected(fix=fix, check=check)

    def inject_all_zero_sic(self, today: dt.date) -> Injected:
        day = today - dt.timedelta(days=FAST_TRACK_LAG)

        def check() -> tuple[bool, str]:
            return self._filled(day, expected=True), f"{day}'s all-zero field rejected, the day filled and flagged"

        return Injected(check=check)

    def _filled(self, day: dt.date, expected: bool) -> bool:
        import xarray as xr

        interim = self.workdir / f"data/interim/north/obs/sic/{day:%Y}.nc"
        with xr.open_dataset(interim) as ds:
            if np.datetime64(day) not in ds["time"].values:
                return False
            sic = ds["sic"].sel(time=str(day)).values
            filled = bool(ds["filled"].sel(time=str(day)).values)
        return filled == expected and float(np.nanmax(sic)) > 0.5

    def unmount(self) -> None:
        for point in self.mounted:
            # keep what the tmpfs holds: copy it out, unmount, copy it back
            keep = point.with_name(point.name + ".kept")
            shutil.copytree(point, keep, symlinks=True)
            subprocess.run(["umount", str(point)], check=False)
            shutil.rmtree(point, ignore_errors=True)
            keep.rename(point)
        self.mounted = []

    # -- checks ---------------------------------------------------------------------------------

    def validate(self) -> dict[str, list[str]]:
        """Every forecast file and store part read back with the project's checks; the failures."""
        bad: dict[str, list[str]] = {"forecasts": [], "store": []}
        for path in sorted((self.workdir / "results/north/ops/forecasts").glob("*.nc")):
            problem = forecast_problem(path)
            if problem:
                bad["forecasts"].append(f"{path.name}: {problem}")
        for part in sorted((self.workdir / "data/store/north").glob("*/*.zarr")):
            problem = store_problem(part)
            if problem:
                bad["store"].append(f"{part.relative_to(self.workdir)}: {problem}")
        return bad

    def figures(self) -> dict[str, float]:
        issued = [r for r in self.runs if r.issued]
        lags = [(r.today - dt.date.fromisoformat(r.newest_sic)).days for r in self.runs if r.newest_sic]
        faults = [r for r in self.runs if r.fault]
        quiet = [(r.today - dt.date.fromisoformat(r.newest_sic)).days for r in self.runs if r.newest_sic and not r.fault]
        return {
            "ops_days": len(self.runs),
            "ops_forecasts_issued": len(issued),
            "ops_max_reference_lag_days": max(lags) if lags else float("nan"),
            # the never-delivered day holds the newest SIC day back by one on its own day
            "ops_max_reference_lag_days_fault_free": max(quiet) if quiet else float("nan"),
            "ops_daily_run_s": statistics.median(r.seconds for r in self.runs) if self.runs else float("nan"),
            "ops_faults_injected": len(faults),
            "ops_faults_recovered": sum(bool(r.recovered) for r in faults),
            "ops_corrupt_outputs": sum(len(v) for v in self.validation.values()),
        }


def forecast_problem(path: Path) -> str | None:
    """What is wrong with a forecast file, read through netCDF4 (every chunk's Fletcher-32 checked)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            if "sic" not in nc.variables:
                return "no sic variable (a failed forecast)"
            values = {name: nc[name][:] for name in nc.variables}  # reads every chunk: checksums verified
            sic = np.ma.filled(values["sic"].astype(float), np.nan)
            land = np.asarray(values["land"]) if "land" in values else None
            dims = nc["sic"].dimensions
            quantity = [str(q) for q in np.asarray(nc["quantity"][:])]
    except (OSError, RuntimeError, KeyError) as err:
        return f"unreadable ({err})"
    if dims != ("time", "leadtime", "quantity", "yc", "xc") or quantity != ["mean", "std"]:
        return f"layout {dims} {quantity}"
    mean, std = sic[:, :, 0], sic[:, :, 1]
    ocean = land == 0 if land is not None else np.isfinite(mean[0, 0])
    if not np.isfinite(mean[..., ocean]).all():
        return "missing values over the ocean"
    if np.nanmin(mean) < 0 or np.nanmax(mean) > 1 or np.nanmin(std) < 0:
        return "values outside 0..1 or a negative spread"
    return None


def store_problem(part: Path) -> str | None:
    """What is wrong with a store part: every array read against its chunk manifest (floecast.store)."""
    from floecast.store import PartReader, StoreIntegrityError

    try:
        reader = PartReader(part)
        for name in reader.group.array_keys():
            reader.read(name)
        reader.check_whole()
    except (StoreIntegrityError, OSError, ValueError) as err:
        return str(err)
    return None


def _descendants_running(root: int, pattern: str) -> list[int]:
    """The processes below ``root`` (this run's own) whose command line holds ``pattern``, shells left out."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    ours, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - ours
        ours |= frontier
    found = []
    for pid in sorted(ours):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pattern in cmdline and "bash -c" not in cmdline and not cmdline.startswith("/bin/sh"):
            found.append(pid)
    return found


def _mount_tmpfs(point: Path, free: int) -> bool:
    """A tmpfs on ``point`` holding what the folder held and ``free`` bytes more (root only)."""
    if os.geteuid() != 0:
        return False
    keep = point.with_name(point.name + ".before")
    shutil.copytree(point, keep, symlinks=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", str(point)], capture_output=True)
    if proc.returncode:
        shutil.rmtree(keep)
        return False
    shutil.copytree(keep, point, symlinks=True, dirs_exist_ok=True)
    shutil.rmtree(keep)
    used = shutil.disk_usage(point).used
    subprocess.run(["mount", "-o", f"remount,size={used + free}", str(point)], check=True)
    return True


def _benchmark_module(name: str):  # noqa: ANN202 - a module of benchmarks/
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def prod_cpu_daily_run(root: Path, members: int = 5, threads: int = 2) -> dict[str, float]:
    """One daily run's stages at production size on this CPU, for both hemispheres, through the CLIs the
    rules run: the current year's store part (from synthetic interim files written as benchmarks/store.py
    writes them: a whole year, 5 trend years before it; the same files for both hemispheres), each
    member's prediction with random weights of
    the production model, the ensemble file and the plots. Ingest and regridding (network and the
    providers' grids) are not in it: benchmarks/regrid.py times the regridding. Seconds by stage."""
    import torch

    from floecast.config import load, training_spec
    from floecast.grid import Ease2Grid
    from floecast.train import build_model

    store_bench = _benchmark_module("store")
    config = load(REPO / "config" / "config.yaml")
    spec = training_spec(config)
    inputs = store_bench.production_spec()
    year = store_bench.YEAR
    init = f"{year}-09-01"
    channels = json.dumps({"channels": config["channels"], "model": {"leads": config["model"]["leads"]}}, sort_keys=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    stages: dict[str, float] = {}

    def timed(stage: str, cmd: list[str]) -> None:
        started = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        stages[stage] = stages.get(stage, 0.0) + time.perf_counter() - started

    # not timed, the inputs: one set of synthetic interim files serves both hemispheres (their EASE2 grids
    # share the x/y coordinates the files carry; the values are synthetic either way)
    store_bench.GRID = Ease2Grid("north", 1)
    interim = root / "interim"
    statistics = interim / "store" / "statistics.nc"
    if statistics.is_file():  # written by an earlier run in this --keep folder
        sic = [interim / "sic" / f"{y}.nc" for y in range(year - inputs.sic_trend_years, year + 1)]
        fields = {f.variable: [interim / f.variable / f"{year}.nc"] for f in inputs.fields}
    else:
        sic, fields, statistics = store_bench.write_interim(interim, inputs)
    for hemi in config["hemispheres"]:
        folder = root / hemi
        folder.mkdir(parents=True, exist_ok=True)
        weights = []
        for member in range(members):
            torch.manual_seed(member)
            path = folder / f"member_{member}.pt"
            torch.save({"state_dict": build_model(spec).state_dict(), "spec": spec, "member": member}, path)
            weights.append(path)
        part = folder / "store" / f"{year}.zarr"
        variables = [arg for name, paths in fields.items() for arg in ("--field", name, *map(str, paths))]
        timed(
            "store",
            ["floecast", "store", "--hemisphere", hemi, "--coarsen", "1", "--spec", channels, "--year", str(year),
             "--sic", *map(str, sic), *variables, "--statistics", str(statistics), "--out", str(part)],
        )  # fmt: skip
        outputs = []
        for member, path in enumerate(weights):
            out = folder / "members" / f"member_{member}.nc"
            timed(
                "predict",
                ["floecast", "predict", "--weights", str(path), "--store", str(part), "--statistics", str(statistics),
                 "--member", str(member), "--date", init, "--spec", json.dumps(spec), "--threads", str(threads),
                 "--out", str(out)],
            )  # fmt: skip
            outputs.append(str(out))
        forecast = folder / "forecast.nc"
        timed(
            "combine",
            ["floecast", "combine", "--hemisphere", hemi, "--coarsen", "1", "--members", *outputs, "--store", str(part),
             "--statistics", str(statistics), "--run", "prod-cpu", "--members-expected", str(members),
             "--quorum", str(config["train"]["quorum"]), "--out", str(forecast)],
        )  # fmt: skip
        timed(
            "plot",
            ["floecast", "plot", "--hemisphere", hemi, "--coarsen", "1", "--forecast", str(forecast), "--members", *outputs,
             "--statistics", str(statistics), "--leads", *map(str, config["plots"]["leads"]),
             "--maps", str(folder / "maps.png"), "--extent", str(folder / "extent.png")],
        )  # fmt: skip
        problem = forecast_problem(forecast)
        if problem:
            raise RuntimeError(f"{forecast}: {problem}")
    return stages


DEFAULT_FAULTS = {
    2: "truncated_file",
    5: "provider_down",
    9: "never_delivered",
    13: "killed_job",
    17: "full_disk",
    21: "all_zero_sic",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument(
        "--faults",
        default=",".join(f"{k}:{v}" for k, v in DEFAULT_FAULTS.items()),
        help="DAY:FAULT,... (day index from 0; '' for none)",
    )
    parser.add_argument("--resume", action="store_true", help="go on in the --keep folder after its last day")
    parser.add_argument(
        "--prod-cpu", action="store_true", help="only one daily run's stages at production size on this CPU (minutes)"
    )
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="floecast-ops-", dir=os.environ.get("BENCH_TMP")))
    try:
        if args.prod_cpu:
            return prod_cpu(root)
        return month(root, args.days, args.faults, args.resume)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def prod_cpu(root: Path) -> int:
    stages = prod_cpu_daily_run(root)
    print(
        "# production size on this CPU: 432 x 432 (25 km), north and south, 5 members with random weights, 93 leads, "
        f"{os.cpu_count()} cores; synthetic interim files; ingest and regridding not included"
    )
    print(f"BENCH ops_daily_run_prod_cpu_s {sum(stages.values()):.1f} s")
    for stage, seconds in stages.items():
        print(f"BENCH ops_daily_run_prod_cpu_{stage}_s {seconds:.1f} s")
    return 0


def month(root: Path, days: int, fault_list: str, resume: bool = False) -> int:
    faults = {int(k): v for k, v in (item.split(":") for item in fault_list.split(",") if item) if int(k) < days}
    sim = Simulation(root, days, faults, resume=resume)
    try:
        sim.run()
    finally:
        sim.unmount()
    print(
        f"# demo size on the real sources (36 x 36, 3 members, 30 leads; data {DATA_START.year}-{FIRST_DAY.year}, "
        f"no CMIP6 pretraining), {days} days from {FIRST_DAY}, setup (ingest and training) {sim.setup_s:.0f} s"
    )
    figures = sim.figures()
    for name, value in figures.items():
        if name.endswith("_s"):
            print(f"BENCH {name} {value:.1f} s")
        else:
            print(f"BENCH {name} {value:g} {'days' if 'days' in name else 'count'}")
    for kind, problems in sim.validation.items():
        for problem in problems:
            print(f"# corrupt {kind}: {problem}")
    for run in sim.runs:
        if run.fault and not run.recovered:
            print(f"# not recovered: {run.today} {run.fault}: {run.note}")
    ok = figures["ops_forecasts_issued"] == figures["ops_days"] and figures["ops_corrupt_outputs"] == 0
    return 0 if ok and figures["ops_faults_recovered"] == figures["ops_faults_injected"] else 1


if __name__ == "__main__":
    sys.exit(main())
