"""Reading the project's YAML files: one loader (safe, libyaml's when available, refusing a key written twice)
and JSON-schema validation against workflow/schemas, for the configuration, the registries and the tables file."""

from __future__ import annotations

from pathlib import Path

import yaml

from flux.errors import ConfigError


def schema_path(name: str) -> Path:
    """A schema of workflow/schemas: beside the package (editable install), else in the working directory
    (a wheel install run from the checkout, where the Snakefile is)."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        candidate = root / "workflow" / "schemas" / name
        if candidate.is_file():
            return candidate
    raise ConfigError(f"workflow/schemas/{name} not found; run flux from the repository checkout (where the Snakefile is)")


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader (libyaml's parser when PyYAML has it: about 10x faster, and config loading is most of
    `snakemake -n`) that refuses a key written twice in one mapping, which YAML would resolve silently as
    last-wins; keys a `<<` merge brings in may still be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"key {key!r} appears twice; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml_file(path: Path) -> object:
    """A YAML file with the safe, duplicate-refusing loader; a syntax error or a duplicate key is a ConfigError
    naming the file and line."""
    with open(path, encoding="utf-8") as handle:
        try:
            return yaml.load(handle, Loader=UniqueKeyLoader)  # noqa: S506 (a safe loader)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None


def read_yaml_mapping(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist; check the path (relative to the working directory)")
    content = read_yaml_file(path)
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return content


def validate_schema(document: dict, schema: Path) -> None:
    """JSON-schema validation with defaults filled in (snakemake.utils.validate semantics)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(document, str(schema))
    except WorkflowError as error:
        raise ConfigError(f"{schema.name}: {error}") from None
