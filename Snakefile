# flux: the FluxViT reproducibility pipeline. Thin by design: configuration is data (config/*.yaml,
# validated by workflow/schemas), rules are in workflow/rules/*.smk, every job is one `flux` CLI call.
#   snakemake --cores 2                               the embedded default (synthetic data, CPU)
#   snakemake --cores 2 --configfile config/micro.yaml   the smallest run that exercises every rule
#   snakemake --configfile config/paper.yaml --workflow-profile workflow/profiles/slurm <target>
from snakemake.utils import min_version, validate

min_version("9.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


onstart:
    check_slurm_settings()
    if drop_default_job_rate_limit(workflow.scheduler):
        logger.info(f"flux: {JOB_RATE_LIMIT_DROPPED}")
    start_fork_server()


onsuccess:
    stop_fork_server()


onerror:
    stop_fork_server()


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"


# Seconds of bookkeeping run where Snakemake runs, not as cluster jobs that wait for an allocation: synthetic data
# (the embedded default's; never at paper scale), the Kinetics-710 annotation merge, tables, figures and the PDF.
localrules:
    synth,
    kinetics710,
    table,
    figure,
    document,
    pdf,


rule all:
    input:
        manifests=all_manifests(),
        checkpoints=all_checkpoints(),
        tables=all_tables(),
        figures=[figure_path(name) for name in FIGURES],
        document=f"{RESULTS}/tables/all.tex",
        recipe=f"{RESULTS}/tables/recipe.tex",
        released=[f"{RESULTS}/tables/checkpoints.tex"] if FLUX.evaluated_checkpoints else [],
    default_target: True
