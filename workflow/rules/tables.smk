# Paper tables rendered as LaTeX from metric files and manifests (never by running a model).


rule supp_table8:
    input:
        manifests=table8_manifests,
        paper_numbers=str(FLUX.paper_numbers_path),
    output:
        table=str(FLUX.table_path("supp_table8")),
        data=str(FLUX.table_path("supp_table8").with_suffix(".json")),
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("table", "supp_table8"),
    log:
        f"{LOGS}/tables/supp_table8.log",
    benchmark:
        f"{BENCHMARKS}/tables/supp_table8.tsv"
    threads: threads_for("supp_table8")
    resources:
        mem_mb=resource("supp_table8", "mem_mb", 1000),
        runtime=resource("supp_table8", "runtime", 10),
    shell:
        f"{FLUX_CLI} table --spec {{params.spec:q}} > {{log}} 2>&1"
