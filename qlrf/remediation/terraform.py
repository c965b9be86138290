"""Terraform/OpenTofu-managed estates (issue 12 item 4): the plan changes the Terraform code, not the cloud.

A target is Terraform-managed when its tags say so (``managed-by=terraform``, ``terraform=true``) or a
``terraform.estates`` entry of ``policy/remediation.yaml`` declares it. Such a plan carries a hashed
``spec.terraform`` section (:class:`~qlrf.remediation.plans.TerraformDelivery`): the repo checkout,
the path pattern (glob + JSON pointer into ``*.tfvars.json``, or an HCL variable in ``*.tfvars``)
of the value that pins the image, and the resource addresses the change may touch. From it:

* :func:`make_patch` rewrites that value to the golden image and returns a unified diff (and
  :func:`commit_branch` optionally commits it on a new git branch of the repo). A pattern that
  matches no file, or files without the pointer/variable, is a :class:`TerraformError` naming it;
  nothing is written.
* the human runs ``terraform plan`` + ``terraform show -json`` and sends the file back:
  :mod:`qlrf.remediation.tf_evidence` checks it with ``policy/terraform.rego`` and records its
  sha256; the approval of the task must name that hash.

The executor never runs such a plan through a driver (it would change a Terraform-managed resource
behind Terraform's back): see :func:`qlrf.remediation.executor.execute_plan`.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from qlrf.remediation.plans import PatchPlan, TerraformDelivery

MANAGED_TAGS: dict[str, tuple[str, ...]] = {"managed-by": ("terraform", "opentofu", "tofu"), "terraform": ("true",)}
ESTATE_TAG = "terraform-estate"  # names the policy's estate entry for a tag-detected target


class TerraformError(ValueError):
    """A Terraform delivery that cannot be made; the message names the repo, pattern and file."""


class EstateMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    platform: str | None = None
    site: str | None = None
    environment: str | None = None
    targets: list[str] = Field(default_factory=list, description="asset ids or group names; empty = every target")


class TerraformEstate(BaseModel):
    """One Terraform root module in ``policy/remediation.yaml`` (``terraform.estates``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    match: EstateMatch = EstateMatch()
    repo: str = Field(min_length=1)
    path_glob: str = Field(min_length=1)
    json_pointer: str | None = None
    hcl_variable: str | None = None
    image_attribute: str = "ami"
    resources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_locator(self) -> TerraformEstate:
        if (self.json_pointer is None) == (self.hcl_variable is None):
            raise ValueError(f"estate {self.name}: name exactly one of json_pointer or hcl_variable")
        return self


def managed_tag(tags: Mapping[str, str] | None) -> str | None:
    """``tag:<key>=<value>`` when the tags say Terraform manages the VM, else None."""
    for key, values in MANAGED_TAGS.items():
        value = (tags or {}).get(key)
        if value is not None and str(value).strip().lower() in values:
            return f"tag:{key}={value}"
    return None


def _target_names(plan: PatchPlan) -> set[str]:
    return {g.name for g in plan.spec.targets.groups} | {t.asset_id for t in plan.spec.targets.instances} | {
        t.name for t in plan.spec.targets.instances}


def _matches(estate: TerraformEstate, plan: PatchPlan) -> bool:
    meta, m = plan.metadata, estate.match
    if (m.platform and m.platform != meta.platform) or (m.site and m.site != meta.site) or (
            m.environment and m.environment != meta.environment):
        return False
    return not m.targets or bool(set(m.targets) & _target_names(plan))


def route_plans(
    plans: Sequence[PatchPlan], estates: Sequence[TerraformEstate], tags: Mapping[str, Mapping[str, str]] | None = None,
    notes: list[str] | None = None,
) -> list[PatchPlan]:
    """The plans, Terraform-managed ones re-sealed with their ``spec.terraform`` section.

    ``tags``: asset id -> tags of the plans' targets (where known). A plan whose target is tagged as
    Terraform-managed but that no estate declares is left out and named in ``notes``: it must not be
    changed through the cloud API, and without an estate there is no code to patch.
    """
    out = []
    for plan in plans:
        tagged = {a: managed_tag((tags or {}).get(a)) for a in _asset_ids(plan)}
        tag_source = next((s for s in tagged.values() if s), None)
        named = {(tags or {}).get(a, {}).get(ESTATE_TAG) for a in tagged if tagged[a]} - {None}
        estate = next((e for e in estates if e.name in named), None) or next((e for e in estates if _matches(e, plan)), None)
        if estate is None and tag_source is None:
            out.append(plan)
            continue
        if estate is None:
            if notes is not None:
                managed = sorted(a for a, s in tagged.items() if s)
                notes.append(f"terraform-managed: plan {plan.metadata.id} targets {', '.join(managed[:5])} ({tag_source}) but no "
                             "terraform.estates entry in policy/remediation.yaml declares their repo: not planned, a person "
                             "must declare the estate (it is never changed through the cloud API)")
            continue
        delivery = TerraformDelivery(
            repo=estate.repo, path_glob=estate.path_glob, json_pointer=estate.json_pointer,
            hcl_variable=estate.hcl_variable, image_attribute=estate.image_attribute,
            expected_resources=list(estate.resources), source=tag_source or f"policy:{estate.name}",
        )
        spec = plan.spec.model_copy(update={"terraform": delivery})
        out.append(plan.model_copy(update={"spec": spec, "content_hash": None}).sealed())
    return out


def inventory_tags(wh: Any, day: str, platform: str, asset_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """asset id -> tags of `asset_ids` from the day's inventory partition ({} when there is none)."""
    if not asset_ids or not wh.exists("inventory", day, platform):
        return {}
    from qlrf import sql

    con = sql.connect()
    sql.relation(con, "inventory", wh.source("inventory", day, platform))
    con.register("wanted", pa.table({"asset_id": pa.array(list(asset_ids), pa.string())}))
    rows = con.sql("SELECT i.asset_id, i.tags FROM inventory i JOIN wanted USING (asset_id)").fetchall()
    con.close()
    return {str(a): dict(t) if isinstance(t, Mapping) else {} for a, t in rows}


def _asset_ids(plan: PatchPlan) -> list[str]:
    return [t.asset_id for t in plan.spec.targets.instances] + [g.name for g in plan.spec.targets.groups]


# --- the patch ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the repo
    before: str
    after: str
    old_value: str


@dataclass(frozen=True)
class TerraformPatch:
    repo: Path
    image: str
    changes: tuple[FileChange, ...]

    def diff(self) -> str:
        """The unified diff (``git apply`` / ``patch -p1`` format)."""
        parts = []
        for c in self.changes:
            parts.extend(difflib.unified_diff(c.before.splitlines(keepends=True), c.after.splitlines(keepends=True),
                                              fromfile=f"a/{c.path}", tofile=f"b/{c.path}"))
        return "".join(parts)


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _set_pointer(doc: object, pointer: str, value: str, where: str) -> str:
    """Set the string at RFC 6901 ``pointer`` in ``doc``; return the old value."""
    tokens = [_unescape(t) for t in pointer.split("/")[1:]]
    node = doc
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        if isinstance(node, dict):
            if token not in node:
                raise TerraformError(f"{where}: JSON pointer {pointer} not found (no key {token!r})")
            if last:
                old = node[token]
                if not isinstance(old, str):
                    raise TerraformError(f"{where}: JSON pointer {pointer} is a {type(old).__name__}, not an image string")
                node[token] = value
                return old
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            if last:
                old = node[int(token)]
                if not isinstance(old, str):
                    raise TerraformError(f"{where}: JSON pointer {pointer} is a {type(old).__name__}, not an image string")
                node[int(token)] = value
                return old
            node = node[int(token)]
        else:
            raise TerraformError(f"{where}: JSON pointer {pointer} not found (at {token!r})")
    raise TerraformError(f"{where}: JSON pointer {pointer!r} names the whole document, not a value")


def _rewrite_json(text: str, pointer: str, image: str, where: str) -> tuple[str, str]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TerraformError(f"{where}: not JSON: {exc}") from exc
    old = _set_pointer(doc, pointer, image, where)
    indent = 2
    match = re.search(r"\n([ \t]+)\S", text)
    if match:
        indent = len(match.group(1).expandtabs(4))
    return json.dumps(doc, indent=indent, ensure_ascii=False) + ("\n" if text.endswith("\n") else ""), old


def _rewrite_hcl(text: str, variable: str, image: str, where: str) -> tuple[str, str]:
    pattern = re.compile(rf'^(\s*{re.escape(variable)}\s*=\s*")([^"\n$]*)(".*)$', re.MULTILINE)
    found = pattern.findall(text)
    if not found:
        raise TerraformError(f'{where}: no `{variable} = "..."` assignment (a plain string value) found')
    if len(found) > 1:
        raise TerraformError(f"{where}: {variable} is assigned {len(found)} times: refusing to guess which pins the image")
    old = found[0][1]
    return pattern.sub(lambda m: m.group(1) + image + m.group(3), text), old


def make_patch(plan: PatchPlan, repo: str | Path | None = None) -> TerraformPatch:
    """The change to the Terraform code that pins the plan's golden image (nothing is written).

    ``repo`` overrides the plan's checkout path (the same repo cloned elsewhere). Refusals name the
    repo, the pattern and the file: a pattern that matches nothing, a file without the pointer or
    variable, a value already at the golden image everywhere (nothing to change).
    """
    delivery = plan.spec.terraform
    if delivery is None:
        raise TerraformError(f"plan {plan.metadata.id} is not Terraform-managed (no spec.terraform section)")
    if plan.spec.to_image is None:
        raise TerraformError(f"plan {plan.metadata.id} names no golden image")
    root = Path(repo or delivery.repo)
    if not root.is_dir():
        raise TerraformError(f"terraform repo {root} is not a directory")
    image = plan.spec.to_image.image_ref
    files = sorted(p for p in root.glob(delivery.path_glob) if p.is_file())
    if not files:
        raise TerraformError(f"path pattern {delivery.path_glob!r} matches no file in {root}: check terraform.estates in "
                             "policy/remediation.yaml (nothing was changed)")
    changes = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        where = f"{root}/{rel}"
        before = path.read_text()
        if delivery.json_pointer is not None:
            after, old = _rewrite_json(before, delivery.json_pointer, image, where)
        else:
            after, old = _rewrite_hcl(before, delivery.hcl_variable or "", image, where)
        if after != before:
            changes.append(FileChange(rel, before, after, old))
    if not changes:
        raise TerraformError(f"{root}/{delivery.path_glob}: already pins {image}: nothing to change")
    return TerraformPatch(root, image, tuple(changes))


def write_patch(patch: TerraformPatch, out: str | Path) -> Path:
    """Write the diff to ``out`` (the repo is not touched)."""
    out = Path(out)
    out.write_text(patch.diff())
    return out


def commit_branch(patch: TerraformPatch, branch: str, message: str) -> str:
    """Apply the patch on a new branch of the repo (from its current HEAD) and commit it; returns the commit.

    The working tree must be clean and the branch new: a refusal changes nothing.
    """
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(patch.repo), *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise TerraformError(f"git {' '.join(args)} in {patch.repo}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip()

    if git("status", "--porcelain"):
        raise TerraformError(f"{patch.repo}: the working tree has uncommitted changes: refusing to branch")
    git("checkout", "-q", "-b", branch)
    for change in patch.changes:
        (patch.repo / change.path).write_text(change.after)
        git("add", "--", change.path)
    git("-c", "user.name=qlrf", "-c", "user.email=qlrf@localhost", "commit", "-q", "-m", message)
    return git("rev-parse", "HEAD")


__all__ = [
    "ESTATE_TAG",
    "MANAGED_TAGS",
    "EstateMatch",
    "FileChange",
    "TerraformError",
    "TerraformEstate",
    "TerraformPatch",
    "commit_branch",
    "inventory_tags",
    "make_patch",
    "managed_tag",
    "route_plans",
    "write_patch",
]
