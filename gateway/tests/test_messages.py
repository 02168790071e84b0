"""Problems in the caller's language."""

import requests

from gateway.messages import translate_errors, wants_chinese


def test_language_preference():
    assert wants_chinese("zh-CN,zh;q=0.9,en;q=0.8")
    assert wants_chinese("zh")
    assert not wants_chinese("en-US,en;q=0.9,zh-CN;q=0.5")
    assert not wants_chinese(None)
    assert not wants_chinese("fr")


def test_field_messages_are_translated_and_unknown_ones_kept():
    errors = {
        "email": ["Not a valid email address."],
        "password": ["Must be at least 12 characters long."],
        "emails": {"0": {"address": ["Missing data for required field."]}},
        "role": ["Must be one of: admin, manager."],
        "other": ["Something only a service says."],
    }
    assert translate_errors(errors) == {
        "email": ["邮箱地址格式不正确。"],
        "password": ["至少需要 12 个字符。"],
        "emails": {"0": {"address": ["必填项。"]}},
        "role": ["必须是以下之一：admin, manager。"],
        "other": ["Something only a service says."],
    }


def test_problems_follow_accept_language(runner_factory, gateway_config):
    from gateway.service import GatewayService

    config, base = gateway_config
    runner_factory(config, GatewayService).start()
    url = f"{base}/api/v1/auth/login"
    body = {"email": "nope", "password": ""}
    chinese = requests.post(url, json=body, headers={"Accept-Language": "zh-CN"}, timeout=5)
    assert chinese.status_code == 400
    assert chinese.json()["title"] == "请求无效"
    assert chinese.json()["errors"]["email"] == ["邮箱地址格式不正确。"]
    english = requests.post(url, json=body, headers={"Accept-Language": "en"}, timeout=5)
    assert english.json()["errors"]["email"] == ["Not a valid email address."]
    assert "Accept-Language" in english.headers["Vary"]
