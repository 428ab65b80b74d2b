# Preprocess: EASE2 interim files, training-years statistics, zarr stores.


rule regrid_sic:
    input:
        raw=raw_sic,
        mapping=sic_mapping,
    output:
        layout.fill(layout.INTERIM_OBS, variable="sic"),
    log:
        log_path("regrid_sic"),
    benchmark:
        bench_path("regrid_sic")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        coarsen=COARSEN,
        chain=year_chain,
        mapping=mapping_args,
    shell:
        "floecast regrid sic --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --raw {input.raw} --chain {params.chain:q} {params.mapping}"
        " --out {output} > {log} 2>&1"


rule regrid_atmos:
    input:
        raw=raw_atmos,
        partner=raw_wind_partner,
    output:
        layout.INTERIM_OBS,
    log:
        log_path("regrid_atmos"),
    benchmark:
        bench_path("regrid_atmos")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=6000,  # two wind components at 25 km: about 4.7 GB
        runtime=30,
    params:
        coarsen=COARSEN,
        partner=lambda w, input: f"--partner {input.partner}" if input.partner else "",
        weights=layout.REGRID_WEIGHTS_DIR,
    shell:
        "floecast regrid {wildcards.variable} --hemisphere {wildcards.hemi}"
        " --coarsen {params.coarsen} --raw {input.raw} {params.partner}"
        " --weights-cache {params.weights} --out {output} > {log} 2>&1"


rule regrid_cmip6:
    input:
        raw=raw_cmip6,
        partner=raw_cmip6_wind_partner,
    output:
        layout.INTERIM_CMIP6,
    log:
        log_path("regrid_cmip6"),
    benchmark:
        bench_path("regrid_cmip6")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        coarsen=COARSEN,
        partner=lambda w, input: f"--partner {input.partner}" if input.partner else "",
        weights=layout.REGRID_WEIGHTS_DIR,
    shell:
        "floecast regrid {wildcards.quantity} --cmip6 --hemisphere {wildcards.hemi}"
        " --coarsen {params.coarsen} --raw {input.raw} {params.partner}"
        " --weights-cache {params.weights} --out {output} > {log} 2>&1"


# Not a default target: the newer SIC product against the record the model was trained
# on (osisaf.consistency), and the per-month mapping regrid_sic applies (osisaf.mapping).
rule sic_consistency:
    input:
        reference=product_manifests("reference"),
        candidate=product_manifests("candidate"),
    output:
        table=layout.SIC_CONSISTENCY_TABLE,
        plot=report(
            layout.SIC_CONSISTENCY_PLOT,
            caption="../report/sic_consistency.rst",
            category="Inputs",
            labels={"figure": "SIC consistency", "hemisphere": "{hemi}"},
        ),
        mapping=layout.SIC_MAPPING,
    log:
        log_path("sic_consistency"),
    benchmark:
        bench_path("sic_consistency")
    conda:
        "../envs/predict.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        first_day=CONSISTENCY["first_day"],
        last_day=CONSISTENCY["last_day"],
        chain=lambda w: product_chain_pair(w.reference, w.candidate),
    shell:
        "floecast sic-consistency --hemisphere {wildcards.hemi} --chain {params.chain:q}"
        " --reference {wildcards.reference} --candidate {wildcards.candidate}"
        " --reference-raw {input.reference} --candidate-raw {input.candidate}"
        " --first-day {params.first_day} --last-day {params.last_day}"
        " --table {output.table} --plot {output.plot} --mapping {output.mapping}"
        " > {log} 2>&1"


rule fit_statistics:
    input:
        **{v: (lambda w, v=v: interim(w.hemi, v, TRAIN_YEARS)) for v in ATMOS_VARIABLES},
        sic=lambda w: interim(w.hemi, "sic", TRAIN_YEARS),
    output:
        layout.STATISTICS,
    log:
        log_path("fit_statistics"),
    benchmark:
        bench_path("fit_statistics")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        spec=CHANNELS_JSON,
        atmos=atmos_args,
    shell:
        "floecast statistics --spec {params.spec:q} --sic {input.sic} {params.atmos}"
        " --out {output} > {log} 2>&1"


# One year of a dataset per job: the daily run rebuilds only the current year's part
# (under a minute at 25 km), and the trend channel reads the years before from interim files.
rule build_store_obs:
    input:
        **{v: layout.fill(layout.INTERIM_OBS, variable=v) for v in ATMOS_VARIABLES},
        sic=store_sic_years,
        statistics=layout.STATISTICS,
    output:
        directory(layout.STORE_OBS),
    log:
        log_path("build_store_obs"),
    benchmark:
        bench_path("build_store_obs")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=4000,  # written 32 days at a time: about 1.5 GB at 25 km
        runtime=15,
    params:
        coarsen=COARSEN,
        spec=CHANNELS_JSON,
        atmos=atmos_args,
    shell:
        "floecast store --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --spec {params.spec:q} --year {wildcards.year} --sic {input.sic} {params.atmos}"
        " --statistics {input.statistics} --out {output} > {log} 2>&1"


rule build_store_cmip6:
    input:
        **{v: layout.fill(layout.INTERIM_CMIP6, quantity=v) for v in ATMOS_VARIABLES},
        sic=layout.fill(layout.INTERIM_CMIP6, quantity="sic"),
        statistics=layout.STATISTICS,
    output:
        directory(layout.STORE_CMIP6),
    log:
        log_path("build_store_cmip6"),
    benchmark:
        bench_path("build_store_cmip6")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        coarsen=COARSEN,
        spec=CHANNELS_JSON,
        atmos=atmos_args,
    shell:
        "floecast store --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --spec {params.spec:q} --year {wildcards.year} --sic {input.sic} {params.atmos}"
        " --statistics {input.statistics} --out {output} > {log} 2>&1"


rule regrid_seas5:
    input:
        layout.fill(layout.RAW_SEAS5, seas5_source=config["sources"]["seas5"]),
    output:
        layout.INTERIM_SEAS5,
    log:
        log_path("regrid_seas5"),
    benchmark:
        bench_path("regrid_seas5")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=16000,  # a 25 km start: 51 members x 93 leads of 432 x 432 float32 fields, 3.5 GB, twice
        runtime=60,
    params:
        coarsen=COARSEN,
        weights=layout.REGRID_WEIGHTS_DIR,
    shell:
        "floecast regrid seas5 --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --raw {input} --weights-cache {params.weights} --out {output} > {log} 2>&1"
