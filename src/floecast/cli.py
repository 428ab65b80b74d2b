"""The ``floecast`` command: one subcommand per workflow step.

Every Snakemake rule runs one of these, so any step can be re-run by hand with the same
arguments (the runbook lists them). A subcommand imports its modules when it runs, never
here: each rule's conda env holds only what its own step imports (torch only where the
model runs, requests only where a download runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from floecast import __version__, layout

if TYPE_CHECKING:
    from floecast.channels import InputSpec

log = logging.getLogger("floecast")
POLL_NOT_YET = 3  # exit status of `floecast poll` when the inputs are not all there yet
# errors a step reports in one line (exit status 1) rather than with a traceback
EXPECTED_ERRORS = (ValueError, KeyError, FileNotFoundError, NotImplementedError, RuntimeError)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _spec(text: str) -> dict:
    """A training spec as JSON text or a JSON/YAML file (a whole config file works too)."""
    path = Path(text)
    if not text.lstrip().startswith("{") and path.exists():
        if path.suffix in (".yaml", ".yml"):
            from floecast.config import load, training_spec  # YAML, the schema: not in the rules' envs

            return training_spec(load(path))
        text = path.read_text()
    return json.loads(text)


def _month_bounds(year: int, month: int | None) -> tuple[dt.date, dt.date]:
    """First and last day of a month, or of the year when ``month`` is None."""
    if month is None:
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    first = dt.date(year, month, 1)
    return first, (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))


def _chain(args: argparse.Namespace):
    """The SIC product chain given as JSON (``--chain``; an ``osisaf`` config section), else the schema's."""
    from floecast.sources.sicchain import SicChain

    return SicChain.from_config(json.loads(args.chain)) if getattr(args, "chain", None) else SicChain.default()


def _ingest_sic(args: argparse.Namespace, grid, first: dt.date, last: dt.date) -> None:
    """Daily SIC files into the folder beside the manifest ``args.out``, then the manifest."""
    from floecast.io import atomic_path
    from floecast.sources import synthetic
    from floecast.sources.osisaf import fetch_sic_period, period_manifest

    chain = _chain(args)
    folder = Path(args.out).with_suffix("")
    if args.source == "synthetic":
        params = synthetic.SyntheticParams(seed=args.seed)
        synthetic.write_sic_days(folder, grid, first, last, params, chain, product=args.product)
    elif args.source == "osisaf":
        # OSI SAF delivers the 25 km grid whatever the configured grid; regrid coarsens it
        result = fetch_sic_period(
            chain, args.hemisphere, first, last, folder, known_bad_days=args.known_bad_days, product=args.product
        )
        log.info("OSI SAF %s %s: %s", args.hemisphere, folder, result.counts)
    else:
        raise SystemExit(f"floecast ingest sic: no client for source {args.source!r} in this version")
    manifest = period_manifest(folder, chain, args.hemisphere, args.source, first, last, __version__)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("%d daily files, %d missing days: %s", len(manifest["files"]), len(manifest["missing"]), args.out)


def _check_variable(args: argparse.Namespace) -> None:
    """``--variable`` is a catalogue variable served by the kind's source (a CMOR name for cmip6)."""
    from floecast.variables import by_cmip6_name, variable

    if args.kind == "cmip6":
        by_cmip6_name(args.variable)
        return
    item = variable(args.variable)
    if item.source != args.kind:
        raise ValueError(
            f"floecast ingest {args.kind}: {args.variable} comes from sources.{item.source}, not sources.{args.kind}"
        )


def _ingest_seas5(args: argparse.Namespace, grid, first: dt.date, last: dt.date) -> None:
    """SEAS5 starts (the 1st of each month of first..last) as GRIB files beside the manifest ``args.out``."""
    from floecast.io import atomic_path
    from floecast.sources import seas5

    folder = Path(args.out).with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    starts = seas5.start_dates(first, last)
    for init in starts:
        target = folder / seas5.raw_name(init)
        if args.source == "synthetic":
            params = seas5.SyntheticSeas5Params(members=args.members, seed=args.seed)
            seas5.write_synthetic_seas5(target, grid, init, args.leads, args.area_lat, params, args.grid_deg, args.seed)
        elif args.source == "cds":
            seas5.fetch_seas5(
                init, args.leads, args.hemisphere, target, area_lat=args.area_lat, system=args.system, grid_deg=args.grid_deg
            )
        else:
            raise SystemExit(f"floecast ingest seas5: no client for source {args.source!r}")
    manifest = {
        "source": args.source,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "files": [seas5.raw_name(init) for init in starts],
        "leads": args.leads,
        "floecast_version": __version__,
    }
    if args.source == "synthetic":
        manifest["label"] = seas5.SYNTHETIC_LABEL
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("SEAS5 (%s) %d starts -> %s", args.source, len(starts), folder)


def cmd_ingest(args: argparse.Namespace) -> None:
    from floecast.grid import Ease2Grid
    from floecast.sources import synthetic

    grid = Ease2Grid(args.hemisphere, args.coarsen)
    first, last = _month_bounds(args.year, args.month) if args.year else (None, None)
    if args.first_day and first:
        first = max(first, args.first_day)
    if args.kind == "seas5":
        _ingest_seas5(args, grid, first, min(last, args.last_day))
        return
    if args.kind == "sic":
        _ingest_sic(args, grid, first, min(last, args.last_day))
        return
    _check_variable(args)
    if args.source == "synthetic":
        params = synthetic.SyntheticParams(seed=args.seed)
        if args.kind == "atmos":
            synthetic.write_atmos_days(args.out, grid, args.variable, first, min(last, args.last_day), params)
            log.info("wrote %s %d to %s", args.variable, args.year, args.out)
        elif args.kind == "ocean":
            months = synthetic.write_ocean_year(args.out, grid, args.variable, args.year, min(last, args.last_day), params)
            log.info("wrote %d months of %s %d to %s", months, args.variable, args.year, args.out)
        else:
            member_params = synthetic.cmip6_like_params(args.seed, args.member_index)
            synthetic.write_cmip6_like_run(
                args.out, grid, args.variable, args.years[0], args.years[1], args.model, args.member, member_params
            )
            log.info("wrote CMIP6-like %s %s %s to %s", args.model, args.member, args.variable, args.out)
    elif args.kind == "atmos" and args.source == "era5":
        from floecast.sources.atmos import fetch_atmos_days

        fetch_atmos_days(
            args.variable,
            args.hemisphere,
            first,
            min(last, args.last_day),
            args.out,
            area_lat=args.area_lat,
            realtime_url=args.realtime_url,
        )
        log.info("ERA5 %s %s %d -> %s", args.variable, args.hemisphere, args.year, args.out)
    elif args.kind == "ocean" and args.source == "oras5":
        from floecast.sources.oras5 import fetch_oras5_year

        fetch_oras5_year(args.variable, args.year, args.hemisphere, min(last, args.last_day), args.out)
    elif args.kind == "cmip6" and args.source == "esgf":
        from floecast.sources.cmip6 import assemble_run
        from floecast.sources.esgf import DEFAULT_INDEX_URL, fetch_variable

        downloads = Path(args.out).parent / "files"  # shared by both hemispheres' jobs
        paths = fetch_variable(
            args.base_url or DEFAULT_INDEX_URL, args.model, args.member, args.variable, args.years[0], args.years[1], downloads
        )
        assemble_run(paths, args.variable, args.years[0], args.years[1], args.hemisphere, args.out)
        log.info("ESGF %s %s %s: %d files -> %s", args.model, args.member, args.variable, len(paths), args.out)
    else:
        raise SystemExit(f"floecast ingest {args.kind}: no client for source {args.source!r} in this version")


def cmd_regrid(args: argparse.Namespace) -> None:
    from floecast import preprocess
    from floecast.grid import Ease2Grid

    grid = Ease2Grid(args.hemisphere, args.coarsen)
    layout_kind = "cmip6" if args.cmip6 else args.layout
    if args.variable == "seas5":
        from floecast.seas5_benchmark import regrid_seas5

        manifests = [json.loads(Path(p).read_text()) for p in args.raw]
        files = [Path(p).with_suffix("") / name for p, m in zip(args.raw, manifests, strict=True) for name in m["files"]]
        regrid_seas5(files, args.out, grid, manifests[0]["source"], cache_dir=args.weights_cache)
        log.info("wrote %s (%d SEAS5 starts)", args.out, len(files))
        return
    if args.variable == "sic":
        if layout_kind == "cmip6":
            preprocess.regrid_cmip6_sic(args.raw[0], args.out, grid, cache_dir=args.weights_cache)
        else:
            # manifests of ingest_sic name the folders holding the files and the period asked for
            manifests = [json.loads(Path(p).read_text()) for p in args.raw if p.endswith(".json")]
            folders = [Path(p).with_suffix("") if p.endswith(".json") else Path(p) for p in args.raw]
            period = None
            if manifests:
                period = (
                    min(dt.date.fromisoformat(m["first_day"]) for m in manifests),
                    max(dt.date.fromisoformat(m["last_day"]) for m in manifests),
                )
            mapping = None
            if args.mapping:
                from floecast.consistency import SicMapping

                mapping = SicMapping.load(args.mapping, args.map_products)
            preprocess.regrid_sic_year(folders, args.out, grid, period, _chain(args), mapping)
    else:
        period = (args.first_day, args.last_day) if args.first_day and args.last_day else None
        preprocess.regrid_field(
            args.raw, args.out, grid, args.variable, layout_kind, args.partner or (), cache_dir=args.weights_cache, period=period
        )
    log.info("wrote %s", args.out)


def _channels(args: argparse.Namespace) -> InputSpec:
    from floecast.channels import InputSpec

    spec = _spec(args.spec)
    return InputSpec.from_config(spec["channels"], spec["model"]["leads"])


def _field_files(args: argparse.Namespace, inputs: InputSpec) -> dict[str, list[str]]:
    """The interim files of each variable the field channels use (``--field NAME FILE...``; an error
    names the one missing, unless ``--without`` lists it)."""
    given = {name: paths for name, *paths in args.field or []}
    without = set(getattr(args, "without", None) or [])
    for channel in inputs.fields:
        if channel.variable not in given and channel.variable not in without:
            raise SystemExit(
                f"floecast {args.command}: the channels use {channel.variable}: give --field {channel.variable} FILE..."
            )
    return given


def cmd_statistics(args: argparse.Namespace) -> None:
    from floecast import preprocess

    inputs = _channels(args)
    preprocess.fit_statistics(args.sic, _field_files(args, inputs), args.out, inputs.fields)
    log.info("wrote %s from %d training years", args.out, len(args.sic))


def cmd_store(args: argparse.Namespace) -> None:
    from floecast.grid import Ease2Grid
    from floecast.store import build_year_store

    grid = Ease2Grid(args.hemisphere, args.coarsen)
    inputs = _channels(args)
    digest = build_year_store(
        args.year,
        args.sic,
        _field_files(args, inputs),
        args.statistics,
        args.out,
        inputs,
        args.hemisphere,
        grid.cell_area_km2,
        without=args.without or (),
    )
    log.info("wrote %s (sha256 %s)", args.out, digest)


def cmd_train(args: argparse.Namespace) -> None:
    from floecast.train import record_failed_member, train_member

    spec = _spec(args.spec)
    try:
        meta = train_member(spec, args.member, args.store, args.pretrain_store, args.out_dir, args.threads, args.statistics)
    except Exception as err:
        if not args.record_failure:
            raise
        # the last attempt: the member is left out of the ensemble (within its quorum) instead
        # of stopping every forecast that needs it
        log.exception("member %d failed for good; recording the failure", args.member)
        record_failed_member(spec, args.member, args.out_dir, f"{type(err).__name__}: {err}")
        return
    log.info(
        "member %d: %d fine-tuning epochs, best validation loss %.5f, %.0f s",
        args.member,
        meta["epochs_finetune"],
        meta["best_val_loss"],
        meta["train_seconds_this_run"],
    )


def cmd_predict(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from floecast.channels import InputSpec
    from floecast.dataset import SampleStore
    from floecast.predict import predict_member
    from floecast.seas5_benchmark import hindcast_init_dates

    torch.set_num_threads(args.threads)
    expected = _spec(args.spec) if args.spec else None
    if args.date:
        dates = [args.date]
    else:
        # the split's dates by the config's spec where given (predict_member refuses weights of another)
        spec = expected or torch.load(args.weights, map_location="cpu", weights_only=True)["spec"]
        store = SampleStore.open(args.store, InputSpec.from_config(spec["channels"], spec["model"]["leads"]), args.statistics)
        years = tuple(spec["splits"][args.split])
        candidates = store.init_dates(years)  # type: ignore[arg-type]
        chosen = hindcast_init_dates(candidates, args.stride, month_starts=args.month_starts)
        dates = [d.date() for d in pd.DatetimeIndex(chosen)]
    predict_member(args.weights, args.store, dates, args.out, args.member, args.statistics, expected, args.members)
    log.info("wrote %s (%d init dates)", args.out, len(dates))


def cmd_calibrate(args: argparse.Namespace) -> None:
    from floecast.calibrate import spread_factors, write_factors

    factors = spread_factors(args.members, args.store, args.statistics)
    write_factors(args.out, factors, args.members, args.fitted_on)
    log.info("spread factors by lead: %s", " ".join(f"{f:.2f}" for f in factors))


def cmd_combine(args: argparse.Namespace) -> None:
    from floecast.combine import combine_forecast
    from floecast.grid import Ease2Grid
    from floecast.inputs import input_provenance

    atmos = dict(item.split("=", 1) for item in args.atmos_raw)
    sources = json.loads(args.sources)
    combine_forecast(
        args.members,
        args.store,
        Ease2Grid(args.hemisphere, args.coarsen),
        args.run,
        args.out,
        args.statistics,
        members_expected=args.members_expected,
        config_hash=args.config_hash,
        metadata=dict(m.split("=", 1) for m in args.metadata) or None,
        quorum=args.quorum,
        spread=args.spread,
        inputs=lambda init: input_provenance(init, args.sic_manifests, atmos, sources),
    )
    log.info("wrote %s", args.out)


def _export_community(args: argparse.Namespace) -> None:
    from floecast import community

    if not args.members:
        raise SystemExit("floecast export: --members-out, --sipn-south and --sio-table need --members (the member files)")
    if args.members_out:
        community.members_file(args.forecast, args.members, args.members_out)
        log.info("wrote %s", args.members_out)
    if args.sipn_south:
        files = community.sipn_south(args.forecast, args.members, args.sipn_south, args.group)
        log.info("wrote %d SIPN South files to %s", len(files), args.sipn_south)
    if args.sio_table:
        if not args.sio_sip:
            raise SystemExit("floecast export: --sio-table needs --sio-sip (the SIP maps)")
        community.sea_ice_outlook(args.forecast, args.members, args.sio_table, args.sio_sip)
        log.info("wrote %s and %s", args.sio_table, args.sio_sip)


def cmd_export(args: argparse.Namespace) -> None:
    from floecast.export import to_geotiff, to_latlon

    community = (args.members_out, args.sipn_south, args.sio_table)
    if not (args.geotiff_dir or args.latlon or any(community)):
        raise SystemExit("floecast export: give --geotiff-dir, --latlon, --members-out, --sipn-south or --sio-table")
    if any(community):
        _export_community(args)
    if args.geotiff_dir:
        log.info("wrote %d GeoTIFFs to %s", len(to_geotiff(args.forecast, args.geotiff_dir, args.leads)), args.geotiff_dir)
    if args.latlon:
        to_latlon(args.forecast, args.latlon, args.resolution, args.lat_limit, args.method)
        log.info("wrote %s", args.latlon)


def cmd_scorecard(args: argparse.Namespace) -> None:
    from floecast.plots import plot_month_heatmap, plot_reliability, plot_skill
    from floecast.verify import scorecard, skill_summary

    table = scorecard(
        args.members,
        args.store,
        args.out,
        args.statistics,
        args.spread,
        seas5=args.seas5,
        reliability_csv=args.reliability,
        regions_csv=args.regions,
        train_store=args.train_store,
    )
    if args.plot:
        plot_skill(args.out, args.plot)
    if args.reliability and args.reliability_plot:
        plot_reliability(args.reliability, args.reliability_plot)
    if args.month_heatmap:
        plot_month_heatmap(args.out, args.month_heatmap)
    for line in skill_summary(table):
        print(line)


def cmd_animate(args: argparse.Namespace) -> None:
    from floecast.animate import animate_forecast, animate_inputs

    if args.kind == "forecast":
        if not args.forecast:
            raise SystemExit("floecast animate forecast: give --forecast")
        frames = animate_forecast(args.forecast, args.out, fps=args.fps or 4)
    else:
        if not (args.interim and args.first and args.last):
            raise SystemExit("floecast animate inputs: give --interim, --first and --last")
        frames = animate_inputs(args.interim, args.first, args.last, args.out, fps=args.fps or 8)
    log.info("wrote %s (%d frames)", args.out, frames)


def cmd_egress(args: argparse.Namespace) -> None:
    from floecast import egress

    options = json.loads(args.storage_options) if args.storage_options else None
    metadata = dict(item.split("=", 1) for item in args.metadata)
    try:
        # publish logs what it did (published, or already there); a refusal is not retried
        manifest = egress.publish(
            args.files, args.url, key=args.key, force=args.force, metadata=metadata, storage_options=options
        )
    except egress.PublishConflictError as err:
        raise SystemExit(
            f"floecast egress: {err} (floecast egress --force; in the workflow: --config egress='{{force: true}}')"
        ) from None
    if args.receipt:
        from floecast.io import atomic_path

        with atomic_path(args.receipt) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2))


def cmd_plot(args: argparse.Namespace) -> None:
    from floecast.grid import Ease2Grid
    from floecast.plots import plot_extent, plot_maps

    plot_maps(args.forecast, args.leads, args.maps)
    grid = Ease2Grid(args.hemisphere, args.coarsen)
    plot_extent(args.forecast, args.members, args.statistics, grid.cell_area_km2, args.extent)
    log.info("wrote %s and %s", args.maps, args.extent)


def cmd_poll(args: argparse.Namespace) -> int:
    from floecast.config import load
    from floecast.poll import poll

    config = load(args.config)
    state = poll(config, args.date, args.state, root=args.root, max_lag_days=args.max_lag_days)
    print(json.dumps(state, indent=2))
    lags = ", ".join(
        f"{name} {day} ({state['served_by'][name]}, {state['latency_days'][name]} days)" for name, day in state["newest"].items()
    )
    print(f"newest days: {lags}", file=sys.stderr)
    print(
        f"newest init date with all inputs: {state['resolved_date']}; init date {state['target_date']} "
        f"{'ready' if state['ready'] else 'not ready'}",
        file=sys.stderr,
    )
    return 0 if state["ready"] else POLL_NOT_YET


def cmd_promote(args: argparse.Namespace) -> int:
    from floecast import deploy

    try:
        deploy.promote(args.root, args.hemisphere, args.run, force=args.force, tolerance=args.tolerance)
    except deploy.GateFailedError as err:
        log.error("%s", err)
        return deploy.EXIT_GATE_FAILED
    except deploy.NotComparableError as err:
        log.error("%s", err)
        return deploy.EXIT_NOT_COMPARABLE
    return 0


def cmd_stage(args: argparse.Namespace) -> None:
    from floecast import deploy

    previous = deploy.stage(args.root, args.hemisphere, args.run)
    print(f"{args.hemisphere}: staging -> {args.run} (was {previous or 'none'})")


def cmd_rollback(args: argparse.Namespace) -> None:
    from floecast import deploy

    before = deploy.current(args.root, args.hemisphere)["production"]
    run = deploy.rollback(args.root, args.hemisphere)
    print(f"{args.hemisphere}: production -> {run} (rolled back from {before})")


def cmd_deployed(args: argparse.Namespace) -> None:
    from floecast import deploy

    models = Path(args.root).glob(layout.fill(layout.MODELS_DIR, hemi="*"))
    hemispheres = args.hemisphere or sorted(p.name for p in models if p.is_dir())
    shown = {}
    for hemi in hemispheres:
        entries = deploy.history(args.root, hemi)
        shown[hemi] = {**deploy.current(args.root, hemi), "history": entries[-args.history :] if args.history else []}
    print(json.dumps(shown, indent=2))


def cmd_status(args: argparse.Namespace) -> None:
    from floecast.config import load
    from floecast.status import format_status, status

    summary = status(args.root, load(args.config), args.log[0] if args.log else None)
    print(json.dumps(summary, indent=2) if args.json else format_status(summary))


def cmd_notify(args: argparse.Namespace) -> int:
    from floecast.config import load
    from floecast.status import format_status, notify, status, subject

    config = load(args.config)
    settings = config.get("notify") or {}
    summary = status(args.root, config, args.log[0] if args.log else None)
    text = format_status(summary)
    command = args.command or settings.get("command")
    if not command:
        print(text)
        log.warning("no notify command (config notify.command or --command): the status is printed only")
        return 0
    return 0 if notify(text + "\n", command, float(settings.get("timeout_s", 60)), subject(summary)) else 1


def cmd_check_data(args: argparse.Namespace) -> int:
    from floecast import checkdata
    from floecast.grid import Ease2Grid

    raw, interim, store = list(args.raw or []), list(args.interim or []), list(args.store or [])
    if args.root and not (raw or interim or store):  # by hand: the workflow's files (floecast.layout)
        hemi = args.hemisphere
        raw_dir = layout.path(args.root, layout.RAW_SIC_DIR, sic_source=args.source, hemi=hemi)
        raw = sorted(raw_dir.glob("*.json")) + sorted(raw_dir.glob("*/*.json"))  # {period}: YYYY or YYYY/MM
        interim = sorted(layout.path(args.root, layout.INTERIM_OBS_DIR, hemi=hemi, variable="sic").glob("*.nc"))
        store = sorted(layout.path(args.root, layout.STORE_OBS, hemi=hemi, year="*").parent.glob("*.zarr"))
    if not (raw or interim or store):
        raise SystemExit("floecast check-data: nothing to check (give --raw/--interim/--store or --root)")
    settings = checkdata.CheckSettings(
        nan_share_max=args.nan_share_max,
        jump_sigma=args.jump_sigma,
        jump_window_days=args.jump_window_days,
        jump_min_km2=args.jump_min_km2,
        known_bad_days=tuple(args.known_bad_days),
    )
    area = Ease2Grid(args.hemisphere, args.coarsen).cell_area_km2
    report = checkdata.check_data(raw, interim, store, area, settings, args.hemisphere, _chain(args))
    checkdata.write_outputs(report, args.csv, args.plot, args.propose)
    log.info(
        "checked %d raw manifests, %d interim files, %d store parts: %d errors, %d findings",
        len(raw), len(interim), len(store), len(report.errors), len(report.findings),
    )  # fmt: skip
    proposed = report.bad_days()
    if proposed:
        print("proposed osisaf.known_bad_days entries: [" + ", ".join(f'"{d}"' for d in proposed) + "]")
    if report.errors:
        log.error("the data must not be used as they are:\n%s", checkdata.error_summary(report))
        return 1
    return 0


def cmd_check_cds(args: argparse.Namespace) -> None:
    from floecast.sources.era5 import check_cds_key

    print(check_cds_key(timeout_s=args.timeout, attempts=args.attempts))


def cmd_check_config(args: argparse.Namespace) -> None:
    import yaml

    from floecast.config import load, resolve_today

    config = load(args.config)
    if (yaml.safe_load(Path(args.config).read_text()) or {}).get("date", "today") == "today":
        init, why = resolve_today(config)
        print(f"date: today -> {init} ({why})", file=sys.stderr)
    print(json.dumps(config, indent=2, default=str))


def cmd_today(args: argparse.Namespace) -> None:
    from floecast import clock

    print(clock.today().isoformat())


def cmd_sic_consistency(args: argparse.Namespace) -> None:
    from floecast.consistency import consistency_report, day_files

    chain = _chain(args)
    folders = {
        role: [Path(p).with_suffix("") if p.endswith(".json") else Path(p) for p in paths]
        for role, paths in (("reference", args.reference_raw), ("candidate", args.candidate_raw))
    }
    reference = day_files(folders["reference"], chain, args.hemisphere, args.reference)
    candidate = day_files(folders["candidate"], chain, args.hemisphere, args.candidate)
    table = consistency_report(
        reference,
        candidate,
        (args.reference, args.candidate),
        (args.first_day, args.last_day),
        args.table,
        args.plot,
        args.mapping,
    )
    log.info(
        "%s vs %s: %d months; mean bias %.2f %% points", args.candidate, args.reference, len(table), table["bias_pct"].mean()
    )


def _grid_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hemisphere", choices=["north", "south"], required=True)
    p.add_argument("--coarsen", type=int, default=1, help="EASE2 block coarsening factor (1 = 25 km)")


def _field_args(p: argparse.ArgumentParser, which: str) -> None:
    p.add_argument(
        "--field",
        nargs="+",
        action="append",
        metavar=("NAME", "FILE"),
        help=f"a catalogue variable the channels use and its interim files {which} (repeat for each)",
    )


def build_parser() -> argparse.ArgumentParser:
    from floecast.variables import CATALOGUE  # no dependency: the catalogue gives the choices

    parser = argparse.ArgumentParser(prog="floecast", description=__doc__)
    parser.add_argument("--version", action="version", version=f"floecast {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="fetch one period of one source into data/raw")
    p.add_argument(
        "kind",
        choices=["sic", "atmos", "ocean", "cmip6", "seas5"],
        help="the config key under sources (atmos: ERA5, ocean: ORAS5, seas5: SEAS5 starts)",
    )
    p.add_argument("--source", required=True)
    _grid_args(p)
    p.add_argument("--year", type=int, help="year to fetch (sic, atmos)")
    p.add_argument("--month", type=int, help="month to fetch (sic; default: the whole year)")
    p.add_argument("--last-day", type=_date, default=dt.date.max, help="last day to fetch in that year")
    p.add_argument("--variable", help="a catalogue variable (floecast/variables.py; atmos, ocean) or its CMOR name (cmip6)")
    p.add_argument("--model", help="CMIP6 source_id")
    p.add_argument("--member", help="CMIP6 variant_label")
    p.add_argument("--member-index", type=int, default=0, help="position of the CMIP6 run in the config (seeds it)")
    p.add_argument("--years", type=int, nargs=2, help="first and last year (cmip6)")
    p.add_argument("--seed", type=int, default=42, help="seed of the synthetic source")
    p.add_argument("--first-day", type=_date, help="first day to fetch in that year")
    p.add_argument("--base-url", help="service address of the ESGF index (cmip6)")
    p.add_argument("--chain", help="sic: the SIC product chain, an osisaf config section as JSON (default: the schema's)")
    p.add_argument("--product", help="sic: fetch only this product of the chain, whichever serves the days (overlap)")
    p.add_argument("--known-bad-days", nargs="*", default=[], help="provider days never to use (YYYY-MM-DD)")
    p.add_argument("--area-lat", type=float, default=15.0, help="ERA5: fetch poleward of this latitude")
    p.add_argument("--realtime-url", help="ERA5: ECMWF open-data address for the days ERA5 lacks (none: ERA5 only)")
    p.add_argument("--leads", type=int, default=93, help="SEAS5: days after each start to fetch (leads 1..N)")
    p.add_argument("--system", default="auto", help="SEAS5: CDS system (5, 51, or auto: by init date)")
    p.add_argument("--grid-deg", type=float, help="SEAS5: grid spacing asked of the CDS (default: native 1 degree)")
    p.add_argument("--members", type=int, default=5, help="SEAS5 synthetic: members to make")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("regrid", help="raw file(s) -> one EASE2 interim file")
    p.add_argument(
        "variable", choices=[*CATALOGUE, "seas5"], help="a variable of the catalogue (floecast/variables.py), or seas5"
    )
    _grid_args(p)
    p.add_argument(
        "--raw", nargs="+", required=True, help="raw file(s), the folders of a year's daily SIC files, or SEAS5 manifests"
    )
    p.add_argument("--chain", help="sic: the SIC product chain, an osisaf config section as JSON (default: the schema's)")
    p.add_argument("--mapping", help="sic: quantile mapping (floecast sic-consistency) applied to --map-products' days")
    p.add_argument("--map-products", nargs="*", default=[], help="sic: names of the products the mapping applies to")
    p.add_argument("--layout", choices=["era5", "oras5", "cmip6"], default="era5", help="the raw files' layout (default era5)")
    p.add_argument("--cmip6", action="store_true", help="the raw file is a CMIP6 (CMOR) file (= --layout cmip6)")
    p.add_argument("--partner", nargs="+", help="the other vector component's raw file(s) (to rotate lat/lon winds to the grid)")
    p.add_argument("--first-day", type=_date, help="first day to write (monthly sources: the days to interpolate to)")
    p.add_argument("--last-day", type=_date, help="last day to write")
    p.add_argument("--weights-cache", help="folder caching the regridding weights per source grid")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_regrid)

    p = sub.add_parser("statistics", help="masks, climatologies, normalisation from training years")
    p.add_argument("--spec", required=True, help="training spec (its channels): JSON text, a JSON file, or a config YAML")
    p.add_argument("--sic", nargs="+", required=True, help="interim sic files of the training years")
    _field_args(p, "of the training years")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_statistics)

    p = sub.add_parser("store", help="build one year of a dataset's zarr store (<year>.zarr)")
    _grid_args(p)
    p.add_argument("--spec", required=True, help="training spec (its channels): JSON text, a JSON file, or a config YAML")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--sic", nargs="+", required=True, help="interim sic files of the year and the trend's years before it")
    _field_args(p, "covering the year")
    p.add_argument("--without", nargs="*", default=[], help="variables with no source here (set to their mean: 0)")
    p.add_argument("--statistics", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_store)

    p = sub.add_parser("train", help="train one ensemble member")
    p.add_argument("--spec", required=True, help="training spec: JSON text, a JSON file, or a config YAML")
    p.add_argument("--member", type=int, required=True)
    p.add_argument("--store", nargs="+", required=True, help="the store's yearly parts (<year>.zarr) or their folder")
    p.add_argument("--statistics", help="statistics.nc (default: data/store/<hemi>/statistics.nc beside the parts)")
    p.add_argument("--pretrain-store", nargs="*", default=[], help="CMIP6 stores' yearly parts (one folder per run)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", required=True)
    p.add_argument(
        "--record-failure",
        action="store_true",
        help="on an error, write a failed-member record (weights.pt, meta.json) and exit 0: the ensemble goes on without it",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="one member's forecast for a date, or for every hindcast date of a split")
    p.add_argument("--weights", required=True)
    p.add_argument("--store", nargs="+", required=True, help="the store's yearly parts (<year>.zarr) or their folder")
    p.add_argument("--statistics", help="statistics.nc (default: data/store/<hemi>/statistics.nc beside the parts)")
    p.add_argument("--member", type=int, required=True)
    p.add_argument(
        "--members",
        type=int,
        help="the ensemble's size (train.members): member k of n forecasts the quantile (k + 0.5) / n of a "
        "distributional member (model.ensemble.methods)",
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--date", type=_date, help="init date")
    group.add_argument("--split", choices=["validate", "test"], help="hindcast over this split's years")
    p.add_argument("--stride", type=int, default=7, help="days between hindcast init dates")
    p.add_argument(
        "--month-starts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the 1st of each month to the hindcast init dates (SEAS5's starts; default: yes)",
    )
    p.add_argument(
        "--spec", help="the training spec the weights must have (JSON or a config file): weights of another are refused"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("calibrate", help="validation hindcast members -> per-lead spread factors (JSON)")
    p.add_argument("--members", nargs="+", required=True)
    p.add_argument("--store", nargs="+", required=True, help="the store's yearly parts (<year>.zarr) or their folder")
    p.add_argument("--statistics", help="statistics.nc (default: data/store/<hemi>/statistics.nc beside the parts)")
    p.add_argument("--fitted-on", default="validation years", help="recorded in the file, e.g. 2015-2016")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("combine", help="members -> the CF ensemble forecast file")
    _grid_args(p)
    p.add_argument("--members", nargs="+", required=True)
    p.add_argument("--store", nargs="+", required=True, help="the store's yearly parts (<year>.zarr) or their folder")
    p.add_argument("--statistics", help="statistics.nc (default: data/store/<hemi>/statistics.nc beside the parts)")
    p.add_argument("--run", required=True)
    p.add_argument("--members-expected", type=int, help="members the run was meant to have (train.members)")
    p.add_argument("--quorum", type=int, default=1, help="fewest members with forecasts to make the file from")
    p.add_argument("--spread", help="spread calibration (floecast calibrate) applied to the std and SIP")
    p.add_argument("--config-hash", help="sha256 of the training spec")
    p.add_argument("--sic-manifests", nargs="*", default=[], help="raw SIC manifests: the newest input day and its product")
    p.add_argument("--atmos-raw", nargs="*", default=[], metavar="VAR=FILE", help="raw atmospheric files (newest day, expver)")
    p.add_argument("--sources", default="{}", help="the config's sources as JSON (synthetic inputs are said so)")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="ACDD attribute, e.g. license=CC-BY-4.0")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_combine)

    p = sub.add_parser(
        "export", help="forecast -> GeoTIFFs, a lat/lon NetCDF, per-member output, SIPN South or Sea Ice Outlook files"
    )
    p.add_argument("--forecast", required=True)
    p.add_argument("--geotiff-dir")
    p.add_argument("--leads", type=int, nargs="+", help="GeoTIFF leads (default: all)")
    p.add_argument("--latlon", help="output NetCDF on a regular lat/lon grid")
    p.add_argument("--resolution", type=float, default=0.25, help="lat/lon spacing, degrees")
    p.add_argument("--lat-limit", type=float, help="equatorward edge, absolute degrees (default: the grid's)")
    p.add_argument("--method", choices=["linear", "nearest"], default="linear")
    p.add_argument("--members", nargs="+", help="the forecast's member files (for the modes below)")
    p.add_argument("--members-out", help="the forecast with its members' SIC added (NetCDF)")
    p.add_argument("--sipn-south", help="folder for the SIPN South submission (Southern Hemisphere)")
    p.add_argument("--group", default="floecast", help="SIPN South group name in the file names")
    p.add_argument("--sio-table", help="Sea Ice Outlook: monthly-mean extent per member (CSV; Northern Hemisphere)")
    p.add_argument("--sio-sip", help="Sea Ice Outlook: SIP maps of the monthly means (NetCDF)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("scorecard", help="hindcast members -> scorecard.csv (and a skill plot)")
    p.add_argument("--members", nargs="+", required=True)
    p.add_argument("--store", nargs="+", required=True, help="the store's yearly parts (<year>.zarr) or their folder")
    p.add_argument("--statistics", help="statistics.nc (default: data/store/<hemi>/statistics.nc beside the parts)")
    p.add_argument("--out", required=True)
    p.add_argument("--plot", help="skill by lead (PNG): RMSE, binary accuracy and IIEE where the scorecard has them")
    p.add_argument("--month-heatmap", help="RMSE of the ensemble mean by target month and lead (PNG)")
    p.add_argument("--spread", help="spread calibration (floecast calibrate) applied to the members' probabilistic scores")
    p.add_argument("--seas5", nargs="+", help="SEAS5 interim files (floecast regrid seas5): scored on the shared init dates")
    p.add_argument("--reliability", help="reliability table by lead group (CSV)")
    p.add_argument("--reliability-plot", help="reliability diagram (PNG) of --reliability")
    p.add_argument("--regions", help="scores by longitude sector (CSV)")
    p.add_argument(
        "--train-store",
        nargs="+",
        help="the training years' store parts: the reference ensembles (climatological, dressed anomaly persistence)",
    )
    p.set_defaults(func=cmd_scorecard)

    p = sub.add_parser("plot", help="forecast maps and extent-by-lead figures")
    _grid_args(p)
    p.add_argument("--forecast", required=True)
    p.add_argument("--members", nargs="+", required=True)
    p.add_argument("--statistics", required=True)
    p.add_argument("--leads", type=int, nargs="+", default=[1, 7, 30])
    p.add_argument("--maps", required=True)
    p.add_argument("--extent", required=True)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("animate", help="MP4 (or GIF) of a forecast over its leads, or of the input SIC over a period")
    p.add_argument("kind", choices=["forecast", "inputs"])
    p.add_argument("--forecast", help="forecast file (forecast)")
    p.add_argument("--interim", nargs="+", help="interim SIC files covering the period (inputs)")
    p.add_argument("--first", type=_date, help="first day (inputs)")
    p.add_argument("--last", type=_date, help="last day (inputs)")
    p.add_argument("--fps", type=int, help="frames a second (default 4 for a forecast, 8 for inputs)")
    p.add_argument("--out", required=True, help="output .mp4 (ffmpeg from imageio-ffmpeg) or .gif")
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("egress", help="publish files and a sha256 manifest to an fsspec URL (file://, s3://, ...)")
    p.add_argument("--url", required=True, help="the store, e.g. s3://bucket/forecasts (credentials from the environment)")
    p.add_argument("--key", required=True, help="folder under the store, e.g. north/prod-v1/2026-11-26")
    p.add_argument("--force", action="store_true", help="replace a publication whose files differ")
    p.add_argument("--metadata", action="append", default=[], metavar="K=V", help="recorded in the manifest (repeatable)")
    p.add_argument("--storage-options", help="non-secret fsspec options as JSON")
    p.add_argument("--receipt", help="write the manifest here too (the rule's output)")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_egress)

    p = sub.add_parser(
        "poll",
        help="newest day and latency of each source; the newest init date whose inputs are all there; "
        "exit 0 when the init date's inputs are there, 3 if not",
    )
    p.add_argument("--config", required=True, help="the workflow config (sources and their addresses)")
    p.add_argument("--date", type=_date, help="init date to check (default: the newest one the providers allow)")
    p.add_argument("--state", default=layout.POLL_STATE, help="where to write the state file")
    p.add_argument("--root", default=".", help="the workflow folder (its raw SIC manifests: fast-track days to replace)")
    p.add_argument(
        "--max-lag-days",
        type=int,
        default=10,
        help="without --date: how far the newest init date may trail today and still count as ready",
    )
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("promote", help="make a run production if its hindcast is at least as good as production's")
    p.add_argument("--hemisphere", choices=["north", "south"], required=True)
    p.add_argument("--run", required=True, help="the run (models/<hemi>/<run>/) to promote")
    p.add_argument("--root", default=".", help="the workflow folder holding models/ and results/")
    p.add_argument("--tolerance", type=float, default=0.0, help="allowed RMSE excess per lead, e.g. 0.01 = 1%% (default 0)")
    p.add_argument("--force", action="store_true", help="promote despite a failed or impossible comparison (recorded)")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("stage", help="point models/<hemi>/staging at a run (no gate)")
    p.add_argument("--hemisphere", choices=["north", "south"], required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--root", default=".", help="the workflow folder holding models/ and results/")
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("rollback", help="return production to the run before it (from models/<hemi>/deployments.jsonl)")
    p.add_argument("--hemisphere", choices=["north", "south"], required=True)
    p.add_argument("--root", default=".", help="the workflow folder holding models/ and results/")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("deployed", help="the staging and production runs (JSON), with the last N history lines")
    p.add_argument("--hemisphere", choices=["north", "south"], action="append", help="(repeatable; default: every one)")
    p.add_argument("--root", default=".", help="the workflow folder holding models/ and results/")
    p.add_argument("--history", type=int, default=0, metavar="N", help="also the last N changes")
    p.set_defaults(func=cmd_deployed)

    p = sub.add_parser("status", help="newest data, forecasts, models and the last run's outcome (failing rule, log)")
    p.add_argument("--config", required=True, help="the workflow config (hemispheres, sources)")
    p.add_argument("--root", default=".", help="the workflow folder (data/, results/, models/, .snakemake/)")
    p.add_argument("--log", nargs="+", help="this Snakemake log instead of the newest run's")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("notify", help="send the status to the notify command (stdin); exit 1 if the command failed")
    p.add_argument("--config", required=True, help="the workflow config (notify.command, hemispheres, sources)")
    p.add_argument("--root", default=".", help="the workflow folder")
    p.add_argument("--log", nargs="+", help="the Snakemake log of the run to report (default: the newest run's)")
    p.add_argument("--command", help="notify command instead of the config's notify.command (run by the shell)")
    p.set_defaults(func=cmd_notify)

    p = sub.add_parser("sic-consistency", help="a newer SIC product against the reference record: table, plot, mapping")
    _grid_args(p)
    p.add_argument("--chain", help="the SIC product chain, an osisaf config section as JSON (default: the schema's)")
    p.add_argument("--reference", required=True, help="name of the reference product (the record the model was trained on)")
    p.add_argument("--candidate", required=True, help="name of the newer product")
    p.add_argument("--reference-raw", nargs="+", required=True, help="raw folders or manifests of the reference product")
    p.add_argument("--candidate-raw", nargs="+", required=True, help="raw folders or manifests of the candidate product")
    p.add_argument("--first-day", type=_date, help="first day of the overlap")
    p.add_argument("--last-day", type=_date, help="last day of the overlap")
    p.add_argument("--table", required=True, help="monthly bias and 15 %% edge disagreement (CSV)")
    p.add_argument("--plot", help="the table as a figure (PNG)")
    p.add_argument("--mapping", help="per-month quantile mapping of the candidate onto the reference (NetCDF)")
    p.set_defaults(func=cmd_sic_consistency)

    p = sub.add_parser("today", help="the date floecast takes for today (UTC; FLOECAST_TODAY sets it in tests only)")
    p.set_defaults(func=cmd_today)

    p = sub.add_parser(
        "check-data", help="check a hemisphere's raw, interim and store SIC; exit 1 naming the days that must not be used"
    )
    _grid_args(p)
    p.add_argument("--raw", nargs="*", help="ingest manifests (data/raw/<source>/ice_conc/<hemi>/<year>[/<MM>].json)")
    p.add_argument("--interim", nargs="*", help="interim SIC files (data/interim/<hemi>/obs/sic/<year>.nc)")
    p.add_argument("--store", nargs="*", help="store parts (data/store/<hemi>/obs/<year>.zarr)")
    p.add_argument("--root", help="without --raw/--interim/--store: every file of the hemisphere in this workflow folder")
    p.add_argument("--source", default="osisaf", help="with --root: the SIC source (osisaf, synthetic)")
    p.add_argument("--chain", help="the SIC product chain, an osisaf config section as JSON (default: the schema's)")
    p.add_argument("--known-bad-days", nargs="*", type=_date, default=[], help="osisaf.known_bad_days (noted, not flagged)")
    p.add_argument("--nan-share-max", type=float, default=0.02, help="share of ocean missing in a raw day before it is bad")
    p.add_argument("--jump-sigma", type=float, default=6.0, help="extent jumps beyond this many robust std devs")
    p.add_argument("--jump-window-days", type=int, default=31, help="window of the robust spread of extent changes")
    p.add_argument("--jump-min-km2", type=float, default=400_000.0, help="and at least this many km^2")
    p.add_argument("--csv", help="the findings (CSV)")
    p.add_argument("--plot", help="extent series with the flagged days marked (PNG)")
    p.add_argument("--propose", help="the proposed osisaf.known_bad_days entries (YAML snippet)")
    p.set_defaults(func=cmd_check_data)

    p = sub.add_parser(
        "check-cds", help="check the CDS key (CDSAPI_URL/CDSAPI_KEY or ~/.cdsapirc) with one request, retries logged"
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait in all, retries included")
    p.add_argument("--attempts", type=int, default=4, help="tries at most (a refused key is not tried again)")
    p.set_defaults(func=cmd_check_cds)

    p = sub.add_parser("check-config", help="validate a config file and print it with defaults filled in")
    p.add_argument("config")
    p.set_defaults(func=cmd_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        return args.func(args) or 0
    except Exception as err:
        if not isinstance(err, EXPECTED_ERRORS + _download_errors()):
            raise
        log.error("%s", err)
        return 1


def _download_errors() -> tuple[type[Exception], ...]:
    """The downloader's failures, where a download ran (a step that never imported the downloader
    cannot have raised them, and importing it here would need requests in every env), and a full
    disk where an output was written (its message names the path and the free space)."""
    http, io = sys.modules.get("floecast.sources.http"), sys.modules.get("floecast.io")
    return ((http.DownloadError,) if http else ()) + ((io.DiskFullError,) if io else ())


if __name__ == "__main__":
    sys.exit(main())
