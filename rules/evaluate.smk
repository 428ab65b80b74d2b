# Evaluate: the hindcast scorecard over the test years.


rule scorecard:
    input:
        members=hindcast_members("test"),
        # ancient: the test years do not change when days are appended
        store=ancient_once_made(layout.SCORECARD, lambda w: split_store(w.hemi, "test")),
        statistics=ancient_once_made(layout.SCORECARD, layout.STATISTICS),
        spread=layout.SPREAD,
    output:
        csv=report(
            layout.SCORECARD,
            caption="../report/scorecard.rst",
            category="Hindcast verification",
            subcategory="{hemi} {run}",
            labels={"table": "scorecard", "hemisphere": "{hemi}"},
        ),
        plot=report(
            layout.SKILL_PLOT,
            caption="../report/skill_by_lead.rst",
            category="Hindcast verification",
            subcategory="{hemi} {run}",
            labels={"figure": "skill by lead", "hemisphere": "{hemi}"},
        ),
        month=report(
            layout.SKILL_BY_MONTH_PLOT,
            caption="../report/skill_by_month.rst",
            category="Hindcast verification",
            subcategory="{hemi} {run}",
            labels={"figure": "RMSE by month and lead", "hemisphere": "{hemi}"},
        ),
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
        " --statistics {input.statistics} --spread {input.spread}"
        " --out {output.csv} --plot {output.plot}"
        " --month-heatmap {output.month} > {log} 2>&1"
