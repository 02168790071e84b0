"""Problem texts in the caller's language (``Accept-Language``): the field messages of
marshmallow and of the services, and the problem titles. English is the source; unknown
messages stay as they are."""

from __future__ import annotations

import re
from typing import Any

#: (pattern of the English message, Chinese template using the pattern's groups)
_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r"^Missing data for required field\.$", "必填项。"),
        (r"^Field may not be null\.$", "不能为空。"),
        (r"^Unknown field\.$", "不允许的字段。"),
        (r"^Not a valid string\.$", "应为文本。"),
        (r"^Not a valid integer\.$", "应为整数。"),
        (r"^Not a valid number\.$", "应为数字。"),
        (r"^Not a valid boolean\.$", "应为是/否。"),
        (r"^Not a valid email address\.$", "邮箱地址格式不正确。"),
        (r"^Not a valid datetime\.$", "日期时间格式不正确。"),
        (r"^Not a valid date\.$", "日期格式不正确。"),
        (r"^Not a valid list\.$", "应为列表。"),
        (r"^Not a valid mapping type\.$", "应为对象。"),
        (r"^Invalid input type\.$", "输入类型不正确。"),
        (r"^Not valid JSON\.$", "请求体不是有效的 JSON。"),
        (r"^Must be application/json\.$", "须为 application/json。"),
        (r"^Not an ISO 4217 currency code, like CNY\.$", "不是 ISO 4217 货币代码（如 CNY）。"),
        (r"^Not a valid cursor\.$", "分页游标无效。"),
        (r"^Must be one of: (.+)\.$", r"必须是以下之一：\1。"),
        (r"^Length must be between (\d+) and (\d+)\.$", r"长度须在 \1 到 \2 之间。"),
        (r"^Shorter than minimum length (\d+)\.$", r"长度不能少于 \1。"),
        (r"^Longer than maximum length (\d+)\.$", r"长度不能超过 \1。"),
        (r"^Length must be (\d+)\.$", r"长度须为 \1。"),
        (
            r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$",
            r"须在 \1 到 \2 之间。",
        ),
        (r"^Must be greater than or equal to (\S+)\.$", r"不能小于 \1。"),
        (r"^Must be less than or equal to (\S+)\.$", r"不能大于 \1。"),
        (r"^String does not match expected pattern\.$", "格式不正确。"),
        (r"^Change at least one (field|setting)\.$", "请至少修改一项。"),
        (r"^Must be an ETag from this API\.$", "必须是本接口返回的 ETag。"),
        (r"^Already in use\.$", "已被使用。"),
        (r"^Must be a string\.$", "应为文本。"),
        (r"^Must be at least (\d+) characters long\.$", r"至少需要 \1 个字符。"),
        (r"^Must be at most (\d+) characters long\.$", r"最多 \1 个字符。"),
        (r"^Must differ from the current password\.$", "不能与当前密码相同。"),
        (r"^Must not be your e-mail address or name\.$", "不能使用您的邮箱或姓名。"),
        (
            r"^This password is too common; choose a less predictable one\.$",
            "该密码过于常见，请换一个不易猜到的密码。",
        ),
        (
            r"^This password is too easy to guess \(too few different characters\)\.$",
            "该密码过于简单（不同字符太少）。",
        ),
        (r"^The current password is not correct\.$", "当前密码不正确。"),
        (r"^The password is not correct\.$", "密码不正确。"),
        (
            r"^The code is not valid\. Check the time on your device\.$",
            "验证码无效，请检查设备时间。",
        ),
        (
            r"^Must be a phone number in E\.164 form, like (\S+)\.$",
            r"手机号须为 E.164 格式，例如 \1。",
        ),
    )
)

_TITLES_ZH = {
    "Invalid request": "请求无效",
    "Authentication required": "需要登录",
    "Forbidden": "无权操作",
    "Not found": "未找到",
    "Method not allowed": "不支持的请求方法",
    "Conflict": "冲突",
    "Concurrent modification": "记录已被他人修改",
    "Precondition failed": "记录已变化",
    "Precondition required": "缺少 If-Match",
    "Request body too large": "请求体过大",
    "Unsupported media type": "不支持的请求体类型",
    "Unprocessable request": "无法处理的请求",
    "Too many requests": "请求过于频繁",
    "Service unavailable": "服务暂不可用",
    "Internal error": "内部错误",
    "Web UI not built": "网页界面尚未构建",
}


def wants_chinese(accept_language: str | None) -> bool:
    """True when the caller prefers Chinese over English."""
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower()
        if language.startswith(("zh", "en")) and quality > best_q:
            best, best_q = language[:2], quality
    return best == "zh"


def translate_message(message: str) -> str:
    for pattern, template in _ZH:
        if pattern.match(message):
            return pattern.sub(template, message)
    return message


def translate_errors(errors: Any) -> Any:
    """The ``errors`` member of a problem, with every message translated."""
    if isinstance(errors, dict):
        return {key: translate_errors(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [translate_errors(value) for value in errors]
    if isinstance(errors, str):
        return translate_message(errors)
    return errors


def localise_problem(body: dict[str, Any]) -> dict[str, Any]:
    """A Chinese problem body: the title and field messages translated (``detail`` stays as
    the service wrote it; clients show a translation of ``code`` where there is one)."""
    localised = dict(body)
    localised["title"] = _TITLES_ZH.get(body.get("title", ""), body.get("title"))
    if "errors" in body:
        localised["errors"] = translate_errors(body["errors"])
    return localised
