"""Resolvers: pick an earlier model (the baseline) for the Evaluator."""

from components.resolver.latest_pushed import LatestPushedModelResolver, ResolverParameters

__all__ = ["LatestPushedModelResolver", "ResolverParameters"]
