"""Example pipelines (taxi)."""
