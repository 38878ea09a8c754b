"""Keypad (DTMF) input on a call: menu choices and digit entries such as ID numbers.

Keys arrive as {"dtmf": "1"} one at a time or as a string ("110101199003071234#"). `#` ends an
entry; an entry also ends when no key follows for a while (a lone key sooner, so a menu choice
needs no `#`). `*` stands for the letter X of an ID number. A one-key entry is a menu choice:
the bot's own buttons when its last reply had some (按1…按8), else the hotline's main menu; a
longer entry is sent to the bot as the digits themselves, like a typed ID or phone number.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

KEYS = re.compile(r"[0-9*#]{1,40}")
MAX_ENTRY = 32
MAX_BUTTON_KEYS = 8
REPEAT_KEY = "9"

# The main menu: key -> (what the prompt calls it, what goes to the bot).
MAIN_MENU = {
    "1": ("公积金提取", '/faq{"faq_topic": "withdraw_overview"}'),
    "2": ("公积金贷款", '/faq{"faq_topic": "loan_conditions"}'),
    "3": ("账户余额查询", "查询公积金余额"),
    "0": ("转人工", "转人工"),
}


def menu_prompt(buttons: Optional[list] = None) -> str:
    """What the keys do now, said after a reply with buttons (or for the main menu)."""
    if buttons:
        return "；".join(f"按{i}，{b.title}" for i, b in enumerate(buttons[:MAX_BUTTON_KEYS], start=1)) + "。"
    choices = "；".join(f"按{k}，{label}" for k, (label, _) in MAIN_MENU.items())
    return f"{choices}；按{REPEAT_KEY}，重听。"


@dataclass
class Keypad:
    menu_wait_s: float = 2.0  # a lone key with nothing after it this long is a menu choice
    entry_timeout_s: float = 5.0  # a digit entry with nothing after it this long is done
    _keys: str = ""
    _last_at: float = 0.0
    pending: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self._keys)

    def press(self, keys: str, now: float) -> list[str]:
        """Keys as received -> the entries they completed (a `#` ends one)."""
        done = []
        for key in keys:
            if key == "#":
                if self._keys:
                    done.append(self._keys)
                self._keys = ""
            elif len(self._keys) < MAX_ENTRY:
                self._keys += key
        self._last_at = now
        return done

    def due(self, now: float) -> Optional[str]:
        """An entry ended by waiting, if any."""
        if not self._keys:
            return None
        wait = self.menu_wait_s if len(self._keys) == 1 else self.entry_timeout_s
        if now - self._last_at < wait:
            return None
        entry, self._keys = self._keys, ""
        return entry


def valid_keys(value: object) -> Optional[str]:
    """The keys of a {"dtmf": ...} frame, or None when it is not a keypad string."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        value = str(value)
    if isinstance(value, str) and KEYS.fullmatch(value):
        return value
    return None


def entry_text(entry: str, buttons: Optional[list] = None) -> Optional[str]:
    """What a finished entry says to the bot; None for the repeat key (the call replays its last reply)."""
    if len(entry) == 1:
        if buttons and entry.isdigit() and 1 <= int(entry) <= min(len(buttons), MAX_BUTTON_KEYS):
            return buttons[int(entry) - 1].payload
        if entry == REPEAT_KEY:
            return None
        if entry in MAIN_MENU:
            return MAIN_MENU[entry][1]
    return entry.replace("*", "X")
