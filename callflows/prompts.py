"""Every sentence the system speaks, in one place. Short sentences, plain words."""

from __future__ import annotations

# -- SOS line ---------------------------------------------------------------------------
SOS_CONNECTING = "正在为您接通紧急救援，请不要挂机。"
SOS_WAIT = "您排在第{position}位。救援人员马上接听，请不要挂机。"
SOS_WAIT_FIRST = "救援人员马上接听，请不要挂机。"
DUTY_CONNECTING = "正在为您转接值班人员，请不要挂机。"
DUTY_RETRY = "值班电话暂时没有接通，正在继续为您接通，请不要挂机。"
NO_DUTY_PHONES = "正在继续为您接通，请不要挂机。"

# -- people waiting for an operator -----------------------------------------------------
OPERATOR_CONNECTING = "正在为您转接人工服务，请稍候。"
SERVICE_WAIT = "您排在第{position}位。工作人员马上为您服务，请稍候。"
SERVICE_WAIT_FIRST = "工作人员马上为您服务，请稍候。"
SYSTEM_TROUBLE = "对不起，系统出了点问题。正在为您转接值班人员，请不要挂机。"
UNKNOWN_LINE = "您好，正在为您转接工作人员，请稍候。"

# -- service hotline --------------------------------------------------------------------
HOTLINE_GREETING_KNOWN = "{title}，您好！这里是智慧养老服务热线。"
HOTLINE_GREETING_UNKNOWN = "您好！这里是智慧养老服务热线。"
HOTLINE_MENU = (
    "紧急求助，请按1。"
    "生活照料，请按2。"
    "家政服务，请按3。"
    "想找人聊聊天，请按4。"
    "人工服务，请按0。"
    "重听，请按星号键。"
    "您也可以直接说出您要办的事。"
)
HOTLINE_MENU_AGAIN = "我再说一遍。"
NO_INPUT_TO_OPERATOR = "没有听到您的选择。现在为您转接人工服务，请稍候。"
INVALID_KEY = "您按的是{key}，这个键没有对应的服务。"
INVALID_KEY_UNREADABLE = "您按的键没有对应的服务。"
SPEECH_NOT_UNDERSTOOD = "对不起，没有听清您说的话。"
TOO_MANY_INVALID = "现在为您转接人工服务，请稍候。"
SERVICE_REGISTERED = "好的，已为您登记{service}。工作人员会在今天之内给您打电话，和您商量具体安排。"
SERVICE_NEXT_STEP = "现在等人工服务，请按1。挂机等我们回电话，请按2，或者直接挂机。"
SERVICE_NO_CALLBACK_NUMBER = "因为看不到您的电话号码，现在为您转接人工服务，请稍候。"
CALLBACK_PROMISED = "好的，我们会尽快给您回电话。祝您身体健康，再见。"

# Spoken names of the hotline services (also used for the service request record).
SERVICE_NAMES = {
    "life_care": "生活照料服务",
    "housekeeping": "家政服务",
    "companionship": "精神关怀服务",
}

# -- shortcut (family) line -------------------------------------------------------------
SHORTCUT_HELLO = "亲情电话。"
SHORTCUT_MENU_INTRO = "请选择要联系的亲人。"
SHORTCUT_MENU_ITEM = "联系{label}，请按{slot}。"
SHORTCUT_MENU_OPERATOR = "人工服务，请按0。"
SHORTCUT_CONNECTING = "正在为您接通{label}，请稍候。"
SHORTCUT_NOT_REGISTERED = "您的电话还没有开通亲情电话服务。"
SHORTCUT_NO_CONTACTS = "您还没有设置亲情号码。"
SHORTCUT_EMPTY_SLOT = "{slot}号键还没有设置亲人的电话。"
SHORTCUT_FOREIGN = "{label}的电话不是国内号码。免费亲情电话只能打国内电话。"
SHORTCUT_QUOTA_USED_UP = (
    "您本月的免费通话时间已经用完了。下个月1号会重新送给您。紧急情况请按SOS键，SOS键随时都能用。"
)
SHORTCUT_QUOTA_LOW = "本月免费通话还剩{minutes}。"
SHORTCUT_CALL_LIMIT = "这次通话最多{minutes}，到时间会自动挂断。"
SHORTCUT_OFFER_OPERATOR = "需要人工服务，请按0。"
SHORTCUT_OFFER_MENU = "重新选择亲人，请按1。"
SHORTCUT_BUSY = "{label}的电话正在通话中。"
SHORTCUT_NO_ANSWER = "{label}暂时没有接听。"
SHORTCUT_FAILED = "{label}的电话暂时打不通。"
SHORTCUT_RETRY_MENU = "再打一次，请按1。联系其他亲人，请按2。人工服务，请按0。"
CALL_ENDED = "通话结束，祝您身体健康，再见。"
GOODBYE = "如果需要帮助，请再打过来。再见。"

# -- addressing callers -----------------------------------------------------------------
# Respectful titles by dialect and gender; "依伯/依姆" are how Fuzhou people address elders.
TITLES = {
    ("fuzhou", "M"): "依伯",
    ("fuzhou", "F"): "依姆",
    (None, "M"): "大爷",
    (None, "F"): "奶奶",
}
TITLE_UNKNOWN_GENDER = "老人家"
COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
)

KEY_NAMES = {"*": "星号键", "#": "井号键"}


def surname(name: str) -> str:
    """The family name of a Chinese full name (two characters for compound surnames)."""
    name = name.strip()
    for compound in COMPOUND_SURNAMES:
        if name.startswith(compound):
            return compound
    return name[:1]


def title_for(name: str, gender: str | None, dialect: str | None) -> str:
    """How to address an elder respectfully, e.g. ``陈依伯`` or ``王奶奶``."""
    gender = (gender or "").upper() or None
    if gender is None:
        return surname(name) + TITLE_UNKNOWN_GENDER
    title = TITLES.get(((dialect or "").lower(), gender)) or TITLES[(None, gender)]
    return surname(name) + title


def key_name(key: str) -> str:
    """How a key is spoken: ``5`` -> ``5号键``, ``*`` -> ``星号键``."""
    return KEY_NAMES.get(key, f"{key}号键")


# -- operators (what the person answering hears before accepting) -----------------------
CONNECTING_OPERATOR = "正在为您接通工作人员，请不要挂机。"
OPERATOR_BUSY_RETRY = "工作人员正忙，正在为您继续接通，请不要挂机。"
WHISPER_SOS = "紧急求助！"
WHISPER_HOTLINE = "服务热线来电。"
WHISPER_CALLBACK = "回拨紧急求助。"
WHISPER_RESIDENT = "{name}，{age}岁，{community}。地址：{address}。"
WHISPER_MEDICAL = "病史：{notes}。"
WHISPER_ALONE = "独居老人。"
WHISPER_DIALECT = "讲{dialect}。"
WHISPER_UNKNOWN = "来电号码{number}，未登记。"
WHISPER_WITHHELD = "来电号码未显示。"
WHISPER_ACCEPT = "接听请按1。"
WHISPER_TAKEN = "这个来电已经由其他同事接听，谢谢。"
WHISPER_NOT_ACCEPTED = "没有确认接听，来电将转给其他同事。"
WHISPER_DUTY = "值班电话。"
ACCEPTED_CONNECTING = "正在接通来电，请稍候。"
DIALECT_NAMES = {"fuzhou": "福州话", "minnan": "闽南话", "cantonese": "粤语", "hakka": "客家话"}

# -- calling back an SOS caller who hung up ---------------------------------------------
SOS_CALLBACK_GREETING = (
    "您好，这里是紧急救援中心。刚才您打了求助电话，现在为您接通工作人员，请不要挂机。"
)

# -- texts to emergency contacts --------------------------------------------------------
SMS_SOS_ESCALATED = (
    "【智慧养老呼叫中心】您的家人{name}于{time}拨打了SOS紧急求助电话，"
    "呼叫中心正在处理，请保持电话畅通。"
)
SMS_OPERATOR_AWAY = (
    "【智慧养老呼叫中心】接线员{name}连续{misses}次未接听来电，已被设为离开状态，请关注值班安排。"
)
SMS_SOS_ABANDONED = (
    "【智慧养老呼叫中心】您的家人{name}于{time}拨打了SOS紧急求助电话后挂断，"
    "呼叫中心正在回拨联系，请您也尽快与老人联系。"
)


def minutes_text(seconds: int) -> str:
    """Free time as said aloud: ``12分钟``, or ``不到1分钟``."""
    return f"{seconds // 60}分钟" if seconds >= 60 else "不到1分钟"
