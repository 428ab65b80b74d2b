# Publish: figures of the forecast.


rule plot_forecast:
    input:
        forecast="results/{hemi}/{run}/forecasts/{date}.nc",
        members=lambda w: expand(
            "results/{hemi}/{run}/members/{date}/member_{member}.nc",
            member=MEMBERS,
            **w,
        ),
        statistics="data/store/{hemi}/statistics.nc",
    output:
        maps="results/{hemi}/{run}/plots/{date}_maps.png",
        extent="results/{hemi}/{run}/plots/{date}_extent.png",
    log:
        log_path("plot_forecast"),
    benchmark:
        bench_path("plot_forecast")
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        coarsen=COARSEN,
        leads=config["plots"]["leads"],
    shell:
        "floecast plot --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --forecast {input.forecast} --members {input.members}"
        " --statistics {input.statistics} --leads {params.leads}"
        " --maps {output.maps} --extent {output.extent} > {log} 2>&1"
