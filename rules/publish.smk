# Publish: figures of the forecast, and its egress to an external store.


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
        maps=report(
            "results/{hemi}/{run}/plots/{date}_maps.png",
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
            "results/{hemi}/{run}/plots/{date}_extent.png",
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
        maps="results/{hemi}/{run}/plots/{date}_maps.png",
        extent="results/{hemi}/{run}/plots/{date}_extent.png",
        # publish.members: the per-member output is published too
        members_file=lambda w: (
            "results/{hemi}/{run}/export/{date}/{date}_members.nc".format(**w)
            if config["publish"]["members"]
            else []
        ),
    output:
        "results/{hemi}/{run}/egress/{date}.json",
    log:
        log_path("egress"),
    benchmark:
        bench_path("egress")
    retries: 2
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
        "results/{hemi}/{run}/forecasts/{date}.nc",
    output:
        geotiff=directory("results/{hemi}/{run}/export/{date}/geotiff"),
        latlon="results/{hemi}/{run}/export/{date}/{date}_latlon.nc",
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
        forecast="results/{hemi}/{run}/forecasts/{date}.nc",
        members=forecast_member_files,
    output:
        "results/{hemi}/{run}/export/{date}/{date}_members.nc",
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
        forecast="results/south/{run}/forecasts/{date}.nc",
        members=lambda w: forecast_member_files(
            SimpleNamespace(export="sipn_south", **w)
        ),
    output:
        directory("results/south/{run}/export/{date}/sipn_south"),
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
        forecast="results/north/{run}/forecasts/{date}.nc",
        members=lambda w: forecast_member_files(SimpleNamespace(export="sio", **w)),
    output:
        table="results/north/{run}/export/{date}/sio/{date}_extent.csv",
        sip="results/north/{run}/export/{date}/sio/{date}_sip.nc",
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
        "results/{hemi}/{run}/forecasts/{date}.nc",
    output:
        "results/{hemi}/{run}/plots/{date}_forecast.mp4",
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
        "results/{hemi}/inputs/sic_{start}_{end}.mp4",
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
