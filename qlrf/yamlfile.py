"""One way to read a YAML file into a pydantic model, with errors that name the file and the field.

Shared by the small policy files (instance types, the DR target map): a reader sees
``policy/dr_targets.yaml: sites.syd1: unknown target 'nowhere'``, never a pydantic dump.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_model(model: type[M], path: Path, error: type[ValueError]) -> M:
    """`path` parsed as YAML and validated as `model`; `error("<path>: <field>: <message>")` otherwise."""
    try:
        return model.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise error(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}") from exc
