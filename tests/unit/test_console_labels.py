"""The staff console names FAQ topics in words (web_widget/console.js TOPICS): the same titles as the knowledge base."""
import re
from pathlib import Path

from fund.knowledge import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]


def test_the_console_has_the_knowledge_base_title_of_every_topic():
    script = (ROOT / "web_widget" / "console.js").read_text(encoding="utf-8")
    block = re.search(r"const TOPICS = \{(.*?)\};", script, re.S).group(1)
    in_console = dict(re.findall(r'(\w+): "([^"]+)"', block))
    kb = KnowledgeBase.load(ROOT / "fund" / "policy")
    assert in_console == {name: topic.title for name, topic in kb.topics.items()}
