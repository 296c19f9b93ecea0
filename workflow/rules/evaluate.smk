# Evaluation: one checkpoint under one protocol of config/tables.yaml -> results/metrics/<run>/<protocol>.json.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics=f"{RESULTS}/metrics/{{run}}/{{protocol}}.json",
    wildcard_constraints:
        run=alternation(FLUX.selected_runs),
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
