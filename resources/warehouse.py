"""The Parquet warehouse: local directory by default, any pyarrow filesystem URI (s3://...) in production."""

from __future__ import annotations

from dagster import ConfigurableResource

from qlrf.envparse import overlay
from qlrf.settings import Settings
from qlrf.warehouse import Warehouse


class WarehouseResource(ConfigurableResource):
    """`root` unset means QLRF_WAREHOUSE (or ./var/warehouse), resolved when a run starts."""

    root: str | None = None

    def get(self) -> Warehouse:
        return Warehouse(Settings.from_env(overlay({"QLRF_WAREHOUSE": self.root})).warehouse)
