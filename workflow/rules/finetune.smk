# Action-recognition fine-tuning: direct, Flux-Single and Flux-Multi (K710 -> K400, SSv2, COIN, ablations).


rule train_finetune:
    input:
        manifests=train_manifests,
        parent=train_parent,
        teacher=train_teacher,
        head_map=train_head_map,
        weights=teacher_weights,
    output:
        checkpoint=run_checkpoint("{run}"),
        summary=f"{RESULTS}/runs/{{run}}/final.json",
        metrics=f"{RESULTS}/runs/{{run}}/metrics.jsonl",
    wildcard_constraints:
        run=alternation(FLUX.runs_of_stage("finetune")),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("train"),
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{run}}.tsv"
    threads: threads_for("train_finetune")
    resources:
        **rule_resources("train_finetune", 4000, 60),
    shell:
        f"{train_launcher('train_finetune')} train --threads {{threads}} --spec {{params.spec:q}} > {{log}} 2>&1"
