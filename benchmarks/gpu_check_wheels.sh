#!/usr/bin/env bash
# Wheels for benchmarks/gpu_check.py's DeepSpeed part on a lent GPU machine (Python 3.12, no registry there):
# DeepSpeed itself (built here as a pure-Python wheel, no CUDA ops: the trainer brings its own optimiser) and the
# packages it needs that the machine's image lacks (../.library/device/KINDS.md lists what is there).
#   bash benchmarks/gpu_check_wheels.sh          # -> .whl/ (ignored through .git/info/exclude), about 5 MB
# Then, per ../.library/device/README.md, carry ".whl" and start the command with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
rm -rf .whl && mkdir .whl
python=${PYTHON:-.venv/bin/python}
DS_BUILD_OPS=0 "$python" -m pip wheel -q --no-deps --no-build-isolation -w .whl deepspeed==0.19.8
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  hjson==3.1.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
ls -la .whl
