"""Which questions are about another scheme (social, medical, pension insurance) and not the fund.

Citizens use the same words for every scheme they pay into (缴费基数, 补缴, 转移, 断缴), so a
model trained on fund questions can answer "养老保险怎么补缴" with the fund's 补缴 rules — a
wrong fact. A question that names another scheme and never names the fund is out of scope
whatever the model thinks; one that names both is left to the model.
"""
from __future__ import annotations

import re

OTHER_SCHEME = re.compile(
    r"社保|社会保险|医保|医疗保险|养老保险|养老金|失业保险|失业金|生育保险|生育津贴|工伤|新农合|五险(?!一金)"
)
# 公积金 and the ways people mistype it; 一金 as in 五险一金.
FUND = re.compile(r"公积|公基金|公机金|公鸡金|一金|住房基金")


def about_other_scheme_only(text: str) -> bool:
    """True when the (normalised, simplified) text names another scheme but not the fund."""
    return bool(OTHER_SCHEME.search(text)) and not FUND.search(text)
