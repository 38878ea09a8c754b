"""A long message-board post is read for its question: the interrogative clauses (and the one
before each), while short messages and posts that never ask are kept whole."""
from bot.components.chinese_text import clauses, is_question, question_focus


def test_the_question_at_the_end_of_a_story_is_found():
    post = ("我2019年进的现在这家单位，一直交着公积金，去年在老家县城全款买了套房。"
            "我爸妈身体也不好，花了不少钱。现在想问这种情况还能把公积金取出来吗？")
    focus = question_focus(post)
    assert focus.endswith("现在想问这种情况还能把公积金取出来吗？") or "还能把公积金取出来吗" in focus
    assert "爸妈" not in focus and "2019" not in focus


def test_a_question_in_the_middle_is_kept_with_the_clause_before_it():
    post = "我在a市交了五年公积金，现在调到b市工作。请问原来的公积金怎么转过来？谢谢，工作人员说得不清楚。"
    assert question_focus(post) == "现在调到b市工作，请问原来的公积金怎么转过来？"


def test_short_messages_and_stories_without_a_question_stay_whole():
    assert question_focus("公积金贷款利率是多少") == "公积金贷款利率是多少"
    story = "三月份在网上申请了租房提取，说半个月到账，现在两个月了钱还没到，打电话也没人接，太过分了。"
    assert question_focus(story) == story


def test_clauses_split_sentences_and_long_sentences_at_commas():
    assert clauses("你好。我想问一下！能提吗？") == ["你好", "我想问一下", "能提吗？"]
    assert is_question("能不能提") and is_question("多少钱") and not is_question("我去年买了房")
