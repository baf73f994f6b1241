"""A call's timeline and an alert's details as short Chinese sentences.

Every code in a detail goes through a table of :mod:`admin.labels`; what a sentence does not
say is listed after it ("时长：30秒"), technical fields (sequence numbers, provider ids) are
left out, and error texts from the provider go to ``technical`` (a tooltip), not the text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from admin import labels

# Only for the machines: the provider's sequence numbers and ids, the ledger's row ids.
HIDDEN = frozenset({"sequence", "timestamp", "seq", "dial_sid", "sid", "resident_id"})
TECHNICAL = ("error", "error_code", "error_url")
# Details naming another call: shown as a link to it.
LINKS = {"call": "查看原通话", "callback_sid": "查看回拨通话", "leg": "查看回拨通话"}
KEY_NAMES = {"*": "星号键", "#": "井号键"}


@dataclass(frozen=True)
class Entry:
    """One line of a timeline (or an alert's details)."""

    title: str
    text: str
    link: str | None = None
    link_text: str = ""
    technical: str = ""


def seconds(value: Any) -> str:
    """``75`` -> 1分15秒; ``1800`` -> 30分钟."""
    try:
        n = int(value or 0)
    except (TypeError, ValueError):
        return str(value)
    if n < 60:
        return f"{n}秒"
    minutes, rest = divmod(n, 60)
    return f"{minutes}分{rest}秒" if rest else f"{minutes}分钟"


def keys(value: Any) -> str:
    """Keys pressed: ``1`` -> 1, ``*`` -> 星号键."""
    return "".join(KEY_NAMES.get(key, key) for key in str(value))


def yes_no(value: Any) -> str:
    """A flag as 是 or 否."""
    return "是" if value else "否"


def percent(value: Any) -> str:
    """The provider's speech confidence (0.0-1.0) as a percentage."""
    try:
        return f"{float(value):.0%}"
    except (TypeError, ValueError):
        return str(value)


class Detail:
    """An event's detail, read key by key as Chinese; :meth:`rest` says what was not read."""

    def __init__(self, detail: Mapping[str, Any] | None, operators: Mapping[str, str]) -> None:
        self.raw = {k: v for k, v in (detail or {}).items() if v not in (None, "", [], {})}
        self.operators = operators
        self.used: set[str] = set(HIDDEN) | set(TECHNICAL) | set(LINKS)

    def has(self, key: str) -> bool:
        """Whether the detail has a value for ``key``."""
        return key in self.raw

    def __getitem__(self, key: str) -> str:
        self.used.add(key)
        value = self.raw.get(key)
        if value is None:
            return ""
        return FORMATS.get(key, _plain)(value, self.operators)

    def skip(self, *keys: str) -> None:
        """Leave ``keys`` out of :meth:`rest` (the sentence says them another way)."""
        self.used.update(keys)

    def opt(self, key: str, template: str) -> str:
        """``template`` with the value of ``key``, or '' when there is none."""
        return template.format(self[key]) if self.has(key) else ""

    def rest(self) -> str:
        """The values no sentence used, as 名称：值."""
        return "；".join(
            f"{labels.DETAIL_KEYS(key)}：{self[key]}" for key in self.raw if key not in self.used
        )

    def technical(self) -> str:
        """Error texts and codes from the provider, for a tooltip."""
        return "；".join(str(self.raw[key]) for key in TECHNICAL if key in self.raw)

    def link(self) -> tuple[str | None, str]:
        """The call this detail names, and the words of the link to it."""
        for key, words in LINKS.items():
            if isinstance(self.raw.get(key), str):
                return self.raw[key], words
        return None, ""


def _plain(value: Any, _operators: Mapping[str, str]) -> str:
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def _targets(value: Any, operators: Mapping[str, str]) -> str:
    if isinstance(value, int):  # how many operators (the recovery alert)
        return f"{value}位"
    items = value if isinstance(value, list) else [value]
    return "、".join(labels.target_name(str(t), operators) for t in items)


def _operator(value: Any, operators: Mapping[str, str]) -> str:
    items = value if isinstance(value, list) else [value]
    return "、".join(operators.get(str(op), str(op)) for op in items)


def _table(table: labels.Labels) -> Callable[[Any, Mapping[str, str]], str]:
    return lambda value, _operators: table(value)


FORMATS: dict[str, Callable[[Any, Mapping[str, str]], str]] = {
    "line": _table(labels.LINES),
    "queue": _table(labels.QUEUES),
    "menu": _table(labels.MENUS),
    "choice": _table(labels.CHOICES),
    "type": _table(labels.CHOICES),
    "reason": lambda v, _: labels.reason(v),
    "status": _table(labels.STATUSES),
    "result": _table(labels.QUEUE_RESULTS),
    "source": _table(labels.SOURCES),
    "answered_by": _table(labels.ANSWERED_BY),
    "target": _targets,
    "operators": _targets,
    "ringing": _targets,
    "operator": _operator,
    "released": _operator,
    "digits": lambda v, _: keys(v),
    "slot": lambda v, _: f"{v}号键",
    "confidence": lambda v, _: percent(v),
    "duration": lambda v, _: seconds(v),
    "queue_time": lambda v, _: seconds(v),
    "seconds": lambda v, _: seconds(v),
    "charged": lambda v, _: seconds(v),
    "time_limit": lambda v, _: seconds(v),
    "last_seen": lambda v, _: labels.local_time(v),
}


def _join(*parts: str) -> str:
    return "，".join(p for p in parts if p)


def _round(d: Detail) -> str:
    return d.opt("offer", "第{}轮")


def _call_started(d: Detail) -> str:
    caller = d.opt("from", "来电号码 {}") or ("来电号码未显示" if d.raw.get("withheld") else "")
    d.skip("withheld")
    return _join(d.opt("line", "拨打{}"), caller, d.opt("to", "拨打的号码 {}"))


def _refused(d: Detail) -> str:
    if d.has("target"):
        return _join(f"{d['target']}没有按1接听", d.opt("digits", "按了{}"), _round(d))
    return _join(d["reason"], d.opt("slot", "{}"))


def _duty_dial_result(d: Detail) -> str:
    accepted = "已按1接听" if d.raw.get("accepted") else "没有按1接听"
    d.skip("accepted")
    return _join(d.opt("attempt", "第{}次"), d["status"], accepted, d.opt("duration", "通话{}"))


def _dial(d: Detail) -> str:
    d.skip("reservation")  # the minutes held for the call: the ledger's business
    return _join(d.opt("slot", "拨打{}亲人"), d.opt("to", "号码 {}"), d.opt("time_limit", "限时{}"))


SENTENCES: dict[str, Callable[[Detail], str]] = {
    "call_started": _call_started,
    "menu": lambda d: _join(f"播放{d['menu']}", d.opt("attempt", "第{}遍")),
    "digits": lambda d: d.opt("digits", "按了{}"),
    "speech": lambda d: _join(d.opt("text", "“{}”"), d.opt("confidence", "识别把握{}")),
    "invalid_input": lambda d: _join(
        d.opt("digits", "按了{}，没有对应的服务") or "没有听懂", d.opt("count", "第{}次")
    ),
    "choice": lambda d: _join(d.opt("menu", "在{}"), d.opt("choice", "选择{}"), d["slot"]),
    "service_request": lambda d: _join(d.opt("type", "登记{}"), d.opt("request_id", "服务单{}号")),
    "callback_requested": lambda d: d.opt("request_id", "服务单{}号要求回电"),
    "hotline_callback_placed": lambda d: _join(
        d.opt("request_id", "回电服务单{}号的老人"), d.opt("attempt", "第{}次")
    ),
    "outbound_to_person": lambda d: _join(
        d.opt("care_call", "关怀电话{}号") or d.opt("request", "回电服务单{}号"),
        "老人转接工作人员",
    ),
    "to_operator": lambda d: d.opt("reason", "原因：{}"),
    "enqueued": lambda d: _join(d.opt("queue", "进入{}"), d.opt("position", "排第{}位")),
    "queue_exit": lambda d: _join(
        d.opt("queue", "离开{}"), d["result"], d.opt("queue_time", "排队{}")
    ),
    "routed_to_sos": lambda d: "服务热线来电转入紧急求助",
    "offered": lambda d: _join(d.opt("operators", "呼叫{}"), _round(d)),
    "widened": lambda d: _join(d.opt("operators", "加呼{}"), _round(d)),
    "leg_machine": lambda d: _join(
        d.opt("target", "{}的电话"), d.opt("answered_by", "由{}接听，已挂断")
    ),
    "operator_answered": lambda d: _join(d.opt("target", "{}已接起，正在听来电介绍"), _round(d)),
    "accepted": lambda d: _join(d.opt("target", "{}按1接听"), _round(d)),
    "refused": _refused,
    "leg_ended": lambda d: _join(d.opt("target", "{}的电话结束"), d["status"], _round(d)),
    "leg_failed": lambda d: d.opt("target", "未能呼叫{}"),
    "offer_expired": lambda d: _join(_round(d), "无人按1接听，来电重新排队"),
    "bridged": lambda d: _join("来电已接入通话", _round(d)),
    "bridge_failed": lambda d: _join("未能把来电接入通话", _round(d)),
    "completed": lambda d: d.opt("target", "与{}的通话结束") or "通话结束",
    "abandoned": lambda d: _join(d["reason"], d.opt("released", "释放{}")),
    "escalated": lambda d: d.opt("ringing", "同时呼叫{}") or "暂时没有可呼叫的人",
    "duty_stage": lambda d: d.opt("ringing", "同时呼叫{}") or "暂时没有可呼叫的人",
    "operator_away": lambda d: d.opt("operator", "{}连续未接，已设为离开"),
    "sms_pending": lambda d: d.opt("to", "准备发短信给 {}"),
    "sms_sent": lambda d: _join(d.opt("to", "已发短信给 {}"), d.opt("reason", "内容：{}")),
    "sms_failed": lambda d: d.opt("to", "短信未能发给 {}"),
    "callback_placed": lambda d: d.opt("attempt", "第{}次回拨"),
    "callback_answered": lambda d: d.opt("attempt", "第{}次回拨已接通"),
    "callback_machine": lambda d: d.opt("attempt", "第{}次回拨由答录机接听"),
    "callback_unanswered": lambda d: _join(d.opt("attempt", "第{}次回拨未接通"), d["status"]),
    "callback_failed": lambda d: d.opt("attempt", "第{}次回拨未能发起"),
    "callback_gave_up": lambda d: d.opt("attempts", "已回拨{}次都未接通，请主管跟进"),
    "callback_impossible": lambda d: d["reason"],
    "callback_of": lambda d: "回拨之前挂断的紧急求助",
    "duty_dial": lambda d: _join(
        d.opt("numbers", "拨打值班电话 {}") or "拨打值班电话",
        d.opt("attempt", "第{}次"),
        d.opt("reason", "原因：{}"),
    ),
    "duty_dial_result": _duty_dial_result,
    "dial": _dial,
    "dial_result": lambda d: _join(
        d.opt("slot", "{}亲人"),
        d["status"],
        d.opt("duration", "通话{}"),
        d.opt("charged", "扣除{}"),
    ),
    "minutes_charged": lambda d: _join(d.opt("seconds", "扣除{}"), d["source"]),
    "status": lambda d: _join(d["status"], d.opt("duration", "时长{}")),
    "unknown_line": lambda d: d.opt("to", "拨打的号码 {} 不是本中心的线路"),
    "queue_unavailable": lambda d: d.opt("queue", "{}暂时不可用，改拨值班电话"),
    "fallback_answered": lambda d: _join("主系统出错，由备用地址接听", d["line"]),
}


def _entry(table: labels.Labels, kind: str, sentence: str, d: Detail) -> Entry:
    link, words = d.link()
    text = "；".join(part for part in (sentence, d.rest()) if part)
    # An unknown kind reads as 未知事件; its code stays in the tooltip for whoever fixes it.
    technical = "；".join(t for t in (d.technical(), "" if kind in table else kind) if t)
    return Entry(table(kind), text, link, words, technical)


def event_entry(event: Mapping[str, Any], operators: Mapping[str, str]) -> Entry:
    """One timeline event (``kind`` and decoded ``detail``) as a title and a sentence."""
    d = Detail(event.get("detail"), operators)
    sentence = SENTENCES.get(event["kind"], lambda _d: "")(d)
    return _entry(labels.EVENTS, event["kind"], sentence, d)


def alert_entry(alert: Mapping[str, Any], operators: Mapping[str, str]) -> Entry:
    """A supervisor alert: its kind and its details."""
    return _entry(labels.ALERT_KINDS, alert["kind"], "", Detail(alert.get("detail"), operators))
