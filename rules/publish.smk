# Publish: figures of the forecast, and its egress to an external store.


rule plot_forecast:
    input:
        forecast=layout.FORECAST,
        members=lambda w: expand(layout.MEMBER_FORECAST, member=MEMBERS, **w),
        statistics=layout.STATISTICS,
    output:
        maps=report(
            layout.MAPS_PLOT,
            caption="../report/forecast_maps.rst",
            category="Forecast",
            subcategory="{hemi} {date}",
            labels={
                "figure": "SIC maps",
                "hemisphere": "{hemi}",
                "init date": "{date}",
            },
        ),
        extent=report(
            layout.EXTENT_PLOT,
            caption="../report/forecast_extent.rst",
            category="Forecast",
            subcategory="{hemi} {date}",
            labels={
                "figure": "extent by lead",
                "hemisphere": "{hemi}",
                "init date": "{date}",
            },
        ),
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


rule egress:
    input:
        forecast=egress_forecast,
        maps=layout.MAPS_PLOT,
        extent=layout.EXTENT_PLOT,
    output:
        layout.EGRESS_RECEIPT,
    log:
        log_path("egress"),
    benchmark:
        bench_path("egress")
    # no retries: a refusal (different files already published) fails the same way every
    # time; transient network errors are retried by the storage client (s3fs: 5 tries)
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        url=config["egress"]["url"],
        options=json.dumps(config["egress"]["storage_options"]),
        key="{hemi}/{run}/{date}",
        force="--force" if config["egress"]["force"] else "",
    shell:
        "floecast egress --url {params.url:q} --key {params.key} {params.force}"
        " --storage-options {params.options:q} --receipt {output}"
        " --metadata hemisphere={wildcards.hemi} --metadata run={wildcards.run}"
        " --metadata init_date={wildcards.date}"
        " {input.forecast} {input.maps} {input.extent} > {log} 2>&1"


# On request (not in the default targets): GeoTIFFs for GIS users and a lat/lon copy.
rule export_forecast:
    input:
        layout.FORECAST,
    output:
        geotiff=directory(layout.EXPORT_GEOTIFF_DIR),
        latlon=layout.EXPORT_LATLON,
    log:
        log_path("export_forecast"),
    benchmark:
        bench_path("export_forecast")
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        resolution=config["publish"]["latlon_resolution_deg"],
    shell:
        "floecast export --forecast {input} --geotiff-dir {output.geotiff}"
        " --latlon {output.latlon} --resolution {params.resolution} > {log} 2>&1"
