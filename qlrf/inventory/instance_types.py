"""vCPU and memory per VM, from its instance type: what capacity planning and failover simulation add up.

Cloud types are looked up in ``policy/instance_types.yaml`` (validated on load; an error names the
file and the entry). vSphere VMs carry their own size in the normalised ``instance_type``
(``"<N>vCPU-<M>MB"``), parsed here. A type neither known nor parseable is unknown: readers report it
by name and never count it as zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt

from qlrf.settings import project_root
from qlrf.yamlfile import load_model

TYPES_PATH = project_root() / "policy" / "instance_types.yaml"
_VSPHERE = re.compile(r"^(\d+)vCPU-(\d+)MB$")


class InstanceTypesError(ValueError):
    """The instance-type file is malformed; the message names the file and the entry."""


class _Size(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vcpu: PositiveInt
    memory_gib: PositiveFloat


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    platforms: dict[str, dict[str, _Size]]


@dataclass(frozen=True)
class Size:
    vcpu: int
    memory_gib: float


@dataclass(frozen=True)
class InstanceTypes:
    sizes: dict[tuple[str, str], Size]

    def size_of(self, platform: str, instance_type: str | None) -> Size | None:
        """The type's size, or None when it is unknown (never a zero size)."""
        if not instance_type:
            return None
        if platform == "vsphere":
            hit = _VSPHERE.match(instance_type)
            return Size(int(hit.group(1)), int(hit.group(2)) / 1024) if hit else None
        return self.sizes.get((platform, instance_type))

    def table(self) -> pa.Table:
        """(platform, instance_type, vcpu, memory_gib) for joins in DuckDB; vSphere types are parsed
        in SQL by the reader (see :data:`VSPHERE_SQL`)."""
        rows = sorted(self.sizes.items())
        return pa.table({
            "platform": [p for (p, _), _s in rows],
            "instance_type": [t for (_, t), _s in rows],
            "vcpu": pa.array([s.vcpu for _, s in rows], pa.int32()),
            "memory_gib": pa.array([s.memory_gib for _, s in rows], pa.float64()),
        })


# DuckDB expressions over a row with `platform` and `instance_type` that give a vSphere VM's size.
VSPHERE_VCPU_SQL = "TRY_CAST(regexp_extract(instance_type, '^(\\d+)vCPU-(\\d+)MB$', 1) AS INTEGER)"
VSPHERE_MEMORY_GIB_SQL = "TRY_CAST(regexp_extract(instance_type, '^(\\d+)vCPU-(\\d+)MB$', 2) AS DOUBLE) / 1024"


def load_instance_types(path: Path | str | None = None) -> InstanceTypes:
    path = Path(path or TYPES_PATH)
    parsed = load_model(_File, path, InstanceTypesError)
    sizes = {(platform, name): Size(s.vcpu, s.memory_gib)
             for platform, types in parsed.platforms.items() for name, s in types.items()}
    return InstanceTypes(sizes)


@lru_cache(maxsize=1)
def default_instance_types() -> InstanceTypes:
    return load_instance_types()


__all__ = ["InstanceTypes", "InstanceTypesError", "Size", "default_instance_types", "load_instance_types",
           "VSPHERE_MEMORY_GIB_SQL", "VSPHERE_VCPU_SQL"]
