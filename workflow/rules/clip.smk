# Flux-CLIP: stage 1 (vision projector only) and stage 2 (everything), on the image + video corpora.


rule train_clip:
    input:
        manifests=train_manifests,
        parent=train_parent,
        teacher=train_teacher,
        head_map=train_head_map,
        weights=teacher_weights,
        text_encoder=text_encoder,
    output:
        checkpoint=run_checkpoint("{run}"),
        summary=f"{RESULTS}/runs/{{run}}/final.json",
        metrics=f"{RESULTS}/runs/{{run}}/metrics.jsonl",
    wildcard_constraints:
        run=alternation(FLUX.runs_of_stage("clip")),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("train"),
    log:
        f"{LOGS}/train/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{run}}.tsv"
    threads: threads_for("train_clip")
    resources:
        **rule_resources("train_clip", 4000, 60),
    shell:
        f"{train_launcher('train_clip')} train --threads {{threads}} --spec {{params.spec:q}} > {{log}} 2>&1"
