# Data: synthesize or fetch each dataset, build Kinetics-710, index every dataset into a manifest.


rule synth:
    output:
        ready=ready_marker("{dataset}"),
    wildcard_constraints:
        dataset=alternation(FLUX.datasets_of_kind("synthetic")),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("synth"),
    log:
        f"{LOGS}/synth/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/synth/{{dataset}}.tsv"
    threads: threads_for("synth")
    resources:
        **rule_resources("synth", 2000, 30),
    shell:
        f"{FLUX_CLI} synth --spec {{params.spec:q}} > {{log}} 2>&1"


rule download:
    output:
        ready=ready_marker("{dataset}"),
    wildcard_constraints:
        dataset=alternation(FLUX.datasets_of_kind("fetch")),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("download"),
    log:
        f"{LOGS}/download/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/download/{{dataset}}.tsv"
    threads: threads_for("download")
    resources:
        **rule_resources("download", 2000, 240),
    shell:
        f"{FLUX_CLI} download --spec {{params.spec:q}} > {{log}} 2>&1"


rule kinetics710:
    input:
        sources=derived_source_markers,
    output:
        ready=ready_marker("{dataset}"),
    wildcard_constraints:
        dataset=alternation(FLUX.datasets_of_kind("derived")),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("kinetics710"),
    log:
        f"{LOGS}/kinetics710/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/kinetics710/{{dataset}}.tsv"
    threads: threads_for("kinetics710")
    resources:
        **rule_resources("kinetics710", 8000, 30),
    shell:
        f"{FLUX_CLI} kinetics710 --spec {{params.spec:q}} > {{log}} 2>&1"


rule index:
    input:
        ready=index_inputs,
    output:
        manifest=manifest("{dataset}"),
        report=index_report("{dataset}"),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("index"),
        annotations=annotations_edited,
    log:
        f"{LOGS}/index/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/index/{{dataset}}.tsv"
    threads: threads_for("index")
    resources:
        **rule_resources("index", 4000, 60),
    shell:
        f"{FLUX_CLI} index --threads {{threads}} --spec {{params.spec:q}} > {{log}} 2>&1"
