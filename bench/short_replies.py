"""Short dialogue replies and city questions through a running `rasa run --enable-api`.

The dev set has almost no one-word replies (好的, 常州呢, 张三) and few questions naming a
city, yet a wrong parse there derails a conversation: a typed 好的 must take the video
offer, a question naming two cities must not be taken for a bare city reply. The cases
(bench/data/short_replies.yml) were written for this check, not for training.

    python bench/short_replies.py --url http://127.0.0.1:5105 [--token t] [--out FILE]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from nlu_eval import parse, predicted_key  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"))
    ap.add_argument("--token", default=os.environ.get("RASA_TOKEN"))
    ap.add_argument("--cases", type=Path, default=ROOT / "data" / "short_replies.yml")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "short_replies.txt")
    args = ap.parse_args(argv)

    cases = yaml.safe_load(args.cases.read_text(encoding="utf-8"))
    lines, misses = [], 0
    for case in cases:
        result, _ = parse(args.url, args.token, case["text"], 10.0)
        got = predicted_key(result)
        ranking = result.get("intent_ranking") or []
        runner_up = next((r for r in ranking if r["name"] != result["intent"]["name"]), {"name": "-", "confidence": 0})
        mark = "ok  " if got == case["expect"] else "MISS"
        misses += got != case["expect"]
        lines.append(f"{mark} {case['text']:<28} {got:<28} {result['intent']['confidence']:.2f}  "
                     f"(expected {case['expect']}; runner-up {runner_up['name']} {runner_up['confidence']:.2f})")
    lines.insert(0, f"{len(cases) - misses} of {len(cases)} short replies and city questions parsed as "
                    f"expected ({args.cases.relative_to(ROOT.parent)}), model at {args.url}")
    report = "\n".join(lines) + "\n"
    print(report, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
