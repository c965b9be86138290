"""A great-expectations suite over one inventory partition: the data-quality contract in GX terms.

great_expectations costs ~8 s to import, so it is imported only inside `validate_inventory`, and only
the scheduled quality check calls it; `qlrf run` and the scoring assets never pay for it.
"""

from __future__ import annotations

import pyarrow as pa

from qlrf.inventory.contract import PLATFORMS, STATES

REQUIRED = ("asset_id", "platform", "account", "region", "name", "state", "discovered_at")


def _suite(gx):
    e = gx.expectations
    suite = gx.ExpectationSuite(name="inventory_contract")
    for column in REQUIRED:
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="asset_id"))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="state", value_set=list(STATES)))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="platform", value_set=list(PLATFORMS)))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="environment", mostly=0.95))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="owner", mostly=0.90))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="image_ref", mostly=0.90))
    return suite


def validate_inventory(table: pa.Table) -> dict:
    """Returns {success, evaluated, failed: [{expectation, column, unexpected_percent}]}."""
    import great_expectations as gx

    df = table.drop_columns(["tags"]).to_pandas()
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset("inventory")
        .add_batch_definition_whole_dataframe("partition")
        .get_batch(batch_parameters={"dataframe": df})
    )
    result = batch.validate(_suite(gx))
    failed = [
        {
            "expectation": r.expectation_config.type,
            "column": r.expectation_config.kwargs.get("column"),
            "unexpected_percent": round(float(r.result.get("unexpected_percent") or 0.0), 3),
        }
        for r in result.results
        if not r.success
    ]
    return {"success": bool(result.success), "evaluated": len(result.results), "failed": failed}
