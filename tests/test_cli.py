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
