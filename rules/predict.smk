# Predict: each member forecasts (GPU job), then the ensemble is combined.


rule predict_member:
    input:
        weights="models/{hemi}/{run}/member_{member}/weights.pt",
        # ancient: a forecast already issued is not made again when a store part it read
        # is rebuilt later (a fast-track day replaced): force it to reissue (runbook)
        store=ancient(forecast_store),
        statistics="data/store/{hemi}/statistics.nc",
    output:
        "results/{hemi}/{run}/members/{date}/member_{member}.nc",
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
    shell:
        "floecast predict --weights {input.weights} --store {input.store}"
        " --statistics {input.statistics} --member {wildcards.member}"
        " --date {wildcards.date} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule hindcast_member:
    input:
        weights="models/{hemi}/{run}/member_{member}/weights.pt",
        # ancient: the test years do not change when days are appended
        store=ancient(hindcast_store),
        statistics=ancient("data/store/{hemi}/statistics.nc"),
    output:
        "results/{hemi}/{run}/hindcast/member_{member}.nc",
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
    shell:
        "floecast predict --weights {input.weights} --store {input.store}"
        " --statistics {input.statistics} --member {wildcards.member}"
        " --split test --stride {params.stride}"
        " --threads {threads} --out {output} > {log} 2>&1"


# The validation years' hindcast, only to fit the spread calibration (never the test years).
rule validation_member:
    input:
        weights="models/{hemi}/{run}/member_{member}/weights.pt",
        store=ancient(validation_store),
        statistics=ancient("data/store/{hemi}/statistics.nc"),
    output:
        "results/{hemi}/{run}/validation/member_{member}.nc",
    log:
        log_path("validation_member"),
    benchmark:
        bench_path("validation_member")
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
    shell:
        "floecast predict --weights {input.weights} --store {input.store}"
        " --statistics {input.statistics} --member {wildcards.member}"
        " --split validate --stride {params.stride}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule calibrate_spread:
    input:
        members=lambda w: expand(
            "results/{hemi}/{run}/validation/member_{member}.nc", member=MEMBERS, **w
        ),
        store=ancient(validation_store),
        statistics=ancient("data/store/{hemi}/statistics.nc"),
    output:
        "models/{hemi}/{run}/spread.json",
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
        members=lambda w: expand(
            "results/{hemi}/{run}/members/{date}/member_{member}.nc",
            member=MEMBERS,
            **w,
        ),
        store=ancient(forecast_store),
        statistics="data/store/{hemi}/statistics.nc",
        spread="models/{hemi}/{run}/spread.json",
        # what served the newest input days is recorded in the file
        sic_manifests=ancient(forecast_sic_manifests),
        atmos_raw=ancient(forecast_atmos_raw),
    output:
        "results/{hemi}/{run}/forecasts/{date}.nc",
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
