# Predict: each member forecasts (GPU job), then the ensemble is combined.


rule predict_member:
    input:
        weights=layout.MEMBER_WEIGHTS,
        # ancient: a forecast already issued is not made again when a store part it read
        # is rebuilt later (a fast-track day replaced): force it to reissue (runbook)
        store=ancient_once_made(layout.MEMBER_FORECAST, forecast_store),
        statistics=layout.STATISTICS,
    output:
        layout.MEMBER_FORECAST,
    log:
        log_path("predict_member"),
    benchmark:
        bench_path("predict_member")
    conda:
        "../envs/train.yaml"
    threads: THREADS
    resources:
        gpu=1,
        cpus_per_task=THREADS,
        mem_mb=8000,
        runtime=30,
    params:
        # weights trained on another spec than the config's are refused, naming the setting
        spec=SPEC_JSON,
        # the ensemble's size: a distributional member forecasts its quantile (k + 0.5) / n
        members=len(MEMBERS),
    shell:
        "floecast predict --weights {input.weights} --store {input.store}"
        " --statistics {input.statistics} --member {wildcards.member}"
        " --members {params.members}"
        " --date {wildcards.date} --spec {params.spec:q} --threads {threads}"
        " --out {output} > {log} 2>&1"


# The same model over every init date of a split's years (one date in stride_days, plus the
# 1st of each month: SEAS5's starts, which the scorecard scores it on): the test years for the
# scorecard, the validation years only to fit the spread calibration.
# It differs from predict_member in what it forecasts (a split, not a date), and so in the
# store parts it reads and its memory and time.
rule hindcast_member:
    input:
        weights=layout.MEMBER_WEIGHTS,
        # ancient: the split's years do not change when days are appended
        store=ancient_once_made(
            layout.HINDCAST_MEMBER, lambda w: split_store(w.hemi, w.split)
        ),
        statistics=ancient_once_made(layout.HINDCAST_MEMBER, layout.STATISTICS),
    output:
        layout.HINDCAST_MEMBER,
    log:
        log_path("hindcast_member"),
    benchmark:
        bench_path("hindcast_member")
    conda:
        "../envs/train.yaml"
    threads: THREADS
    resources:
        gpu=1,
        cpus_per_task=THREADS,
        mem_mb=16000,
        runtime=120,
    params:
        stride=config["verify"]["stride_days"],
        spec=SPEC_JSON,
        # the ensemble's size: a distributional member forecasts its quantile (k + 0.5) / n
        members=len(MEMBERS),
    shell:
        "floecast predict --weights {input.weights} --store {input.store}"
        " --statistics {input.statistics} --member {wildcards.member}"
        " --members {params.members}"
        " --split {wildcards.split} --stride {params.stride} --month-starts"
        " --spec {params.spec:q}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule calibrate_spread:
    input:
        members=hindcast_members("validate"),
        store=ancient_once_made(
            layout.SPREAD, lambda w: split_store(w.hemi, "validate")
        ),
        statistics=ancient_once_made(layout.SPREAD, layout.STATISTICS),
    output:
        layout.SPREAD,
    log:
        log_path("calibrate_spread"),
    benchmark:
        bench_path("calibrate_spread")
    conda:
        "../envs/predict.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        years="{}-{}".format(*config["splits"]["validate"]),
    shell:
        "floecast calibrate --members {input.members} --store {input.store}"
        " --statistics {input.statistics} --fitted-on {params.years}"
        " --out {output} > {log} 2>&1"


rule combine_forecast:
    input:
        members=lambda w: expand(layout.MEMBER_FORECAST, member=MEMBERS, **w),
        store=ancient_once_made(layout.FORECAST, forecast_store),
        statistics=layout.STATISTICS,
        spread=layout.SPREAD,
        # what served the newest input days is recorded in the file
        sic_manifests=ancient_once_made(layout.FORECAST, forecast_sic_manifests),
        atmos_raw=ancient_once_made(layout.FORECAST, forecast_atmos_raw),
    output:
        # update: Snakemake neither removes the forecast before a re-run nor keeps a failed
        # re-run's: the previous forecast stays in place until a new one is complete
        update(layout.FORECAST),
    log:
        log_path("combine_forecast"),
    benchmark:
        bench_path("combine_forecast")
    conda:
        "../envs/predict.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        coarsen=COARSEN,
        members=config["train"]["members"],
        quorum=config["train"]["quorum"],
        spec_sha256=SPEC_SHA256,
        atmos=atmos_raw_args,
        sources=json.dumps(config["sources"], sort_keys=True),
        metadata=" ".join(
            f"--metadata {shlex.quote(f'{k}={v}')}"
            for k, v in config["publish"]["metadata"].items()
        ),
    shell:
        "floecast combine --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --members {input.members} --store {input.store}"
        " --statistics {input.statistics} --run {wildcards.run}"
        " --spread {input.spread} --members-expected {params.members}"
        " --quorum {params.quorum} --config-hash {params.spec_sha256} {params.metadata}"
        " --sic-manifests {input.sic_manifests} --atmos-raw {params.atmos}"
        " --sources {params.sources:q} --out {output} > {log} 2>&1"
