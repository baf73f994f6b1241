"""How the pages name things, in Chinese: the one table of every code staff may see.

Each table is a :class:`Labels`: a mapping for selects and loops, and callable to name one
code. A code missing from its table reads as 未知… on the page and raises the warning
:class:`UnlabelledCode`, which the tests turn into an error (``filterwarnings = error``), so
a new code written by the engine fails a test instead of reaching a page in English.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from callflows.prompts import DIALECT_NAMES
from ivr.importer import HELPER_SKILL_NAMES
from ivr.quota import LOCAL


class UnlabelledCode(UserWarning):
    """A code reached a page without a Chinese name in this module."""


class Labels(Mapping[str, str]):
    """The Chinese names of one family of codes."""

    def __init__(self, what: str, unknown: str, names: Mapping[str, str]) -> None:
        self.what = what
        self.unknown = unknown
        self._names = dict(names)

    def __getitem__(self, code: str) -> str:
        return self._names[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __call__(self, code: Any) -> str:
        """The name of ``code`` ('' for none); an unknown code reads as ``unknown`` and warns."""
        if code is None or code == "":
            return ""
        try:
            return self._names[code]
        except (KeyError, TypeError):
            warnings.warn(
                f"no Chinese name for the {self.what} {code!r}: add it to admin/labels.py",
                UnlabelledCode,
                stacklevel=2,
            )
            return self.unknown

    def only(self, *codes: str) -> Labels:
        """The same names for some of the codes (a select that offers fewer choices)."""
        return Labels(self.what, self.unknown, {code: self._names[code] for code in codes})


LINES = Labels(
    "line",
    "未知线路",
    {
        "sos": "SOS紧急呼叫",
        "hotline": "服务热线",
        "shortcut": "亲情电话",
        "helper": "助老员专线",
        "unknown": "未知线路",
    },
)
# A hotline call that became an SOS call (key 1, or "救命"): counted with the SOS calls.
HOTLINE_SOS = "热线转紧急"
OUTCOMES = Labels(
    "call outcome",
    "未知结果",
    {
        "answered": "已接听",
        "abandoned": "未接通挂机",
        "escalated": "已升级",
        "duty": "转值班电话",
        "no_answer": "亲属未接听",
        "quota_refused": "免费时长用完",
    },
)
# The provider's call statuses.
STATUSES = Labels(
    "call status",
    "未知状态",
    {
        "completed": "已结束",
        "busy": "忙线",
        "failed": "失败",
        "no-answer": "无人接听",
        "canceled": "已取消",
        "in-progress": "通话中",
        "ringing": "振铃",
        "queued": "排队",
        "initiated": "发起",
    },
)
# Operator presence; a StrEnum member looks up the same as its value.
OPERATOR_STATES = Labels(
    "operator state",
    "未知状态",
    {
        "offline": "离线",
        "available": "空闲",
        "ringing": "振铃",
        "on_call": "通话中",
        "wrap_up": "整理",
        "away": "离开",
    },
)
# A call's state in the switchboard, and how hard it tries for an SOS call.
CALL_STATES = Labels(
    "switchboard call state",
    "未知状态",
    {
        "waiting": "排队中",
        "offered": "振铃中",
        "accepted": "正在接通",
        "connected": "通话中",
        "done": "已结束",
        "gone": "已挂断",
        "left": "转值班电话",
    },
)
STAGES = Labels("escalation stage", "未知阶段", {"escalated": "紧急升级", "duty": "值班电话"})
QUEUES = Labels("queue", "未知队列", {"sos": "紧急求助队列", "service": "服务热线队列"})
REQUEST_STATUSES = Labels(
    "service request status", "未知状态", {"new": "新登记", "assigned": "已派单", "done": "已完成"}
)
# What a hotline caller chose; the services are also the types of service requests.
CHOICES = Labels(
    "hotline choice",
    "未知选项",
    {
        "sos": "紧急求助",
        "life_care": "生活照料",
        "housekeeping": "家政服务",
        "companionship": "聊天陪伴",
        "operator": "人工服务",
        "repeat": "重听",
    },
)
SERVICE_TYPES = CHOICES.only("life_care", "housekeeping", "companionship")
MENUS = Labels(
    "menu",
    "未知菜单",
    {"hotline": "服务热线菜单", "shortcut": "亲情电话菜单", "shortcut_digit": "亲情电话按键"},
)
# The whisper names the same dialects (one source: the prompts).
DIALECTS = Labels("dialect", "其他方言", {**DIALECT_NAMES, "mandarin": "普通话"})
SKILLS = Labels(
    "skill",
    "其他方言",
    {"sos": "紧急求助", "service": "服务热线", "supervisor": "主管", **DIALECTS},
)
# What a helper (助老员) can be sent to do; the roster CSV may use the same names.
HELPER_SKILLS = Labels("helper skill", "未知技能", HELPER_SKILL_NAMES)
# Tasks (派单, data/tasks.py): a task's need is one of the helpers' skills.
TASK_NEEDS = HELPER_SKILLS
TASK_STATES = Labels(
    "task state",
    "未知状态",
    {
        "pending": "待派单",
        "offered": "已派出/待接单",
        "accepted": "已接单",
        "arrived": "已到达",
        "done": "已完成",
        "cancelled": "已取消",
    },
)
TASK_PRIORITIES = Labels("task priority", "未知优先级", {"emergency": "紧急", "normal": "普通"})
TASK_SOURCES = Labels(
    "task source",
    "未知来源",
    {"hotline": "热线", "console": "接线台", "sos": "SOS", "care": "关怀电话"},
)
# Each offer of a task to a helper (``task_offers.state``).
OFFER_STATES = Labels(
    "task offer state",
    "未知结果",
    {
        "ringing": "呼叫中",
        "answered": "已接听，未按键",
        "accepted": "接单",
        "declined": "不能去",
        "no_answer": "未接听",
        "machine": "答录机接听",
        "failed": "未能拨通",
        "expired": "超时收回",
    },
)
FOLLOWUP_STATES = Labels(
    "follow-up state",
    "未知状态",
    {"scheduled": "待回访", "calling": "回访中", "answered": "已回访", "unreached": "未联系上"},
)
FOLLOWUP_ANSWERS = Labels(
    "follow-up answer",
    "未知回答",
    {"satisfied": "满意", "unsatisfied": "不满意", "again": "还要人帮忙"},
)
# Why a task is on the supervisors' list after its follow-up call.
ATTENTION = Labels(
    "attention",
    "未知原因",
    {"unsatisfied": "老人不满意", "again": "老人还要人帮忙", "unreached": "回访未联系上"},
)
# How a helper reported arriving or finishing.
TASK_VIA = Labels(
    "task report", "未知方式", {"arrival_check": "到达确认电话", "helper_line": "助老员专线"}
)
TASK_EVENTS = Labels(
    "task event",
    "未知事件",
    {
        "created": "创建任务",
        "offered": "派给助老员",
        "sms_sent": "短信已发",
        "sms_failed": "短信失败",
        "declined": "助老员不能去",
        "no_answer": "助老员未接",
        "machine": "答录机接听",
        "failed": "派单电话失败",
        "expired": "派单超时收回",
        "accepted": "助老员接单",
        "helper_told": "已发任务详情",
        "new_round": "新一轮派单",
        "no_helper": "无助老员可派",
        "unaccepted": "无人接单",
        "redispatch": "重新派单",
        "call_failed": "电话未能拨出",
        "arrival_check": "到达确认电话",
        "on_the_way": "助老员在路上",
        "not_arrived": "助老员未到达",
        "arrived": "已到达",
        "done": "已完成",
        "given_back": "助老员退回任务",
        "cancelled": "任务已取消",
        "followup_scheduled": "安排回访",
        "followup_call": "回访电话",
        "followup_answered": "老人接听回访",
        "followup_answer": "回访结果",
        "followup_unanswered": "回访未接通",
        "followup_unreached": "回访未联系上",
        "attention_cleared": "主管已处理",
    },
)
# Care calls (关怀电话, data/care.py): a day's call to a resident and its timeline.
CARE_STATES = Labels(
    "care call state",
    "未知状态",
    {
        "scheduled": "待拨打",
        "calling": "拨打中",
        "retry": "待重拨",
        "fine": "身体好",
        "needs_help": "需要帮助",
        "chat": "想聊天",
        "needs_check": "需核实",
        "unreachable": "联系不上",
        "skipped": "已跳过",
    },
)
CARE_EVENTS = Labels(
    "care event",
    "未知事件",
    {
        "planned": "安排关怀电话",
        "call_placed": "拨出电话",
        "answered": "老人接听",
        "skipped": "不用拨打",
        "fine": "身体好",
        "needs_help": "需要帮助",
        "chat": "想聊天",
        "needs_check": "需核实",
        "retry": "未接通，稍后重拨",
        "unreachable": "联系不上",
        "call_failed": "电话未能拨出",
        "sms_sent": "短信已发",
        "sms_failed": "短信失败",
        "unreachable_handled": "已通知家属和助老员",
    },
)
# Why a care call reached nobody: the provider's status, or what the engine saw.
CARE_UNANSWERED = Labels(
    "care call status",
    "未知状态",
    {**STATUSES, "machine": "答录机接听", "failed": "未能拨通", "no_report": "没有收到通话结果"},
)
# A care schedule's weekdays (``mon;thu``), in the order of the week.
WEEKDAYS = Labels(
    "weekday",
    "未知日子",
    {
        "mon": "周一",
        "tue": "周二",
        "wed": "周三",
        "thu": "周四",
        "fri": "周五",
        "sat": "周六",
        "sun": "周日",
    },
)
REASONS = Labels(
    "reason",
    "未知原因",
    {
        # why a caller went to a person (the whisper says the same, callflows/operator.py)
        "sos_key": "紧急求助",
        "hotline_key": "热线按1紧急求助",
        "said": "热线说了求救的话",
        "callback": "回拨紧急求助",
        "asked": "老人要求转人工",
        "shortcut_asked": "亲情电话转人工",
        "no_input": "按键超时转人工",
        "invalid_input": "多次按错键",
        "after_service_request": "登记服务后转人工",
        "no_callback_number": "登记服务，来电号码未显示",
        "unknown_line": "拨打的号码不是本中心线路",
        "helper_line": "助老员专线来电",
        "followup": "服务回访，老人还需要帮忙",
        "care_help": "关怀电话，老人说不舒服",
        "care_silent": "关怀电话，老人没有回答",
        "care_chat": "关怀电话，老人想聊聊天",
        "callback_requested": "热线登记后要求回电",
        # why the family line could not dial
        "not_registered": "号码未开通亲情电话",
        "no_contacts": "没有设置亲情号码",
        "empty_slot": "这个键没有设置亲人",
        "foreign_number": "亲人号码不是内地号码",
        "quota_used_up": "本月免费时长已用完",
        # why a caller left the line, or what a text was about
        "queue_unavailable": "排队系统不可用",
        "hung_up_waiting": "老人排队时挂断",
        "hung_up": "老人挂断",
        "hung_up_before_bridge": "接通前老人挂断",
        "no caller number": "没有来电号码，无法回拨",
        "escalated": "紧急求助升级",
        "abandoned": "紧急求助老人挂断",
        "operator_away": "接线员连续未接",
        "missed calls": "接线员连续未接",
        # what a text about a task (派单) was for (queue_workers/tasks.py)
        "offer": "派单通知",
        "accepted": "接单后的任务详情",
        "family": "告知家属助老员在路上",
        "task_unaccepted": "任务无人接单",
        "task_no_helper": "无助老员可派",
        "task_not_arrived": "助老员未到达",
        # why a day's care call was not placed (data/care.py ``skip``)
        "called_today": "今天已来电",
        "not_scheduled": "已不需要",
    },
)
# Who settled the minutes of a family call.
SOURCES = Labels(
    "settlement source",
    "未知来源",
    {
        "dial_action": "拨号结束时结算",
        "leg_status": "亲人通话结束时结算",
        "provider": "向运营商查询后结算",
        "expired": "预留超时后结算",
    },
)
# The provider's QueueResult when a caller leaves its queue.
QUEUE_RESULTS = Labels(
    "queue result",
    "未知结果",
    {
        "bridged": "已接通",
        "bridging-in-process": "正在接通",
        "hangup": "老人挂断",
        "leave": "离开排队",
        "redirected": "转到下一步",
        "redirected-from-bridged": "接通后转到下一步",
        "queue-full": "队列已满",
        "error": "出错",
        "system-error": "系统出错",
    },
)
# The provider's answering-machine detection.
ANSWERED_BY = Labels(
    "answering machine result",
    "无法判断",
    {
        "human": "真人",
        "unknown": "无法判断",
        "machine_start": "答录机",
        "machine_end_beep": "答录机",
        "machine_end_silence": "答录机",
        "machine_end_other": "答录机",
        "fax": "传真机",
    },
)
# The phones an offer rings: ``op:<id>``, ``sup:<number>``, ``duty:<number>``.
TARGETS = Labels(
    "leg target", "未知号码", {"op": "接线员", "sup": "值班主管电话", "duty": "值班电话"}
)
EVENTS = Labels(
    "call event",
    "未知事件",
    {
        "call_started": "来电",
        "menu": "菜单",
        "digits": "按键",
        "speech": "说话",
        "choice": "选择",
        "invalid_input": "无效输入",
        "service_request": "登记服务",
        "callback_requested": "要求回电",
        "to_operator": "转人工",
        "enqueued": "进入排队",
        "queue_exit": "离开排队",
        "routed_to_sos": "热线转紧急",
        "offered": "分配给接线员",
        "widened": "扩大呼叫",
        "ringing": "接线员振铃",
        "leg_machine": "答录机接听",
        "operator_answered": "接线员摘机",
        "accepted": "接听",
        "refused": "拒接/拒绝",
        "no_answer": "接线员未接",
        "leg_ended": "呼叫结束",
        "leg_failed": "呼叫失败",
        "offer_expired": "分配超时收回",
        "offer_failed": "转接失败",
        "bridged": "接通",
        "bridge_failed": "接通失败",
        "completed": "通话结束",
        "abandoned": "来电挂机",
        "escalated": "紧急升级",
        "duty_stage": "加呼值班电话",
        "operator_away": "接线员设为离开",
        "sms_pending": "准备短信",
        "sms_sent": "短信已发",
        "sms_failed": "短信失败",
        "callback_placed": "回拨",
        "callback_answered": "回拨接通",
        "callback_machine": "回拨遇答录机",
        "callback_unanswered": "回拨未接",
        "callback_failed": "回拨失败",
        "callback_gave_up": "回拨放弃",
        "callback_impossible": "无法回拨",
        "callback_of": "回拨来源",
        "duty_dial": "转值班电话",
        "duty_dial_result": "值班电话结果",
        "dial": "拨打亲属",
        "dial_result": "亲属通话结果",
        "minutes_charged": "扣除时长",
        "status": "状态回调",
        "unknown_line": "未知号码",
        "queue_unavailable": "排队系统不可用",
        "fallback_answered": "备用地址接听",
        "helper_unknown": "未登记号码打助老员专线",
        "helper_line": "助老员来电",
        "followup_of": "回访转人工",
        "outbound_to_person": "中心去电转人工",
        "hotline_callback_placed": "热线回电",
    },
)

# What a supervisor alert (table ``alerts``) is about.
ALERT_KINDS = Labels(
    "alert kind",
    "未知警报",
    {
        "sos_callback_unanswered": "回拨紧急求助无人接听",
        "sos_callback_abandoned": "回拨后老人又挂断",
        "sos_abandoned_no_number": "紧急求助挂断且无来电号码",
        "ledger_reservation_unsettled": "通话分钟未能结算",
        "operator_away": "接线员连续未接已设为离开",
        "no_sos_operator": "没有可接紧急呼叫的接线员",
        "callback_failed": "回拨失败",
        "duty_unanswered": "值班电话无人接听",
        "bridge_failed": "接通失败",
        "sos_fallback": "紧急求助由备用地址接听（请核实值班电话已接通）",
        "redis_recovered": "排队系统数据丢失后，已从数据库恢复排队来电和接线员状态",
        "task_unaccepted": "任务无人接单",
        "task_no_helper": "无助老员可派",
        "task_not_arrived": "助老员未到达",
        "care_unreachable": "关怀电话联系不上",
        "resident_inactive": "老人多日无联系",
    },
)

# The details of events and alerts, where no sentence says them (see admin/timeline.py).
DETAIL_KEYS = Labels(
    "detail",
    "其他",
    {
        "line": "线路",
        "from": "来电",
        "to": "被叫",
        "withheld": "隐藏号码",
        "queue": "队列",
        "position": "排位",
        "digits": "按键",
        "text": "内容",
        "confidence": "识别把握",
        "choice": "选择",
        "operators": "接线员",
        "operator": "接线员",
        "offer": "轮次",
        "status": "状态",
        "duration": "时长",
        "reason": "原因",
        "slot": "快捷键",
        "time_limit": "限时",
        "attempt": "第几次",
        "reservation": "预留编号",
        "attempts": "已回拨次数",
        "menu": "菜单",
        "result": "结果",
        "queue_time": "排队",
        "numbers": "号码",
        "request_id": "服务单",
        "type": "类型",
        "count": "次数",
        "charged": "扣除",
        "seconds": "时长",
        "source": "来源",
        "target": "呼叫",
        "ringing": "呼叫",
        "released": "释放接线员",
        "answered_by": "接听方",
        "accepted": "已按1接听",
        "calls": "来电",
        "callbacks": "待回拨",
        "helper": "助老员",
        "task": "任务",
        "resident": "老人",
        "care_call": "关怀电话",
        "request": "服务单",
        "last_seen": "最后联系",
    },
)


def reason(code: Any) -> str:
    """Why something happened; ``said:<words>`` (words taken for an emergency) quotes them."""
    if isinstance(code, str) and code.startswith("said:"):
        return f"热线说了“{code.removeprefix('said:')}”"
    return REASONS(code)


def line_name(call: Mapping[str, Any]) -> str:
    """The line a call is counted under: a hotline call that became an SOS says so."""
    if call.get("became_sos"):
        return HOTLINE_SOS
    return LINES(call.get("line"))


def target_name(target: str, operators: Mapping[str, str]) -> str:
    """``op:op01`` -> 接线员 陈晓燕; ``sup:+86…`` -> 值班主管电话 +86…; ``duty:+86…``."""
    kind, _, value = target.partition(":")
    if kind == "op":
        return f"{TARGETS['op']} {operators.get(value, value)}"
    return f"{TARGETS(kind)} {value}".strip()


def answerer(operator_id: str | None, operators: Mapping[str, str]) -> str:
    """Who answered a call (``calls.operator_id``): an operator's name, or the phone."""
    if not operator_id:
        return ""
    if ":" in operator_id:
        return target_name(operator_id, operators)
    if operator_id == "duty":  # a duty phone's acceptance recorded without its number
        return TARGETS["duty"]
    return operators.get(operator_id, operator_id)


def care_schedule(schedule: str | None) -> str:
    """A care schedule in Chinese: 每天, 不打, 每周一、周四."""
    if schedule == "daily":
        return "每天"
    if not schedule or schedule == "none":
        return "不打"
    return "每" + "、".join(WEEKDAYS(day) for day in schedule.split(";"))


def local_time(stored: str | None, with_date: bool = True) -> str:
    """A stored UTC time in Shanghai time, to the second."""
    if not stored:
        return ""
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(LOCAL)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
