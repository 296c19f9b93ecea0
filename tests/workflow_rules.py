"""The workflow's rules as the tests read them from the source: each line of the Snakefile and workflow/rules/*.smk
with the rule it sits in."""

import re
from collections.abc import Iterator

from flux.train.runs import STAGES
from tests.paths import REPO


def rule_lines() -> Iterator[tuple[str, str]]:
    """(rule, line) for every line inside a rule; a rule defined in a loop over the training stages (`name:
    f"train_{stage}"`) comes as its template, which `stage_names` expands."""
    for path in [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]:
        rule = None
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            declared = re.match(r"^\s*rule (\w+):", line)
            if declared or re.match(r"^\s*name:$", line):
                rule = declared.group(1) if declared else lines[number + 1].strip().removeprefix("f").strip('"')
            if rule is not None:
                yield rule, line


def stage_names(template: str) -> list[str]:
    """A name written with `{stage}` once per training stage, any other name as it is."""
    return [template.format(stage=stage) for stage in STAGES] if "{stage}" in template else [template]
