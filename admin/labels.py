"""How the pages name things, in Chinese."""

from __future__ import annotations

from datetime import datetime

from ivr.quota import LOCAL

LINES = {"sos": "SOS紧急呼叫", "hotline": "服务热线", "shortcut": "亲情电话", "unknown": "未知线路"}
OUTCOMES = {
    "answered": "已接听",
    "abandoned": "未接通挂机",
    "escalated": "已升级",
    "duty": "转值班电话",
    "no_answer": "亲属未接听",
    "quota_refused": "免费时长用完",
}
STATUSES = {
    "completed": "已结束",
    "busy": "忙线",
    "failed": "失败",
    "no-answer": "无人接听",
    "canceled": "已取消",
    "in-progress": "通话中",
    "ringing": "振铃",
    "queued": "排队",
    "initiated": "发起",
}
# Operator presence; a StrEnum member looks up the same as its value.
OPERATOR_STATES = {
    "offline": "离线",
    "available": "空闲",
    "ringing": "振铃",
    "on_call": "通话中",
    "wrap_up": "整理",
    "away": "离开",
}
EVENTS = {
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
    "routed_to_sos": "转紧急救援",
    "offered": "分配给接线员",
    "ringing": "接线员振铃",
    "operator_answered": "接线员摘机",
    "accepted": "接线员接听",
    "refused": "拒接/拒绝",
    "no_answer": "接线员未接",
    "offer_expired": "分配超时收回",
    "offer_failed": "转接失败",
    "completed": "通话结束",
    "abandoned": "来电挂机",
    "escalated": "紧急升级",
    "sms_pending": "准备短信",
    "sms_sent": "短信已发",
    "sms_failed": "短信失败",
    "callback_placed": "回拨",
    "callback_answered": "回拨接通",
    "callback_unanswered": "回拨未接",
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
    "operator_away": "接线员设为离开",
}

# What a supervisor alert (table ``alerts``) is about; an unknown kind is shown as stored.
ALERT_KINDS = {
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
    "redis_recovered": "Redis数据丢失后已从数据库恢复排队来电和接线员状态",
}

DETAIL_KEYS = {
    "line": "线路",
    "from": "来电",
    "to": "被叫",
    "resident_id": "老人编号",
    "withheld": "隐藏号码",
    "queue": "队列",
    "position": "排位",
    "digits": "按键",
    "text": "内容",
    "confidence": "识别把握",
    "choice": "选择",
    "operators": "接线员",
    "operator": "接线员",
    "offer": "分配序号",
    "seq": "总序号",
    "status": "状态",
    "duration": "时长(秒)",
    "reason": "原因",
    "slot": "快捷键",
    "time_limit": "限时(秒)",
    "reservation": "预留编号",
    "attempt": "第几次",
    "attempts": "已回拨次数",
    "leg": "回拨通话",
    "menu": "菜单",
    "result": "结果",
    "queue_time": "排队(秒)",
    "numbers": "号码",
    "request_id": "服务单号",
    "type": "类型",
    "count": "次数",
    "charged": "扣除(秒)",
    "seconds": "秒数",
    "source": "来源",
    "dial_sid": "通话编号",
    "sequence": "序号",
    "timestamp": "时间戳",
    "callback_sid": "回拨编号",
    "call": "原通话",
    "released": "释放接线员",
    "error": "错误",
    "sid": "编号",
}


def local_time(stored: str | None, with_date: bool = True) -> str:
    """A stored UTC time in Shanghai time, to the second."""
    if not stored:
        return ""
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(LOCAL)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
