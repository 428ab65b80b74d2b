# Ingest: one job per source, variable and year (CMIP6: per run and variable).


rule ingest_sic:
    input:
        # written by `floecast poll` when the nominal file of a fast-track day of this
        # period has appeared: the job runs again and replaces it
        replace_trigger,
    output:
        # a manifest written last; the files lie in the folder of the same name, which a
        # re-run keeps, so nothing valid is fetched twice
        layout.RAW_SIC,
    log:
        log_path("ingest_sic"),
    benchmark:
        bench_path("ingest_sic")
    retries: 2
    conda:
        "../envs/ingest.yaml"
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        period=period_args,
        first_day=first_day,
        last_day=last_day,
        coarsen=COARSEN,
        seed=config["synthetic"]["seed"],
        chain=period_chain,
        bad_days=config["osisaf"]["known_bad_days"],
    shell:
        "floecast ingest sic --source {wildcards.sic_source} --hemisphere {wildcards.hemi}"
        " --coarsen {params.coarsen} {params.period} --first-day {params.first_day}"
        " --last-day {params.last_day} --seed {params.seed} --chain {params.chain:q}"
        " --known-bad-days {params.bad_days} --out {output} > {log} 2>&1"


# One product over the overlap of the consistency report, whichever product serves those
# days in the chain (OSI-438 beside OSI-430-a in 2021-2025).
rule ingest_sic_product:
    output:
        layout.RAW_SIC_PRODUCT,
    log:
        log_path("ingest_sic_product"),
    benchmark:
        bench_path("ingest_sic_product")
    retries: 2
    conda:
        "../envs/ingest.yaml"
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        first_day=overlap_first_day,
        last_day=overlap_last_day,
        coarsen=COARSEN,
        seed=config["synthetic"]["seed"],
        chain=lambda w: product_chain(w.product),
        bad_days=config["osisaf"]["known_bad_days"],
    shell:
        "floecast ingest sic --source {wildcards.sic_source} --hemisphere {wildcards.hemi}"
        " --coarsen {params.coarsen} --year {wildcards.year} --month {wildcards.month}"
        " --first-day {params.first_day} --last-day {params.last_day} --seed {params.seed}"
        " --product {wildcards.product} --chain {params.chain:q}"
        " --known-bad-days {params.bad_days} --out {output} > {log} 2>&1"


rule ingest_atmos:
    output:
        layout.RAW_ATMOS,
    log:
        log_path("ingest_atmos"),
    benchmark:
        bench_path("ingest_atmos")
    retries: 2
    conda:
        "../envs/ingest.yaml"
    resources:
        mem_mb=6000,  # a 25 km month of hourly ERA5 peaks near 5 GB
        runtime=120,
    params:
        first_day=first_day,
        last_day=last_day,
        coarsen=COARSEN,
        seed=config["synthetic"]["seed"],
        area_lat=config["era5"]["area_lat"],
        realtime=realtime_arg,
    shell:
        "floecast ingest atmos --source {wildcards.atmos_source} --variable {wildcards.variable}"
        " --hemisphere {wildcards.hemi} --coarsen {params.coarsen} --year {wildcards.year}"
        " --first-day {params.first_day} --last-day {params.last_day} --seed {params.seed}"
        " --area-lat {params.area_lat} {params.realtime} --out {output} > {log} 2>&1"


rule ingest_cmip6:
    output:
        layout.RAW_CMIP6,
    log:
        log_path("ingest_cmip6"),
    benchmark:
        bench_path("ingest_cmip6")
    retries: 2
    conda:
        "../envs/ingest.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        model=cmip6_model,
        member=cmip6_member,
        index=cmip6_run_index,
        years=config["cmip6"]["years"],
        coarsen=COARSEN,
        seed=config["synthetic"]["seed"],
        index_url=config["esgf"]["index_url"],
    shell:
        "floecast ingest cmip6 --source {wildcards.cmip6_source} --variable {wildcards.cmor}"
        " --model {params.model} --member {params.member} --member-index {params.index}"
        " --years {params.years} --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --seed {params.seed} --base-url {params.index_url} --out {output} > {log} 2>&1"


# SEAS5, the dynamical benchmark of the scorecard: a year's starts (the 1st of each month) per job.
rule ingest_seas5:
    output:
        # a manifest written last; the GRIB files (one per start) lie in the folder of the same name
        layout.RAW_SEAS5,
    log:
        log_path("ingest_seas5"),
    benchmark:
        bench_path("ingest_seas5")
    retries: 2
    conda:
        "../envs/ingest.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        first_day=first_day,
        last_day=last_day,
        coarsen=COARSEN,
        leads=config["model"]["leads"],
        system=config["seas5"]["system"],
        area_lat=config["seas5"]["area_lat"],
        grid=lambda w: (
            f"--grid-deg {config['seas5']['grid_deg']}"
            if config["seas5"]["grid_deg"]
            else ""
        ),
        members=config["seas5"]["members"],
        seed=config["synthetic"]["seed"],
    shell:
        "floecast ingest seas5 --source {wildcards.seas5_source} --hemisphere {wildcards.hemi}"
        " --coarsen {params.coarsen} --year {wildcards.year} --first-day {params.first_day}"
        " --last-day {params.last_day} --leads {params.leads} --system {params.system}"
        " --area-lat {params.area_lat} {params.grid} --members {params.members}"
        " --seed {params.seed} --out {output} > {log} 2>&1"
