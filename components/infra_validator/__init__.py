"""The InfraValidator component: the model must load and answer in the model server."""

from components.infra_validator.component import InfraValidator, InfraValidatorParameters

__all__ = ["InfraValidator", "InfraValidatorParameters"]
