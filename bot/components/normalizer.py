"""Text normaliser that runs before JiebaTokenizer, in training and at parse time.

Citizens type traditional characters, full-width letters and digits (from Chinese
IMEs) and mixed spellings; the tokenizer and featurizers only ever see simplified,
half-width text. Registered as a MESSAGE_FEATURIZER (not trainable) because Rasa runs
those on training data too, unlike extractors and classifiers. Every mapping keeps the
text's length, so entity offsets annotated in training data stay valid.
"""
from __future__ import annotations

from typing import List, Optional, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.base import StatelessComponent
from bot.components.chinese_text import normalize


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class ChineseNormalizer(StatelessComponent):
    """Rewrites the message text in place: traditional→simplified, full→half width."""

    @staticmethod
    def required_packages() -> List[Text]:
        return ["opencc"]

    def _normalize_message(self, message: Message) -> None:
        text: Optional[str] = message.get(TEXT)
        if text:
            message.set(TEXT, normalize(text))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for message in training_data.training_examples:
            self._normalize_message(message)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._normalize_message(message)
        return messages
