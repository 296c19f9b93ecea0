# Training: one rule per stage of flux.train.runs.STAGES (the teacher, trained at tiny scale and imported at
# paper scale; Flux-UMT distillation; Flux-CLIP; action-recognition fine-tuning), the same rule but for its name:
# `resources.train_<stage>` sizes each stage's jobs (a Flux-UMT job takes 4 nodes, a fine-tuning job 2).


for stage in STAGES:

    rule:
        name:
            f"train_{stage}"
        input:
            manifests=train_manifests,
            parent=train_parent,
            teacher=train_teacher,
            head_map=train_head_map,
            weights=teacher_weights,
            text_encoder=text_encoder,
            llm=train_llm,
        output:
            checkpoint=run_checkpoint("{run}"),
            summary=f"{RESULTS}/runs/{{run}}/final.json",
            metrics=f"{RESULTS}/runs/{{run}}/metrics.jsonl",
        wildcard_constraints:
            run=alternation(FLUX.runs_of_stage(stage)),
        conda:
            "../envs/flux.yaml"
        params:
            spec=spec("train"),
        log:
            f"{LOGS}/train/{{run}}.log",
        benchmark:
            f"{BENCHMARKS}/train/{{run}}.tsv"
        threads: threads_for(f"train_{stage}")
        resources:
            **rule_resources(f"train_{stage}", 4000, 60),
        shell:
            f"{train_launcher(f'train_{stage}')} train --threads {{threads}} --spec {{params.spec:q}} > {{log}} 2>&1"


if FLUX.teacher.text_encoder:

    rule text_encoder:
        """The pretrained text encoder is not produced here: it comes from `dvc pull` or is copied in."""
        output:
            encoder=directory(str(FLUX.teacher.text_encoder)),
        conda:
            "../envs/flux.yaml"
        log:
            f"{LOGS}/text_encoder.log",
        benchmark:
            f"{BENCHMARKS}/text_encoder.tsv"
        resources:
            mem_mb=100,
            runtime=1,
        shell:
            "echo 'missing {output.encoder}: the text encoder of Flux-CLIP (a local Hugging Face model folder). Run "
            "`dvc pull` for it, or put the folder there (config: teacher.text_encoder)' | tee {log} >&2; exit 1"


if FLUX.teacher.weights:

    rule teacher_weights:
        """The released teacher checkpoint is not produced here: it comes from `dvc pull` or is copied in."""
        output:
            weights=str(FLUX.teacher.weights),
        conda:
            "../envs/flux.yaml"
        log:
            f"{LOGS}/teacher_weights.log",
        benchmark:
            f"{BENCHMARKS}/teacher_weights.tsv"
        resources:
            mem_mb=100,
            runtime=1,
        shell:
            "echo 'missing {output.weights}: the Flux-UMT teacher (InternVideo2-1B stage-2 vision weights). Run "
            "`dvc pull` for it, or copy the checkpoint there (config/paper.yaml: teacher.weights)' | tee {log} >&2; exit 1"


if FLUX.chat.llm:

    rule llm_weights:
        """The chat stage's LLM is not produced here: it comes from `dvc pull` or is copied in."""
        output:
            llm=directory(str(FLUX.chat.llm)),
        conda:
            "../envs/flux.yaml"
        log:
            f"{LOGS}/llm_weights.log",
        benchmark:
            f"{BENCHMARKS}/llm_weights.tsv"
        resources:
            mem_mb=100,
            runtime=1,
        shell:
            "echo 'missing {output.llm}: the frozen LLM of main Table 10 (a local Hugging Face causal LM folder). Run "
            "`dvc pull` for it, or put the folder there (config: chat.llm)' | tee {log} >&2; exit 1"

else:

    rule llm:
        """The embedded default's tiny causal LM, trained on the chat data's text, then frozen by the chat stage."""
        input:
            manifests=llm_manifests,
        output:
            llm=str(FLUX.tiny_llm_path),
            summary=str(FLUX.tiny_llm_path.with_suffix(".json")),
        conda:
            "../envs/flux.yaml"
        params:
            spec=spec("llm", "tiny"),
        log:
            f"{LOGS}/llm.log",
        benchmark:
            f"{BENCHMARKS}/llm.tsv"
        threads: threads_for("llm")
        resources:
            **rule_resources("llm", 2000, 30),
        shell:
            f"{FLUX_CLI} llm --threads {{threads}} --spec {{params.spec:q}} > {{log}} 2>&1"
