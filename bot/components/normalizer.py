"""Text normaliser that runs before JiebaTokenizer, in training and at parse time.

Citizens type traditional characters, full-width letters and digits (from Chinese
IMEs) and mixed spellings; the tokenizer and featurizers only ever see simplified,
half-width text. Registered as a MESSAGE_FEATURIZER (not trainable) because Rasa runs
those on training data too, unlike extractors and classifiers. Every mapping keeps the
text's length, so entity offsets annotated in training data stay valid.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# OpenCC's t2s keeps some variants our data never uses (帳戶 -> 帐户, not 账户).
DOMAIN_FIXUPS = {
    "帐户": "账户",
    "帐号": "账号",
    "余额查寻": "余额查询",
    "公基金": "公积金",
    "公机金": "公积金",
    "公积全": "公积金",
}


def to_half_width(text: str) -> str:
    """Full-width ASCII (U+FF01..FF5E) and the ideographic space to half-width."""
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


class _Converter:
    """Lazily created OpenCC converter: building it at import time slows every rasa command."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            import opencc

            cls._instance = opencc.OpenCC("t2s")
        return cls._instance


def normalize(text: str) -> str:
    """Simplified, half-width, lower-case ASCII, same length as the input where possible."""
    if not text:
        return text
    converted = _Converter.get().convert(to_half_width(text))
    if len(converted) != len(text):  # a phrase mapping changed the length: fall back per character
        converted = "".join(_Converter.get().convert(ch) if len(_Converter.get().convert(ch)) == 1 else ch
                            for ch in to_half_width(text))
    for wrong, right in DOMAIN_FIXUPS.items():
        if len(wrong) == len(right):
            converted = converted.replace(wrong, right)
    return converted.lower()


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class ChineseNormalizer(GraphComponent):
    """Rewrites the message text in place: traditional→simplified, full→half width."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ChineseNormalizer":
        return cls()

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {}

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
