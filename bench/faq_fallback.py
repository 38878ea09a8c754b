"""How well the gateway's knowledge-base fallback (gateway/faq_fallback.py) answers while Rasa is down.

Leave-one-out over our own examples (each example scored against all the others) and, for
measuring only, the dev set mapped through bench/taxonomy_map.yml. An FAQ question counts as
answered right when the fallback picks its topic, asked when it declines (the 503 with the
hotline), wrong when it answers another topic; a non-FAQ question counts as wrong only when
it gets an FAQ answer. Prints the trade-off over thresholds and the per-query time.

    PYTHONPATH=. <app venv>/bin/python bench/faq_fallback.py [--dev /work/shared/nlu_dev/questions.jsonl]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.faq_fallback import FaqIndex, Thresholds, decide, load_examples  # noqa: E402

GRID = [(s, m) for s in (4.0, 6.0, 8.0, 10.0) for m in (1.0, 1.15, 1.25, 1.5)]


def outcome(gold_faq: bool, gold: str, picked: str | None, same) -> str:
    if picked is None or not picked.startswith("faq/"):
        return ("asked" if gold_faq else "right")
    if not gold_faq:
        return "wrong"
    return "right" if same(gold, picked) else "wrong"


def rates(outcomes: list[str]) -> str:
    n = len(outcomes) or 1
    return "  ".join(f"{k} {outcomes.count(k) / n:.3f}" for k in ("right", "asked", "wrong"))


def taxonomy(path: Path):
    rules = [(re.compile(r["match"]), r["label"]) for r in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return lambda key: next((label for rx, label in rules if rx.search(key or "")), "other")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dev", type=Path, default=Path("/work/shared/nlu_dev/questions.jsonl"))
    args = parser.parse_args()
    examples = load_examples(ROOT / "nlu_data")
    index = FaqIndex(examples)
    started = time.perf_counter()
    loo = [index.best(text, exclude_doc=i) for i, (_, text) in enumerate(examples)]
    per_query_ms = (time.perf_counter() - started) * 1000 / len(examples)
    print(f"examples {len(index)}; {per_query_ms:.2f} ms a query")
    print("leave-one-out over our examples (FAQ topics exact; other intents must not get an FAQ answer)")
    for s, m in GRID:
        t = Thresholds(s, m)
        outs = [outcome(gold.startswith("faq/"), gold, decide(match, t), str.__eq__)
                for (gold, _), match in zip(examples, loo)]
        print(f"  min_score {s:4.1f} margin {m:4.2f}   {rates(outs)}")
    if args.dev.exists():
        to_label = taxonomy(ROOT / "bench" / "taxonomy_map.yml")
        dev = [json.loads(line) for line in args.dev.read_text(encoding="utf-8").splitlines() if line.strip()]
        print(f"dev set ({len(dev)} questions; measuring only), FAQ labels by taxonomy")
        for s, m in GRID:
            t = Thresholds(s, m)
            outs = []
            for q in dev:
                picked = decide(index.best(q["text"]), t)
                outs.append(outcome(q["label"].startswith("faq_"), q["label"], picked,
                                    lambda gold, key: to_label(key) == gold))
            print(f"  min_score {s:4.1f} margin {m:4.2f}   {rates(outs)}")
    print(f"shipped thresholds: {Thresholds()}")


if __name__ == "__main__":
    main()
