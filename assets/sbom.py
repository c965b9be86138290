"""The SBOM index of golden images: every package of every image version, for "where does X run?"."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AutomationCondition,
    Failure,
    MaterializeResult,
    asset,
)

from assets.baselines import verification_keys
from assets.checks import check, partition_on_checks
from assets.common import partition_day, preview
from assets.partitions import daily
from qlrf.baselines.contracts import ContractError, load_contracts
from qlrf.baselines.sbom import image_packages as flatten_sboms
from resources.estate import EstateResource
from resources.warehouse import WarehouseResource


@asset(
    partitions_def=daily,
    deps=["golden_images"],
    group_name="baselines",
    kinds={"parquet", "spdx"},
    description="Packages of every golden-image version from its SPDX SBOM: (family, version, package, package_version, purl).",
    check_specs=[check("every_version_has_an_sbom", asset="image_packages")],
    automation_condition=AutomationCondition.eager(),  # right after the day's golden_images
)
@partition_on_checks
def image_packages(context: AssetExecutionContext, estate: EstateResource, warehouse: WarehouseResource):
    day = partition_day(context)
    directory = estate.contracts_dir(day)
    # Verified again with the same keys as golden_images: the files could have changed since.
    try:
        keys, _source = verification_keys(estate, directory)
        families = load_contracts(directory, public_keys=keys)
    except ContractError as exc:
        raise Failure(f"golden-image contracts rejected, no SBOM index for {day}: {exc}") from exc
    table, problems = flatten_sboms(directory, families)
    path = warehouse.get().write("image_packages", table, day)
    yield MaterializeResult(metadata={"dagster/row_count": table.num_rows, "path": path, "preview": preview(table)})
    yield AssetCheckResult(
        check_name="every_version_has_an_sbom", passed=not problems, severity=AssetCheckSeverity.WARN,
        metadata={"problems": "; ".join(problems[:20]) or "-"},
    )
