"""NLU benchmark: the trained model, through a running `rasa run --enable-api`, on the dev set.

Maps each parse (retrieval key for faq/*, intent otherwise) to the dev set's taxonomy with
bench/taxonomy_map.yml and prints the three outcomes a citizen sees, scored as the hidden
set is (asked: nlu_fallback, or the FAQ with a topic confidence under actions/faq.py's
MIN_TOPIC_CONFIDENCE; otherwise answered right or wrong by taxonomy), accuracy, macro-F1
over the labels present in the file, per-label F1 with support, the confusions, a sweep of the fallback threshold (from the
intent ranking, so one run shows what another threshold would do) and /model/parse
latency. Measures only: never train on the dev questions.

    python bench/nlu_eval.py --questions /work/shared/nlu_dev/questions.jsonl \
        --url http://127.0.0.1:5105 --token t [--also http://127.0.0.1:5106 ...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FALLBACK_INTENTS = {"nlu_fallback", "out_of_scope"}
OUTCOMES = ("right", "asked", "wrong")


def faq_threshold(path: Path = ROOT / "actions" / "faq.py") -> float:
    """actions/faq.py's MIN_TOPIC_CONFIDENCE: below it the bot asks which topic was meant."""
    return float(re.search(r"^MIN_TOPIC_CONFIDENCE = ([0-9.]+)", path.read_text(encoding="utf-8"), re.M).group(1))


MIN_TOPIC_CONFIDENCE = faq_threshold()


def outcome(gold: str, predicted: str, asked: bool) -> str:
    """What the citizen gets: a question back, the right answer, or a wrong one."""
    return "asked" if asked else ("right" if predicted == gold else "wrong")


def outcome_rates(outcomes: list[str]) -> dict[str, float]:
    counts = Counter(outcomes)
    return {name: counts[name] / len(outcomes) if outcomes else 0.0 for name in OUTCOMES}


def asks(result: dict[str, Any], min_topic_confidence: float = MIN_TOPIC_CONFIDENCE) -> bool:
    """The bot asks back: the NLU gave up (nlu_fallback), or chose the FAQ with a topic too
    unsure to answer (actions/faq.py then offers the likeliest topics as buttons)."""
    intent = (result.get("intent") or {}).get("name")
    return intent == "nlu_fallback" or (intent == "faq" and faq_confidence(result) < min_topic_confidence)


def parse_outcome(result: dict[str, Any], gold: str, rules: list[tuple[re.Pattern, str]],
                  min_topic_confidence: float = MIN_TOPIC_CONFIDENCE) -> str:
    """One /model/parse result scored as the hidden set is: asked, or right/wrong by taxonomy."""
    return outcome(gold, to_label(predicted_key(result), rules), asks(result, min_topic_confidence))


def load_map(path: Path) -> list[tuple[re.Pattern, str]]:
    return [(re.compile(row["match"]), row["label"]) for row in yaml.safe_load(path.read_text(encoding="utf-8"))]


def to_label(key: str | None, rules: list[tuple[re.Pattern, str]]) -> str:
    if not key or key in FALLBACK_INTENTS:
        return "other"
    return next((label for pattern, label in rules if pattern.search(key)), "other")


def parse(url: str, token: str | None, text: str, timeout: float) -> tuple[dict[str, Any], float]:
    query = f"?token={token}" if token else ""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/model/parse{query}", data=json.dumps({"text": text}).encode("utf-8"),
        headers={"Content-Type": "application/json"}, method="POST")
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.loads(response.read().decode("utf-8"))
    return body, (time.perf_counter() - started) * 1000


def retrieval_key(result: dict[str, Any]) -> str | None:
    selector = (result.get("response_selector") or {}).get("faq") or {}
    return (selector.get("response") or {}).get("intent_response_key")


def faq_confidence(result: dict[str, Any]) -> float:
    selector = (result.get("response_selector") or {}).get("faq") or {}
    return (selector.get("response") or {}).get("confidence") or 0.0


def key_at_threshold(result: dict[str, Any], threshold: float) -> str:
    """The key the model would give with FallbackClassifier at this threshold."""
    ranking = [r for r in result.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
    if not ranking or ranking[0].get("confidence", 0.0) < threshold:
        return "nlu_fallback"
    name = ranking[0]["name"]
    return (retrieval_key(result) or name) if name == "faq" else name


def scores(gold: list[str], pred: list[str]) -> tuple[float, float, dict[str, tuple[float, float, float, int]]]:
    labels = sorted(set(gold))
    per_label = {}
    for label in labels:
        tp = sum(g == p == label for g, p in zip(gold, pred))
        fp = sum(p == label and g != label for g, p in zip(gold, pred))
        fn = sum(g == label and p != label for g, p in zip(gold, pred))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = (precision, recall, f1, tp + fn)
    accuracy = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    macro_f1 = sum(v[2] for v in per_label.values()) / len(per_label)
    return accuracy, macro_f1, per_label


def predicted_key(result: dict[str, Any]) -> str:
    """The retrieval key for faq (faq/<topic>), the intent otherwise."""
    intent = (result.get("intent") or {}).get("name")
    return (retrieval_key(result) or intent) if intent == "faq" else intent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=Path, default=Path("/work/shared/nlu_dev/questions.jsonl"))
    ap.add_argument("--url", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"))
    ap.add_argument("--also", action="append", default=[], metavar="URL",
                    help="more models to score (e.g. the same data trained with other seeds): one dev "
                         "figure is one draw, so the report adds each one's figures and the spread")
    ap.add_argument("--token", default=os.environ.get("RASA_TOKEN"))
    ap.add_argument("--map", type=Path, default=ROOT / "bench" / "taxonomy_map.yml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nlu_eval.txt")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--min-topic-confidence", type=float, default=MIN_TOPIC_CONFIDENCE,
                    help="the FAQ topic confidence under which the bot asks (actions/faq.py)")
    args = ap.parse_args(argv)

    rules = load_map(args.map)
    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    parse(args.url, args.token, "你好", args.timeout)  # warm-up: the first parse builds caches
    results, latencies = [], []
    for row in rows:
        result, ms = parse(args.url, args.token, row["text"], args.timeout)
        results.append(result)
        latencies.append(ms)

    gold = [row["label"] for row in rows]
    keys = [predicted_key(r) for r in results]
    pred = [to_label(k, rules) for k in keys]
    accuracy, macro_f1, per_label = scores(gold, pred)

    lines = [f"NLU dev set: {args.questions} ({len(rows)} questions), model at {args.url}",
             f"accuracy {accuracy:.3f}   macro-F1 {macro_f1:.3f} (over {len(per_label)} labels present)", "",
             f"{'label':32} {'prec':>6} {'recall':>6} {'F1':>6} {'support':>7}"]
    for label, (p, r, f, n) in sorted(per_label.items(), key=lambda kv: -kv[1][3]):
        lines.append(f"{label:32} {p:6.2f} {r:6.2f} {f:6.2f} {n:7d}")
    lines += ["", "confusions (gold -> predicted: count)"]
    for (g, p), n in Counter((g, p) for g, p in zip(gold, pred) if g != p).most_common():
        lines.append(f"  {g} -> {p}: {n}")
    outcomes = [parse_outcome(r, g, rules, args.min_topic_confidence) for r, g in zip(results, gold)]
    shares = outcome_rates(outcomes)
    lines[2:2] = [f"outcomes (asked = nlu_fallback, or faq with topic confidence < {args.min_topic_confidence}): "
                  + "  ".join(f"answered {name} {shares[name]:.3f}" if name != "asked" else f"asked {shares[name]:.3f}"
                              for name in OUTCOMES)]
    by_label: dict[str, list[str]] = {}
    for g, o in zip(gold, outcomes):
        by_label.setdefault(g, []).append(o)
    lines += ["", "outcomes by gold label (right / asked / wrong)"]
    for label, rows_of in sorted(by_label.items(), key=lambda kv: -len(kv[1])):
        c = Counter(rows_of)
        lines.append(f"  {label:32} {c['right']:3d} / {c['asked']:3d} / {c['wrong']:3d}")
    lines += ["", "errors (id, gold, predicted key, intent confidence, FAQ key confidence, text)"]
    for row, result, key, label in zip(rows, results, keys, pred):
        if label != row["label"]:
            conf = (result.get("intent") or {}).get("confidence") or 0.0
            lines.append(f"  {row['id']:>3} {row['label']:28} {key:32} {conf:.2f} {faq_confidence(result):.2f} "
                         f"{row['text'][:60]}")
    lines += ["", "fallback threshold sweep (what FallbackClassifier at t would give)"]
    for t in (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8):
        acc_t, f1_t, _ = scores(gold, [to_label(key_at_threshold(r, t), rules) for r in results])
        lines.append(f"  t={t:<4} accuracy {acc_t:.3f}  macro-F1 {f1_t:.3f}")
    lines += ["", "FAQ key confidence sweep (below t the bot asks which topic instead of answering, as "
                  "actions/faq.py does below 0.3; counted as other)"]
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        unsure = [to_label(k, rules) if not k.startswith("faq/") or faq_confidence(r) >= t else "other"
                  for k, r in zip(keys, results)]
        acc_t, f1_t, _ = scores(gold, unsure)
        lines.append(f"  t={t:<4} accuracy {acc_t:.3f}  macro-F1 {f1_t:.3f}")
    lines += ["", f"/model/parse latency over {len(latencies)} calls: p50 {statistics.median(latencies):.1f} ms, "
                  f"p95 {percentile(latencies, 0.95):.1f} ms, max {max(latencies):.1f} ms"]
    if args.also:
        figures = [(args.url, accuracy, macro_f1)]
        for url in args.also:
            other = [to_label(predicted_key(parse(url, args.token, row["text"], args.timeout)[0]), rules)
                     for row in rows]
            figures.append((url, *scores(gold, other)[:2]))
        lines += ["", "every model scored (one row a model)"]
        lines += [f"  accuracy {a:.3f}  macro-F1 {f:.3f}  {url}" for url, a, f in figures]
        f1s = [f for _, _, f in figures]
        lines.append(f"  macro-F1 mean {statistics.mean(f1s):.3f}, min {min(f1s):.3f}, max {max(f1s):.3f} "
                     f"over {len(f1s)} models")
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
