"""Golden-image baselines: signed contracts per image family, the registry flattened from them,
SBOMs and version ordering. Scoring measures drift against what this package trusts."""
