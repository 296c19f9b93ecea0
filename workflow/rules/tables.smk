# Paper tables rendered as LaTeX from metric files and manifests (never by running a model).


# One rule for every table: its inputs are the files its job spec names (flux.tables.job_spec: metrics files,
# manifests, the recipe reference, the paper's numbers), and every table is written as LaTeX, JSON and CSV.
rule table:
    input:
        unpack(table_inputs),
    output:
        table=report(f"{RESULTS}/tables/{{table}}.tex", caption="../report/table.rst", category="Tables"),
        data=f"{RESULTS}/tables/{{table}}.json",
        csv=f"{RESULTS}/tables/{{table}}.csv",
    wildcard_constraints:
        table=alternation(TABLES),
    conda:
        "../envs/flux.yaml"
    params:
        spec=table_spec_param,
    log:
        f"{LOGS}/tables/{{table}}.log",
    benchmark:
        f"{BENCHMARKS}/tables/{{table}}.tsv"
    threads: threads_for("table")
    resources:
        **rule_resources("table", 1000, 10),
    shell:
        f"{FLUX_CLI} table --spec {{params.spec:q}} > {{log}} 2>&1"


# results/tables/all.tex: one LaTeX document that \inputs every table of this configuration (and shows the
# figures); `snakemake results/tables/all.pdf` compiles it (needs pdflatex: TeX Live's latex-extra set).
rule document:
    input:
        tables=all_tables(),
        figures=[figure_path(name) for name in FIGURES],
    output:
        document=f"{RESULTS}/tables/all.tex",
    conda:
        "../envs/flux.yaml"
    params:
        spec=lambda wildcards: job_spec_json(FLUX, "document", "all"),
    log:
        f"{LOGS}/tables/all.log",
    benchmark:
        f"{BENCHMARKS}/tables/all.tsv"
    threads: threads_for("document")
    resources:
        **rule_resources("document", 1000, 10),
    shell:
        f"{FLUX_CLI} document --spec {{params.spec:q}} > {{log}} 2>&1"


rule pdf:
    input:
        document=f"{RESULTS}/tables/all.tex",
    output:
        pdf=f"{RESULTS}/tables/all.pdf",
    conda:
        "../envs/flux.yaml"
    log:
        f"{LOGS}/tables/all_pdf.log",
    benchmark:
        f"{BENCHMARKS}/tables/all_pdf.tsv"
    threads: threads_for("pdf")
    resources:
        **rule_resources("pdf", 1000, 10),
    params:
        spec=lambda wildcards: job_spec_json(FLUX, "pdf", "all"),
    shell:
        f"{FLUX_CLI} pdf --spec {{params.spec:q}} > {{log}} 2>&1"


rule figure:
    input:
        lambda wildcards: figure_inputs(FLUX, wildcards.figure),
    output:
        figure=report(f"{RESULTS}/figures/{{figure}}.png", caption="../report/figure.rst", category="Figures"),
    wildcard_constraints:
        figure=alternation(FIGURES),
    conda:
        "../envs/flux.yaml"
    params:
        spec=lambda wildcards: job_spec_json(FLUX, "figure", wildcards.figure),
    log:
        f"{LOGS}/figures/{{figure}}.log",
    benchmark:
        f"{BENCHMARKS}/figures/{{figure}}.tsv"
    threads: threads_for("figure")
    resources:
        **rule_resources("figure", 1000, 10),
    shell:
        f"{FLUX_CLI} figure --spec {{params.spec:q}} > {{log}} 2>&1"
