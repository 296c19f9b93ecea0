"""Jobs for tests/test_forkserver.py: the fork server runs `job(argv)` (`--entry tests.forkserver_jobs:job`) where it
would run `flux.cli.main(argv)`."""

import os
import sys
import time
from pathlib import Path


def job(argv):
    action, *rest = argv
    if action == "echo":  # what the job sees of its client
        print(f"cwd={os.getcwd()}")
        print(f"variable={os.environ.get('FORKSERVER_TEST_VARIABLE')}")
        print(f"stdin={sys.stdin.read().strip()}")
        print(f"argv={sys.argv[1:]}")
        print("to stderr", file=sys.stderr)
        return 0
    if action == "exit":
        sys.exit(int(rest[0]))
    if action == "return":  # as flux.cli.main returns 2 on a FluxError
        return int(rest[0])
    if action == "raise":
        raise ValueError("raised in the job")
    if action == "sleep":  # says where it runs, then waits to be killed
        Path(rest[0]).write_text(str(os.getpid()))
        time.sleep(60)
        return 0
    raise AssertionError(f"unknown action {action}")
