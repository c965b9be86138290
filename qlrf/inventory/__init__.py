"""Inventory: the normalised contract, per-platform normalisers and live connectors, tag mapping,
export sources and the sample estate. Everything downstream reads what this package writes."""
