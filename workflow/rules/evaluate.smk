# Evaluation: one checkpoint under one protocol of config/tables.yaml -> results/metrics/<run>/<protocol>.json.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics=f"{RESULTS}/metrics/{{run}}/{{protocol}}.json",
    wildcard_constraints:
        run=alternation([*FLUX.selected_runs, *FLUX.evaluated_checkpoints]),
        protocol=alternation(FLUX.table_document["protocols"]),
    conda:
        "../envs/flux.yaml"
    params:
        spec=evaluate_spec,
    log:
        f"{LOGS}/evaluate/{{run}}/{{protocol}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{run}}/{{protocol}}.tsv"
    threads: threads_for("evaluate")
    resources:
        **rule_resources("evaluate", 4000, 60),
    shell:
        f"{FLUX_CLI} evaluate --threads {{threads}} --spec {{params.spec:q}} > {{log}} 2>&1"


# External checkpoints (config/checkpoints.yaml, `checkpoints.evaluate`): released weights in this pipeline's format,
# after which `evaluate` scores them like a trained run. The weights file is not an input: a URL is downloaded by
# the job (verified, resumable, kept under data/checkpoints/external/), and a local file is checked by it, so that
# `snakemake -n` plans the released models' evaluations before anything is downloaded.
rule import_checkpoint:
    input:
        unpack(import_inputs),
    output:
        checkpoint=f"{RESULTS}/runs/{{name}}/final.pt",
        summary=f"{RESULTS}/runs/{{name}}/final.json",
    wildcard_constraints:
        name=alternation(FLUX.evaluated_checkpoints),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("import"),
    log:
        f"{LOGS}/import/{{name}}.log",
    benchmark:
        f"{BENCHMARKS}/import/{{name}}.tsv"
    threads: threads_for("import_checkpoint")
    resources:
        **rule_resources("import_checkpoint", 8000, 60),
    shell:
        f"{FLUX_CLI} import --spec {{params.spec:q}} > {{log}} 2>&1"
