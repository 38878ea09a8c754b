"""Rasa wrapper around bot/components/other_schemes.py, listed after the classifiers.

Overrides the intent with out_of_scope (confidence 1) for questions about another scheme,
before FallbackClassifier looks at it, so the citizen is pointed to 12333/12393 instead
of getting a fund answer to an insurance question.
"""
from __future__ import annotations

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.base import StatelessComponent
from bot.components.other_schemes import about_other_scheme_only

OUT_OF_SCOPE = "out_of_scope"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class OtherSchemeGuard(StatelessComponent):
    """Sends questions that name only another insurance scheme to out_of_scope."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if about_other_scheme_only(message.get(TEXT) or ""):
                top = {INTENT_NAME_KEY: OUT_OF_SCOPE, PREDICTED_CONFIDENCE_KEY: 1.0}
                ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != OUT_OF_SCOPE]
                message.set(INTENT, top, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [top, *ranking], add_to_output=True)
        return messages
