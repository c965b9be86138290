"""Stage 2: the golden-image registry for a day, from the signed, validated image-family contracts.

Trust: contracts are verified against the keys in ``QLRF_COSIGN_PUBLIC_KEYS``. Only when none are
configured *and* the contracts are the generated sample estate's (no golden_dir configured) is the
sample's own ``<estate>/<day>/keys/cosign.pub`` trusted; a configured golden directory with no
configured keys is rejected, never trusted by a key lying next to it.

A rejected contract (unsigned, tampered, signed by an untrusted key, invalid, or with an SBOM that
does not match its signed hash) fails the run with `dagster.Failure` before anything is written, so
today's partition does not exist and the previous day's registry stays the newest one; the blocking
`verified_signatures` check stops everything downstream of an unverified baseline.

A verified registry is then compared with the baseline in force (:mod:`qlrf.baselines.guard`):
empty, a family lost or deleted, a revocation dropped, a version moved backwards or an older
contract replayed also fail the run before anything is written, one line per problem.
"""

from collections import Counter
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AutomationCondition,
    Failure,
    MaterializeResult,
    asset,
)

from assets.checks import check, partition_on_checks
from assets.common import as_of, partition_day, preview, rows_check, unique_check
from assets.partitions import daily
from qlrf.baselines.contracts import (
    ContractError,
    ImageFamily,
    current_images,
    load_contracts,
)
from qlrf.baselines.guard import Review, review
from qlrf.baselines.signing import (
    ENV_PUBLIC_KEYS,
    PUBLIC_KEY_NAME,
    SignatureError,
    configured_public_keys,
    short,
)
from qlrf.inventory.sample import SAMPLE_KEYS_DIR
from resources.estate import EstateResource
from resources.warehouse import WarehouseResource


def verification_keys(estate: EstateResource, directory: Path) -> tuple[list[bytes], str]:
    """(trusted PEM public keys, where they came from) for the contracts in `directory`."""
    try:
        keys = configured_public_keys()
    except SignatureError as exc:
        raise ContractError(str(exc)) from exc
    if keys:
        return keys, ENV_PUBLIC_KEYS
    from_sample = estate.golden_dir_setting() is None
    sample_pub = Path(directory).parent / SAMPLE_KEYS_DIR / PUBLIC_KEY_NAME
    if from_sample and sample_pub.is_file():
        return [sample_pub.read_bytes()], f"sample estate key {sample_pub}"
    raise ContractError(
        f"{directory}: no trusted public keys: set {ENV_PUBLIC_KEYS} to the cosign public key(s) that sign these contracts"
    )


def signature_check(families: list[ImageFamily], key_source: str) -> AssetCheckResult:
    by_key = Counter(f.signed_by for f in families)
    verified = sum(n for fp, n in by_key.items() if fp)
    return AssetCheckResult(
        asset_key="golden_images",
        check_name="verified_signatures",
        passed=bool(families) and verified == len(families),
        metadata={
            "contracts": len(families),
            "verified": verified,
            "keys": ", ".join(f"{short(fp) if fp else 'unsigned'}: {n}" for fp, n in sorted(by_key.items(), key=str)),
            "key_source": key_source,
        },
    )


def refuse_regressions(checked: Review, directory: Path) -> None:
    """Fail the run, writing nothing, when the new registry must not replace the baseline in force."""
    if checked.problems:
        kept = f"the baseline of {checked.current.day} stays in force" if checked.current else "no baseline is in force"
        raise Failure(
            f"golden-image registry refused, {kept}:\n" + "\n".join(f"- {p}" for p in checked.problems),
            metadata={"contracts": str(directory), "partition_written": False, "problems": len(checked.problems)},
        )


@asset(
    partitions_def=daily,
    group_name="baselines",
    kinds={"parquet"},
    description="Golden images across versions and channels: one row per family x version x platform x region.",
    check_specs=[
        check("has_rows", asset="golden_images", blocking=True),
        check("unique_keys", asset="golden_images", blocking=True),
        check(
            "verified_signatures",
            asset="golden_images",
            blocking=True,
            description="Every contract's detached cosign signature verified against a trusted key.",
        ),
    ],
    automation_condition=AutomationCondition.on_cron("0 0 * * *"),
)
@partition_on_checks
def golden_images(context: AssetExecutionContext, estate: EstateResource, warehouse: WarehouseResource):
    day = partition_day(context)
    directory = estate.contracts_dir(day)
    try:
        keys, key_source = verification_keys(estate, directory)
        families = load_contracts(directory, public_keys=keys, require_signatures=True)
    except ContractError as exc:
        # Nothing is written for this partition: the previous day's registry stays in force.
        raise Failure(
            f"golden-image contracts rejected, previous baseline stays in force: {exc}",
            metadata={"contracts": str(directory), "partition_written": False},
        ) from exc
    context.log.info(f"verified {len(families)} golden-image contract(s) with keys from {key_source}")
    wh = warehouse.get()
    checked = review(families, wh, day, as_of(day))
    refuse_regressions(checked, directory)
    table = checked.registry
    path = wh.write("golden_images", table, day, metadata=checked.metadata)
    yield MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "baseline_replaced": checked.current.day if checked.current else "none (first baseline)",
            "serials": ", ".join(f"{f.family}: {f.serial}" for f in families),
            "families": len(families),
            "versions": len({(r["family"], r["version"]) for r in table.select(["family", "version"]).to_pylist()}),
            "contracts": str(directory),
            "signed_by": ", ".join(sorted({short(f.signed_by) for f in families if f.signed_by})),
            "path": path,
            "preview": preview(table.select(["family", "version", "channel", "revoked", "platform", "region", "image_ref"])),
        }
    )
    yield rows_check("golden_images", table)
    yield unique_check("golden_images", table, ["family", "version", "platform", "region"])
    yield signature_check(families, key_source)


@asset(
    partitions_def=daily,
    deps=["golden_images"],
    group_name="baselines",
    kinds={"parquet"},
    description="The current golden image per family x channel x platform x region (newest non-revoked version "
    "promoted at least to that channel), like an HCP Packer channel pointer.",
    check_specs=[check("one_image_per_channel_slot", asset="golden_current", blocking=True)],
    automation_condition=AutomationCondition.eager(),
)
@partition_on_checks
def golden_current(context: AssetExecutionContext, warehouse: WarehouseResource):
    day = partition_day(context)
    wh = warehouse.get()
    table = current_images(wh.read("golden_images", day))
    yield MaterializeResult(
        metadata={"dagster/row_count": table.num_rows, "path": wh.write("golden_current", table, day), "preview": preview(table)}
    )
    yield unique_check("golden_current", table, ["family", "channel", "platform", "region"], name="one_image_per_channel_slot")
