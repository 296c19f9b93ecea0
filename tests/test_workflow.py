"""The Snakemake spine, for real: lint, dry runs at every scale, config errors before any job, and the
micro configuration run end to end (synthetic mp4 files -> manifests -> supplementary Table 8, and the
training chain teacher -> Flux-UMT -> Flux-CLIP stage 1 -> stage 2, Flux-UMT -> K710 -> K400)."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from flux.cluster import JOB_RATE_LIMIT_DROPPED
from tests.paths import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def workspace(tmp_path: Path) -> Path:
    """A copy of the workflow files, so runs here never touch the checkout's data/ or .snakemake/."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "Snakefile", root)
    for folder in ("config", "workflow"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def snakemake(root: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*SNAKEMAKE, *arguments], cwd=root, capture_output=True, text=True, timeout=1200)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(arguments)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    root = workspace(tmp_path_factory.mktemp("micro"))
    started = time.perf_counter()
    snakemake(root, "--cores", "2", "--configfile", "config/micro.yaml")
    return root, time.perf_counter() - started


def test_lint_is_clean(tmp_path):
    result = snakemake(workspace(tmp_path), "--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


@pytest.mark.parametrize("configs", [[], ["config/micro.yaml"], ["config/paper.yaml"]])
def test_dry_run_plans_every_dataset(tmp_path, configs):
    arguments = ["-n", "--cores", "2"] + (["--configfile", *configs] if configs else [])
    result = snakemake(workspace(tmp_path), *arguments)
    summary = result.stdout
    assert "index" in summary and "results/tables/supp_table8.csv" in summary
    if configs == ["config/paper.yaml"]:
        assert all(re.search(rf"^{rule}\s+\d+", summary, flags=re.M) for rule in ("download", "kinetics710"))
        assert not re.search(r"^synth\s+\d+", summary, flags=re.M)
        # what jobs need later and a fresh checkout lacks is said now, under its key; its placeholder job is planned
        for key in ("teacher.weights", "teacher.text_encoder", "checkpoints.files.fluxvit_s14_k400"):
            assert f"flux: {key}: " in result.stderr
        assert re.search(r"^text_encoder\s+1\b", summary, flags=re.M)
    else:
        assert re.search(r"^synth\s+\d+", summary, flags=re.M) and not re.search(r"^download\s+\d+", summary, flags=re.M)


def test_dry_run_plans_the_released_models_evaluations(tmp_path):
    """At paper scale, in a fresh checkout (no weights, no data), the checkpoints table plans each released model's
    import and evaluation; the Google-Drive-only files are checked by the import job, not by the plan."""
    result = snakemake(workspace(tmp_path), "-n", "results/tables/checkpoints.tex", "--configfile", "config/paper.yaml")
    planned = set(re.findall(r"results/metrics/(\w+)/model_zoo\.json", result.stdout))
    assert planned == {
        "fluxvit_s14_k400",
        "fluxvit_b14_k400",
        "internvideo2_dist_s14_k400",
        "internvideo2_dist_b14_k400",
        "internvideo2_dist_l14_k400",
    }
    assert re.search(r"import_checkpoint\s+5\b", result.stdout) and re.search(r"^table\s+1\b", result.stdout, flags=re.M)


@pytest.mark.parametrize(
    "override, message",
    [
        ("roles: {k400: kinetics4000}", "roles.k400: unknown dataset 'kinetics4000'"),
        ("training: {runs: [k400_x]}", "training.runs: unknown run(s) ['k400_x']"),
        ("models: {S: fluxvit_xl}", "models: {'S': 'fluxvit_xl'} are not in the model registry"),
        ("training: {stages: {finetune: {epochs: 0}}}", "epochs"),
        ("local_paths: {kinetics400: /nonexistent/k400}", "local_paths.kinetics400: directory /nonexistent/k400 does not exist"),
        ("registry: config/missing.yaml", "config/missing.yaml does not exist"),
        ("roles: {ucf101: synth_msrvtt}", "roles.ucf101: synth_msrvtt is a video_text dataset"),
    ],
)
def test_bad_config_fails_the_dry_run_with_the_key(tmp_path, override, message):
    root = workspace(tmp_path)
    (root / "bad.yaml").write_text(override + "\n")
    result = snakemake(root, "-n", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (root / "data").exists()  # no job ran


@pytest.mark.slow
def test_micro_run_end_to_end(micro_run):
    root, seconds = micro_run
    table = (root / "results" / "tables" / "supp_table8.tex").read_text()
    assert "Micro scale" in table and r"\bottomrule" in table
    numbers = json.loads((root / "results" / "tables" / "supp_table8.json").read_text())
    manifests = root / "data" / "manifests"
    for row in numbers["rows"][:10]:
        dataset = row["source"].replace(r"\_", "_")
        frame = pd.read_parquet(manifests / f"{dataset}.parquet")
        train = frame[frame["split"] == "train"]
        assert row["media_count"] == int(train["decodable"].sum()) > 0
    k710 = json.loads((root / "data" / "raw" / "synth_k710" / "annotations" / "build_report.json").read_text())
    assert k710["train_duplicate_rows_removed"] > 0 and k710["train_ids_dropped_for_overlap"] > 0
    for dataset in ("synth_k400", "synth_msvd", "synth_coco"):
        report = json.loads((manifests / f"{dataset}.report.json").read_text())
        assert report["undecodable"] == 0 and report["items"] > 0
    assert (root / "logs" / "synth" / "synth_k400.log").is_file()
    assert (root / "results" / "benchmarks" / "index" / "synth_k400.tsv").is_file()
    first_log = min((root / ".snakemake" / "log").glob("*.snakemake.log"))  # named by start time: the fixture's run
    assert JOB_RATE_LIMIT_DROPPED in first_log.read_text()  # the onstart hook ran in the real scheduler
    # every job forked from the fork server (config.yaml's fork_server, a local run), which stopped with the run
    socket_path = re.search(r"jobs fork from the fork server at (\S+) ", first_log.read_text()).group(1)
    assert not Path(socket_path).exists()
    assert "listening on" in (root / "logs" / "fork_server.log").read_text()
    train_logs = list((root / "logs" / "train").glob("*.log"))
    assert train_logs and all("flux: job ran in the fork server" in log.read_text() for log in train_logs)
    print(f"micro run: {seconds:.1f} s")


@pytest.mark.slow
def test_micro_run_trains_the_chain(micro_run):
    root, _ = micro_run
    runs = root / "results" / "runs"
    chain = ("teacher", "umt_s", "clip1_s", "clip2_s", "k710_s", "k400_s")
    assert sorted(path.name for path in runs.iterdir()) == sorted(chain)
    for run in chain:
        summary = json.loads((runs / run / "final.json").read_text())
        assert summary["run"] == run and summary["steps"] > 0 and summary["tokens_per_second"] > 0
        assert summary["provenance"]["config_sha256"]
        records = [json.loads(line) for line in (runs / run / "metrics.jsonl").read_text().splitlines()]
        assert records and records[-1]["step"] == summary["steps"]
        assert {"loss", "lr", "grad_norm", "tokens"} <= set(records[-1])
        payload = torch.load(runs / run / "final.pt", map_location="cpu", weights_only=True)
        assert payload["metadata"]["run"] == run and payload["model"]
    assert set(records[-1]["grad_norm"]) >= {"patch_embed", "blocks", "attention_pooling", "classifier"}
    k400 = json.loads((runs / "k400_s" / "final.json").read_text())["validation"]
    # 8 classes x round(38 x 0.25) validation videos (the registry's claims-sized split at micro's count_scale)
    assert k400["videos"] == 8 * 10 and k400["undecodable"] == 0 and 0.0 <= k400["top1"] <= 1.0
    assert "text" in torch.load(runs / "teacher" / "final.pt", map_location="cpu", weights_only=True)
    assert not list((root / "results" / "state").rglob("*.pt"))  # finished runs leave no resume state


@pytest.mark.slow
def test_a_newer_parent_retrains_every_descendant_in_one_invocation(micro_run):
    """Checkpoints are plain (not `ancient`) inputs: Snakemake would not propagate through ancient ones."""
    root, _ = micro_run
    teacher = root / "results" / "runs" / "teacher" / "final.pt"
    before = teacher.stat()
    os.utime(teacher, (before.st_atime, before.st_mtime + 3600))
    try:
        result = snakemake(root, "-n", "--configfile", "config/micro.yaml")
    finally:
        os.utime(teacher, (before.st_atime, before.st_mtime))
    planned = dict(re.findall(r"^(train_\w+)\s+(\d+)$", result.stdout, flags=re.M))
    assert planned == {"train_umt": "1", "train_clip": "2", "train_finetune": "2"}


@pytest.mark.slow
def test_second_run_has_nothing_to_do(micro_run):
    root, _ = micro_run
    result = snakemake(root, "-n", "--configfile", "config/micro.yaml")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_by_hand_matches_the_rule(micro_run):
    root, _ = micro_run
    manifest = root / "data" / "manifests" / "synth_msrvtt.parquet"
    before = pd.read_parquet(manifest)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "flux",
        "index",
        "synth_msrvtt",
        "--config",
        "config/config.yaml",
        "--config",
        "config/micro.yaml",
    ]
    subprocess.run(command, cwd=root, check=True, capture_output=True, env=env)
    assert pd.read_parquet(manifest).equals(before)
    failed = subprocess.run(
        [sys.executable, "-m", "flux", "download", "kinetics400", "--config", "config/paper.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert failed.returncode == 2
    assert "local_paths.kinetics400" in failed.stderr and "Traceback" not in failed.stderr


@pytest.mark.slow
def test_micro_run_builds_its_tables_from_metrics_files(micro_run):
    """Evaluation -> metrics -> tables: each table's numbers are those of the metrics files it names."""
    root, _ = micro_run
    tables = root / "results" / "tables"
    built = {path.stem for path in tables.glob("*.tex")}
    assert {"main_table6", "main_table9", "supp_table1", "supp_table4", "supp_table5", "all"} <= built
    main6 = json.loads((tables / "main_table6.json").read_text())
    assert {row["id"] for row in main6["rows"] if row["cells"][0]["ours"] is not None} == {
        f"flux_s.{b}" for b in (3072, 2048, 1024, 512)
    }
    assert "flux_b.3072" in main6["skipped"]  # k400_b is not trained in the micro configuration
    metrics = json.loads((root / "results" / "metrics" / "k400_s" / "k400_views.json").read_text())
    # the protocol's 4 x 3 views capped by evaluation.max_views; 64 of the 80 validation videos (evaluation.max_videos)
    assert metrics["views"] == [1, 1] and metrics["results"]["k400"]["8x224@2048"]["videos"] == 64
    for name in ("main_table6", "main_table9", "supp_table1", "supp_table4"):
        for row in json.loads((tables / f"{name}.json").read_text())["rows"]:
            for cell in row["cells"]:
                for source in cell["sources"]:
                    path, address = source.split(" :: ")
                    role, key, metric = address.split("/", 2)
                    value = json.loads((root / path).read_text())["results"][role][key]
                    for part in metric.split("."):
                        value = value[part]
                    assert cell["ours"] == value or len(cell["sources"]) > 1
    assert (root / "results" / "figures" / "teaser.png").stat().st_size > 1000
    document = (tables / "all.tex").read_text()
    assert r"\input{main_table6}" in document and "teaser.png" in document


@pytest.mark.slow
def test_an_edited_annotation_file_reindexes_its_dataset(micro_run):
    """An annotation file edited after its dataset's fetch (a corrected label, a local dataset's new list) re-indexes
    that dataset, and only it; put back as it was fetched, nothing is left to do."""
    root, _ = micro_run
    edited = sorted((root / "data" / "raw" / "synth_ucf101").rglob("*.txt"))[0]
    original = edited.read_bytes()
    plan = ("data/manifests/synth_ucf101.parquet", "-n", "--cores", "2", "--configfile", "config/micro.yaml")
    edited.write_bytes(original + b"\n")
    try:
        result = snakemake(root, *plan)
    finally:
        edited.write_bytes(original)
    assert re.search(r"^index\s+1\b", result.stdout, flags=re.M) and "synth_ucf101" in result.stdout
    assert "Nothing to be done" in (lambda done: done.stdout + done.stderr)(snakemake(root, *plan))


def official_layout_checkpoint(path: Path, classes: int) -> None:
    """The official FluxViT test fixture (official key layout and container, argparse `args` included) with a
    random classifier of `classes` rows."""
    import argparse

    fixture = REPO / "tests" / "models" / "fixtures" / "official_fluxvit_tiny.pth"
    with torch.serialization.safe_globals([argparse.Namespace]):
        payload = torch.load(fixture, weights_only=True)
    generator = torch.Generator().manual_seed(0)
    for head in range(3):
        payload["model"][f"head.{head}.weight"] = 0.1 * torch.randn(classes, 128, generator=generator)
        payload["model"][f"head.{head}.bias"] = torch.zeros(classes)
    torch.save(payload, path)


@pytest.mark.slow
def test_an_external_checkpoint_is_imported_evaluated_and_tabled(micro_run):
    """A checkpoint registered by a configuration overlay goes through `flux import`, the evaluation rule and the
    checkpoints table, with its published number beside ours."""
    root, _ = micro_run
    classes = json.loads((root / "data" / "manifests" / "synth_k400.report.json").read_text())["classes"]
    official_layout_checkpoint(root / "official.pth", classes)
    (root / "released.yaml").write_text(
        "checkpoints:\n"
        "  evaluate: [official_tiny]\n"
        "  files: {official_tiny: official.pth}\n"
        "  entries:\n"
        "    official_tiny:\n"
        "      title: Official-layout FluxViT-T\n"
        "      model: fluxvit_tiny\n"
        "      classifier: {role: k400}\n"
        "      heads: {0: 3072, 1: 2048, 2: 1024}\n"
        "      source: {local: a test file}\n"
        "      published: [{protocol: model_zoo, setting: 8x224@2048, metric: top1, value: 50.0, source: a test}]\n"
    )
    snakemake(root, "results/tables/checkpoints.csv", "--cores", "2", "--configfile", "config/micro.yaml", "released.yaml")
    summary = json.loads((root / "results" / "runs" / "official_tiny" / "final.json").read_text())
    assert summary["imported"]["verified"] is False and summary["load_report"] == "all keys matched"
    metrics = json.loads((root / "results" / "metrics" / "official_tiny" / "model_zoo.json").read_text())
    result = metrics["results"]["k400"]["8x224@2048"]
    assert (metrics["views"], result["head"], result["budget"]) == ([1, 1], 1, 64)
    with open(root / "results" / "tables" / "checkpoints.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["checkpoint"], row["setting"], row["views"], row["head"]) == ("official_tiny", "8x224@2048", "8x1x1", "1")
    assert float(row["top1"]) == result["top1"] and float(row["published"]) == 50.0
    assert float(row["delta"]) == pytest.approx(result["top1"] - 50.0, abs=0.01)
    assert "Official-layout FluxViT-T" in (root / "results" / "tables" / "checkpoints.tex").read_text()


@pytest.mark.slow
def test_all_tex_compiles_and_the_pdf_shows_the_metrics(micro_run):
    root, _ = micro_run
    if shutil.which("pdflatex") is None or shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install TeX Live and poppler-utils (.ci/run)")
        pytest.skip("pdflatex / pdftotext not installed")
    snakemake(root, "results/tables/all.pdf", "--cores", "2", "--configfile", "config/micro.yaml")
    text = subprocess.run(
        ["pdftotext", "-layout", str(root / "results" / "tables" / "all.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    shown = 0
    for name in ("main_table6", "main_table9", "supp_table1", "supp_table4"):
        for row in json.loads((root / "results" / "tables" / f"{name}.json").read_text())["rows"]:
            for cell in row["cells"]:
                if cell["text"] is not None:
                    assert cell["text"] in text, (name, row["id"], cell)
                    shown += 1
    assert shown > 50
    claims = json.loads((root / "results" / "tables" / "claims.json").read_text())["rows"]
    assert claims and all(row["verdict"] in text for row in claims)
    assert "ours [95% interval]" in text


@pytest.mark.slow
def test_the_report_holds_every_table_and_figure(micro_run):
    root, _ = micro_run
    snakemake(root, "--configfile", "config/micro.yaml", "--report", "results/report.html")
    report = (root / "results" / "report.html").read_text(errors="replace")
    for name in ("main_table6", "main_table9", "supp_table1", "supp_table8", "teaser"):
        assert name in report


def run_command(root: Path, *command: str) -> subprocess.CompletedProcess:
    result = subprocess.run(list(command), cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def published(micro_run, tmp_path_factory):
    """The micro run's data and checkpoints in a git + DVC repository, pushed to a local directory remote."""
    source, _ = micro_run
    base = tmp_path_factory.mktemp("dvc")
    repo, store = base / "published", base / "store"
    shutil.copytree(source, repo, ignore=shutil.ignore_patterns(".snakemake"))
    dvc = [sys.executable, "-m", "dvc"]
    run_command(repo, "git", "init", "-q")
    run_command(repo, *dvc, "init", "-q")
    run_command(repo, *dvc, "remote", "add", "-d", "store", str(store))
    run_command(repo, *dvc, "remote", "modify", "store", "verify", "true")
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")  # the project's: results/runs.dvc is committed
    run_command(repo, *dvc, "add", "-q", "data", "results/runs")
    run_command(repo, "git", "add", "-A")
    run_command(repo, "git", "-c", "user.name=ci", "-c", "user.email=ci@example.org", "commit", "-qm", "micro run")
    run_command(repo, *dvc, "push", "-q")  # no targets: every .dvc file of the repository
    assert not run_command(repo, *dvc, "status", "--cloud", "--json").stdout.strip("{}\n ")
    return repo, store


@pytest.mark.slow
def test_dvc_pull_then_a_table_retrains_nothing(published, tmp_path):
    repo, _ = published
    clone = tmp_path / "clone"
    run_command(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "data").exists() and (clone / "data.dvc").is_file() and (clone / "results" / "runs.dvc").is_file()
    run_command(clone, sys.executable, "-m", "flux", "pull")
    assert (clone / "results" / "runs" / "k400_s" / "final.pt").is_file()
    target = "results/tables/supp_table1.tex"
    plan = snakemake(clone, target, "-n", "--workflow-profile", "workflow/profiles/dvc", "--configfile", "config/micro.yaml")
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, flags=re.M))
    assert set(planned) == {"evaluate", "table", "total"}, plan.stdout[-3000:]  # no data or training job
    snakemake(clone, target, "--cores", "2", "--workflow-profile", "workflow/profiles/dvc", "--configfile", "config/micro.yaml")
    ours = json.loads((clone / "results" / "tables" / "supp_table1.json").read_text())["rows"]
    original = json.loads((repo / "results" / "tables" / "supp_table1.json").read_text())["rows"]
    strip = lambda rows: [[(c["column"], c["ours"]) for c in row["cells"]] for row in rows]  # noqa: E731
    assert strip(ours) == strip(original)


@pytest.mark.slow
def test_a_corrupted_remote_file_is_named_and_nothing_is_checked_out(published, tmp_path):
    repo, store = published
    victim = sorted(path for path in (store / "files" / "md5").rglob("*") if path.is_file() and not path.name.endswith(".dir"))[0]
    original = victim.read_bytes()
    try:
        victim.chmod(0o644)
        victim.write_bytes(b"corrupted")
        clone = tmp_path / "clone"
        run_command(tmp_path, "git", "clone", "-q", str(repo), str(clone))
        result = subprocess.run([sys.executable, "-m", "flux", "pull"], cwd=clone, capture_output=True, text=True, timeout=600)
        assert result.returncode == 2
        assert "is corrupted" in result.stderr and str(victim) in result.stderr
        named = re.search(r"^\s+(\S+): the remote copy", result.stderr, flags=re.M).group(1)
        assert not (clone / named).exists()  # the damaged file is not checked out
    finally:
        victim.write_bytes(original)
