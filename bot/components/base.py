"""Shared plumbing for the bot's own Rasa components: none of them learns anything.

Rasa needs `create` and `get_default_config` on every GraphComponent; for components
without state or settings both are the same, so they live here once.
"""
from __future__ import annotations

from typing import Any, Dict, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage


class StatelessComponent(GraphComponent):
    """A component with no configuration and nothing to train or persist."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "StatelessComponent":
        return cls()

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {}
