"""Rasa wrapper around bot/components/numerals.py, listed after the entity extractors.

Registered as an ENTITY_EXTRACTOR (not trainable) so it runs at parse time after
RegexEntityExtractor and EntitySynonymMapper: it turns amount/years/ratio values into
numbers, drops numeric matches that are not numbers of that kind ("2025年" is a date,
not a loan term), and keeps only the longest of overlapping matches of one entity type
(lookup and regex patterns can both hit "常州市" and "常州").
"""
from __future__ import annotations

from typing import List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components.base import StatelessComponent
from bot.components.numerals import normalize_entities


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class NumeralNormalizer(StatelessComponent):
    """Rewrites extracted amount/years/ratio entity values as numbers."""

    @staticmethod
    def required_packages() -> List[Text]:
        return ["cn2an"]

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            entities = message.get(ENTITIES)
            if entities:
                message.set(ENTITIES, normalize_entities(entities, message.get(TEXT)), add_to_output=True)
        return messages
