# Evaluate: the hindcast scorecard over the test years.


rule scorecard:
    input:
        members=lambda w: expand(
            "results/{hemi}/{run}/hindcast/member_{member}.nc", member=MEMBERS, **w
        ),
        # ancient: the test years do not change when days are appended
        store=ancient(hindcast_store),
        statistics=ancient("data/store/{hemi}/statistics.nc"),
    output:
        csv="results/{hemi}/{run}/verification/scorecard.csv",
        plot="results/{hemi}/{run}/verification/skill.png",
    log:
        log_path("scorecard"),
    benchmark:
        bench_path("scorecard")
    conda:
        "../envs/predict.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "floecast scorecard --members {input.members} --store {input.store}"
        " --statistics {input.statistics}"
        " --out {output.csv} --plot {output.plot} > {log} 2>&1"
