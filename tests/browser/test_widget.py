"""The citizen's web widget in Debian's chromium against the real stack."""
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_citizen_asks_in_the_widget_and_reads_the_answer(stack, browser):
    page = browser.new_page()
    try:
        page.goto(stack.urls["gateway"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        page.get_by_label("输入您的问题").fill("公积金贷款利率是多少")
        page.get_by_role("button", name="发送").click()
        answer = page.locator(".msg--bot").last
        answer.wait_for(timeout=30000)
        assert "2.60%" in answer.inner_text()
        assert page.locator(".msg--user").last.inner_text() == "公积金贷款利率是多少"

        page.get_by_role("button", name="长辈模式").click()
        assert page.locator("body.elder").count() == 1
        assert page.get_by_role("button", name="长辈模式").get_attribute("aria-pressed") == "true"
    finally:
        page.close()


def test_empty_message_is_not_sent(stack, browser):
    page = browser.new_page()
    try:
        page.goto(stack.urls["gateway"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        page.get_by_role("button", name="发送").click()  # the input is required: nothing is sent
        assert page.locator(".msg--user").count() == 0
    finally:
        page.close()
