# Train: each ensemble member is its own (GPU) job.


rule train_member:
    input:
        # ancient for a member trained on the config's spec: days appended to the store for new
        # forecasts do not retrain it; a changed spec retrains it in the same run
        store=unless_retraining(training_store),
        pretrain=unless_retraining(pretrain_store),
        statistics=unless_retraining(lambda w: layout.STATISTICS.format(hemi=w.hemi)),
    output:
        weights=layout.MEMBER_WEIGHTS,
        meta=layout.MEMBER_META,
        history=layout.MEMBER_HISTORY,
    log:
        log_path("train_member"),
    benchmark:
        bench_path("train_member")
    retries: 1
    conda:
        "../envs/train.yaml"
    threads: THREADS
    resources:
        gpu=1,
        cpus_per_task=THREADS,
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["gpu_runtime_min"],
        # the last attempt records a failure instead of failing: the ensemble goes on
        # without the member if the quorum (train.quorum) still holds
        final_attempt=lambda wildcards, attempt: int(attempt > 1),
    params:
        spec=SPEC_JSON,
        out_dir=subpath(output.weights, parent=True),
    shell:
        "floecast train --spec {params.spec:q} --member {wildcards.member}"
        " --store {input.store} --pretrain-store {input.pretrain}"
        " --statistics {input.statistics} --threads {threads}"
        " --out-dir {params.out_dir}"
        " $( [ {resources.final_attempt} = 1 ] && echo --record-failure ) > {log} 2>&1"
