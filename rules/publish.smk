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
        # publish.members: the per-member output is published too
        members_file=lambda w: (
            layout.EXPORT_MEMBERS.format(**w) if config["publish"]["members"] else []
        ),
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
        " {input.forecast} {input.maps} {input.extent} {input.members_file} > {log} 2>&1"


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


# On request (publish.members puts it in the default targets and the egress): the members' own fields.
rule export_members:
    input:
        forecast=layout.FORECAST,
        members=forecast_member_files,
    output:
        layout.EXPORT_MEMBERS,
    log:
        log_path("export_members"),
    benchmark:
        bench_path("export_members")
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "floecast export --forecast {input.forecast} --members {input.members}"
        " --members-out {output} > {log} 2>&1"


# On request: a SIPN South submission (Southern Hemisphere; files per member, see docs/output-format.md).
rule export_sipn_south:
    input:
        forecast=layout.fill(layout.FORECAST, hemi="south"),
        members=lambda w: forecast_member_files(w, hemi="south"),
    output:
        directory(layout.fill(layout.EXPORT_SIPN_SOUTH_DIR, hemi="south")),
    log:
        log_path("export_sipn_south"),
    benchmark:
        bench_path("export_sipn_south")
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        group=config["publish"]["sipn_group"],
    shell:
        "floecast export --forecast {input.forecast} --members {input.members}"
        " --sipn-south {output} --group {params.group:q} > {log} 2>&1"


# On request: the Sea Ice Outlook's table and SIP maps (Northern Hemisphere).
rule export_sio:
    input:
        forecast=layout.fill(layout.FORECAST, hemi="north"),
        members=lambda w: forecast_member_files(w, hemi="north"),
    output:
        table=layout.fill(layout.EXPORT_SIO_TABLE, hemi="north"),
        sip=layout.fill(layout.EXPORT_SIO_SIP, hemi="north"),
    log:
        log_path("export_sio"),
    benchmark:
        bench_path("export_sio")
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    shell:
        "floecast export --forecast {input.forecast} --members {input.members}"
        " --sio-table {output.table} --sio-sip {output.sip} > {log} 2>&1"


# On request: the forecast over its leads as a film (mean, SIP contours, ice edge).
rule animate_forecast:
    input:
        layout.FORECAST,
    output:
        layout.FORECAST_ANIMATION,
    log:
        log_path("animate_forecast"),
    benchmark:
        bench_path("animate_forecast")
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "floecast animate forecast --forecast {input} --out {output} > {log} 2>&1"


# On request: the input SIC (interim, EASE2) over a period, e.g. results/north/inputs/sic_2020-06-01_2020-09-14.mp4
rule animate_inputs:
    input:
        lambda w: interim(w.hemi, "sic", range(int(w.start[:4]), int(w.end[:4]) + 1)),
    output:
        layout.INPUTS_ANIMATION,
    log:
        log_path("animate_inputs"),
    benchmark:
        bench_path("animate_inputs")
    conda:
        "../envs/publish.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "floecast animate inputs --interim {input} --first {wildcards.start}"
        " --last {wildcards.end} --out {output} > {log} 2>&1"
