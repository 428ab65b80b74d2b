# Evaluate: the hindcast scorecard over the test years.


rule scorecard:
    input:
        members=hindcast_members("test"),
        # ancient: the test years do not change when days are appended
        store=ancient_once_made(layout.SCORECARD, lambda w: split_store(w.hemi, "test")),
        # the training years (and their neighbours): the reference ensembles' members
        train_store=ancient_once_made(
            layout.SCORECARD, lambda w: years_store(w.hemi, TRAIN_YEARS)
        ),
        statistics=ancient_once_made(layout.SCORECARD, layout.STATISTICS),
        spread=layout.SPREAD,
        # SEAS5's past starts do not change
        seas5=ancient_once_made(layout.SCORECARD, seas5_interim),
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
        reliability=layout.RELIABILITY,
        reliability_plot=report(
            layout.RELIABILITY_PLOT,
            caption="../report/reliability.rst",
            category="Hindcast verification",
            subcategory="{hemi} {run}",
            labels={"figure": "reliability by lead group", "hemisphere": "{hemi}"},
        ),
        regions=layout.SCORES_BY_REGION,
    log:
        log_path("scorecard"),
    benchmark:
        bench_path("scorecard")
    conda:
        "../envs/predict.yaml"
    resources:
        # the training years' SIC (uint8) and, per lead, the reference ensembles' members (float32)
        mem_mb=24000,
        runtime=60,
    params:
        seas5=lambda w, input: f"--seas5 {' '.join(input.seas5)}" if input.seas5 else "",
    shell:
        "floecast scorecard --members {input.members} --store {input.store}"
        " --statistics {input.statistics} --spread {input.spread}"
        " --train-store {input.train_store}"
        " --out {output.csv} --plot {output.plot}"
        " --month-heatmap {output.month} --reliability {output.reliability}"
        " --reliability-plot {output.reliability_plot} --regions {output.regions}"
        " {params.seas5} > {log} 2>&1"


# On request (not in the default targets: it reads every raw file): are the data sound?
rule check_data:
    input:
        raw=all_raw_sic,
        interim=lambda w: interim(w.hemi, "sic", OBS_YEARS),
        store=lambda w: obs_store(w.hemi, OBS_YEARS),
    output:
        csv=layout.DATA_CHECK_CSV,
        plot=report(
            layout.DATA_CHECK_PLOT,
            caption="../report/data_check.rst",
            category="Data checks",
            labels={"figure": "extent and flagged days", "hemisphere": "{hemi}"},
        ),
        propose=layout.DATA_CHECK_PROPOSAL,
    log:
        log_path("check_data"),
    benchmark:
        bench_path("check_data")
    conda:
        "../envs/preprocess.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        coarsen=COARSEN,
        bad_days=config["osisaf"]["known_bad_days"],
        chain=lambda w: full_chain(),
        checks=" ".join(
            f"--{key.replace('_', '-')} {value}"
            for key, value in config["checks"].items()
        ),
    shell:
        "floecast check-data --hemisphere {wildcards.hemi} --coarsen {params.coarsen}"
        " --raw {input.raw} --interim {input.interim} --store {input.store} --chain {params.chain:q}"
        " --known-bad-days {params.bad_days} {params.checks} --csv {output.csv}"
        " --plot {output.plot} --propose {output.propose} > {log} 2>&1"
