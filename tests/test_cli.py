"""The `flux` command line: verbs, the flops pass-through, clean errors."""

import subprocess
import sys


def flux(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flux", *arguments], capture_output=True, text=True, timeout=120)


def test_flops_prints_the_number_last():
    result = flux("flops", "--model", "fluxvit_b", "--tokens", "1024")
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "108.1"


def test_unknown_arguments_and_bad_specs_fail_cleanly():
    result = flux("index", "--bogus")
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr
    result = flux("index", "--spec", "{not json")
    assert result.returncode == 2 and "--spec is not valid JSON" in result.stderr and "Traceback" not in result.stderr
    result = flux("index", "synth_k400")
    assert result.returncode == 2 and "needs a target and --config FILE" in result.stderr


def test_check_names_the_line_of_a_yaml_error_that_snakemake_does_not(tmp_path):
    """Snakemake's own message for a broken --configfile is 'Config file is not valid JSON or YAML'; `flux check`
    loads the same files (over config/config.yaml, as the Snakefile does) and says where."""
    from tests.paths import REPO

    broken = tmp_path / "bad.yaml"
    broken.write_text("seed: 0\nroles: {k400: synth_k400\ntables: []\n")
    run = lambda *files: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "flux", "check", *(f"--config={file}" for file in files)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    result = run(broken)
    assert result.returncode == 2 and f'"{broken}", line 3, column 7' in result.stderr and "Traceback" not in result.stderr
    result = run("config/micro.yaml")
    assert result.returncode == 0 and "config/config.yaml + config/micro.yaml: valid (micro scale" in result.stdout


def test_the_verb_table_is_the_one_list_of_verbs_and_their_rules():
    """flux.verbs names each verb's functions (they must exist) and the rules that run it: exactly the workflow
    rules whose command is `flux <verb>` (rules defined in a loop over the training stages included)."""
    import re

    from flux.verbs import VERBS, resolve
    from tests.workflow_rules import rule_lines, stage_names

    for entry in VERBS.values():
        assert callable(resolve(entry.run)) and (entry.spec is None or callable(resolve(entry.spec))), entry.name
    called = {}
    for rule, line in rule_lines():
        command = re.search(r"\} (\w+) --(?:threads|spec)", line)
        if command:
            called.update(dict.fromkeys(stage_names(rule), command.group(1)))
    listed = {rule: entry.name for entry in VERBS.values() for rule in entry.rules}
    assert called == listed
