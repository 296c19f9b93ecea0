"""The README's two commands stay true: exactly two, and CI runs the test command verbatim."""

import re

from tests.paths import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Set up and go", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_exactly_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    run_default, run_tests = commands
    assert "snakemake" in run_default and "pytest" in run_tests
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert run_tests in ci_lines


def readme_snakemake_commands() -> list[str]:
    """Every `snakemake ...` the README shows inline, as written (placeholders like <run> left out)."""
    text = re.sub(r"```.*?```", "", (REPO / "README.md").read_text(), flags=re.S).replace("\n", " ")
    spans = [re.sub(r"\s+", " ", span).strip() for span in re.findall(r"`([^`]+)`", text)]
    return [span for span in spans if re.match(r"^(\w+=\S+ )*snakemake ", span) and "<" not in span]


def test_every_snakemake_command_of_the_readme_plans_as_written(tmp_path):
    """Run in dry-run mode (`-n`) exactly as written, in a copy of the workflow: a target written after
    `--configfile` (which takes several values) would be read as a config file and fail here. `--report` needs a
    finished run's records, so it is left out."""
    import os
    import shutil
    import subprocess
    import sys

    commands = [command for command in readme_snakemake_commands() if "--report" not in command]
    assert any("--configfile config/paper.yaml" in command for command in commands) and len(commands) >= 8
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "Snakefile", root)
    for folder in ("config", "workflow"):
        shutil.copytree(REPO / folder, root / folder)
    env = {**os.environ, "FLUX_SLURM_PARTITION": "debug", "FLUX_SLURM_ACCOUNT": "project"}
    for command in commands:
        words = command.split()
        assignments = dict(word.split("=", 1) for word in words[: words.index("snakemake")])
        arguments = words[words.index("snakemake") + 1 :]
        if "-n" not in arguments and "--lint" not in arguments:
            arguments.append("-n")
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", *arguments], cwd=root, env={**env, **assignments}, capture_output=True, text=True
        )
        assert result.returncode == 0, f"README: `{command}` fails as written:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
