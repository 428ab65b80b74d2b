# Preprocess: EASE2 interim files, training-years statistics, zarr stores.


rule regrid_sic:
    input:
        raw_sic,
    output:
        "data/interim/{hemi}/obs/sic/{year}.nc",
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
    shell:
        "floecast regrid sic --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --raw {input} --out {output} > {log} 2>&1"


rule regrid_atmos:
    input:
        raw=raw_atmos,
        partner=raw_wind_partner,
    output:
        "data/interim/{hemi}/obs/{variable}/{year}.nc",
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
        weights="data/interim/{hemi}/weights",
    shell:
        "floecast regrid {wildcards.variable} --hemisphere {wildcards.hemi}"
        " --coarsen {params.coarsen} --raw {input.raw} {params.partner}"
        " --weights-cache {params.weights} --out {output} > {log} 2>&1"


rule regrid_cmip6:
    input:
        raw=raw_cmip6,
        partner=raw_cmip6_wind_partner,
    output:
        "data/interim/{hemi}/cmip6/{cmip6_run}/{quantity}.nc",
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
        weights="data/interim/{hemi}/weights",
    shell:
        "floecast regrid {wildcards.quantity} --cmip6 --hemisphere {wildcards.hemi}"
        " --coarsen {params.coarsen} --raw {input.raw} {params.partner}"
        " --weights-cache {params.weights} --out {output} > {log} 2>&1"


rule fit_statistics:
    input:
        sic=lambda w: interim(w.hemi, "sic", TRAIN_YEARS),
        t2m=lambda w: interim(w.hemi, "t2m", TRAIN_YEARS),
        u10=lambda w: interim(w.hemi, "u10", TRAIN_YEARS),
        v10=lambda w: interim(w.hemi, "v10", TRAIN_YEARS),
    output:
        "data/store/{hemi}/statistics.nc",
    log:
        log_path("fit_statistics"),
    benchmark:
        bench_path("fit_statistics")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=16000,
        runtime=60,
    shell:
        "floecast statistics --sic {input.sic} --t2m {input.t2m} --u10 {input.u10}"
        " --v10 {input.v10} --out {output} > {log} 2>&1"


rule build_store_obs:
    input:
        sic=lambda w: interim(w.hemi, "sic", OBS_YEARS),
        t2m=lambda w: interim(w.hemi, "t2m", OBS_YEARS),
        u10=lambda w: interim(w.hemi, "u10", OBS_YEARS),
        v10=lambda w: interim(w.hemi, "v10", OBS_YEARS),
        statistics="data/store/{hemi}/statistics.nc",
    output:
        directory("data/store/{hemi}/obs.zarr"),
    log:
        log_path("build_store_obs"),
    benchmark:
        bench_path("build_store_obs")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=32000,
        runtime=120,
    params:
        coarsen=COARSEN,
    shell:
        "floecast store --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --sic {input.sic} --t2m {input.t2m} --u10 {input.u10} --v10 {input.v10}"
        " --statistics {input.statistics} --out {output} > {log} 2>&1"


rule build_store_cmip6:
    input:
        sic="data/interim/{hemi}/cmip6/{cmip6_run}/sic.nc",
        t2m="data/interim/{hemi}/cmip6/{cmip6_run}/t2m.nc",
        u10="data/interim/{hemi}/cmip6/{cmip6_run}/u10.nc",
        v10="data/interim/{hemi}/cmip6/{cmip6_run}/v10.nc",
        statistics="data/store/{hemi}/statistics.nc",
    output:
        directory("data/store/{hemi}/cmip6_{cmip6_run}.zarr"),
    log:
        log_path("build_store_cmip6"),
    benchmark:
        bench_path("build_store_cmip6")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=32000,
        runtime=120,
    params:
        coarsen=COARSEN,
    shell:
        "floecast store --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --sic {input.sic} --t2m {input.t2m} --u10 {input.u10} --v10 {input.v10}"
        " --statistics {input.statistics} --out {output} > {log} 2>&1"
