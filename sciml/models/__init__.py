"""Model families, built by name from a config section through the registry."""

from sciml.models.registry import ModelContext, available_models, build_model, model_arguments, register_model

__all__ = ["ModelContext", "available_models", "build_model", "model_arguments", "register_model"]
