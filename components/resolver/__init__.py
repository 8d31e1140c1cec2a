"""Resolvers: pick an earlier model (the warm start, the baseline) for the Trainer and the Evaluator."""

from components.resolver.base import ArtifactHistory, Resolver
from components.resolver.latest_blessed import LatestBlessedModelResolver, LatestBlessedParameters
from components.resolver.latest_pushed import LatestPushedModelResolver, ResolverParameters

__all__ = ["ArtifactHistory", "LatestBlessedModelResolver", "LatestBlessedParameters",
           "LatestPushedModelResolver", "Resolver", "ResolverParameters"]
