# Paper tables rendered as LaTeX from metric files and manifests (never by running a model).


rule supp_table8:
    input:
        manifests=table8_manifests,
        paper_numbers=str(FLUX.paper_numbers_path),
    output:
        table=report(str(FLUX.table_path("supp_table8")), caption="../report/supp_table8.rst", category="Tables"),
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
        **rule_resources("supp_table8", 1000, 10),
    shell:
        f"{FLUX_CLI} table --spec {{params.spec:q}} > {{log}} 2>&1"


rule table:
    input:
        metrics=table_metrics,
        paper_numbers=str(FLUX.paper_numbers_path),
    output:
        table=report(f"{RESULTS}/tables/{{table}}.tex", caption="../report/table.rst", category="Tables"),
        data=f"{RESULTS}/tables/{{table}}.json",
    wildcard_constraints:
        table=alternation(GRID_TABLES),
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


# Supplementary Tables 5-7: the settings actually used, rendered from the resolved runs.
rule settings_table:
    input:
        paper_numbers=str(FLUX.paper_numbers_path),
    output:
        table=report(f"{RESULTS}/tables/{{table}}.tex", caption="../report/settings_table.rst", category="Settings"),
        data=f"{RESULTS}/tables/{{table}}.json",
    wildcard_constraints:
        table=alternation(SETTINGS_TABLES_BUILT),
    conda:
        "../envs/flux.yaml"
    params:
        spec=table_spec_param,
    log:
        f"{LOGS}/tables/{{table}}.log",
    benchmark:
        f"{BENCHMARKS}/tables/{{table}}.tsv"
    threads: threads_for("settings_table")
    resources:
        **rule_resources("settings_table", 1000, 10),
    shell:
        f"{FLUX_CLI} table --spec {{params.spec:q}} > {{log}} 2>&1"


# The recipe table: every run's hyper-parameters beside the paper's and the official code's (no data, no training:
# `snakemake results/tables/recipe.tex --configfile config/paper.yaml` checks a cluster configuration first).
rule recipe_table:
    input:
        reference=str(FLUX.recipe_reference_path),
    output:
        table=report(f"{RESULTS}/tables/recipe.tex", caption="../report/recipe_table.rst", category="Settings"),
        csv=f"{RESULTS}/tables/recipe.csv",
        data=f"{RESULTS}/tables/recipe.json",
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("table", "recipe"),
    log:
        f"{LOGS}/tables/recipe.log",
    benchmark:
        f"{BENCHMARKS}/tables/recipe.tsv"
    threads: threads_for("recipe_table")
    resources:
        **rule_resources("recipe_table", 1000, 10),
    shell:
        f"{FLUX_CLI} table --spec {{params.spec:q}} > {{log}} 2>&1"


# The released models beside their published numbers (config/checkpoints.yaml, `checkpoints.evaluate`).
rule checkpoints_table:
    input:
        metrics=checkpoint_metrics,
    output:
        table=report(f"{RESULTS}/tables/checkpoints.tex", caption="../report/checkpoints_table.rst", category="Tables"),
        csv=f"{RESULTS}/tables/checkpoints.csv",
        data=f"{RESULTS}/tables/checkpoints.json",
    conda:
        "../envs/flux.yaml"
    params:
        spec=spec("table", "checkpoints"),
    log:
        f"{LOGS}/tables/checkpoints.log",
    benchmark:
        f"{BENCHMARKS}/tables/checkpoints.tsv"
    threads: threads_for("checkpoints_table")
    resources:
        **rule_resources("checkpoints_table", 1000, 10),
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
