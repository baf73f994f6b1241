"""Every sentence the system speaks, in one place. Short sentences, plain words.

Each spoken sentence is a ``Prompt``: a string with a stable key, the constant's name in lower
case (``SOS_CONNECTING`` -> ``sos_connecting``). The key names its recordings in dialect
(``PROMPTS_DIR/fuzhou/sos_connecting.wav``). A prompt with ``{fields}`` (a name, a number,
minutes) can be recorded when its fixed words form one run, with the fields before or after
it: the recording carries the fixed words and the fields are spoken in Mandarin.

For elderly callers: a menu offers at most four choices, the label before the key
(「想聊聊天，请按3。」), and every sentence stays short enough to hold in mind
(tests/test_prompts.py measures them as spoken).
"""

from __future__ import annotations

import string
from typing import Any

# What the fixed words of a prompt may contain and still count as no words at all.
PUNCTUATION = frozenset("，。！？、：；“”‘’（）,.!?:; \n")


class Prompt(str):
    """A sentence the system speaks, with its stable key (set from the constant's name)."""

    key: str
    staff: bool

    def __new__(cls, text: str, *, staff: bool = False) -> Prompt:
        prompt = super().__new__(cls, text)
        prompt.key = ""
        prompt.staff = staff
        return prompt

    def format(self, **values: Any) -> Filled:  # type: ignore[override]
        """The prompt with its named fields filled in; it remembers where it came from."""
        return Filled(self, values)

    @property
    def parts(self) -> list[tuple[str, str | None]]:
        """The template as (fixed words, field name or None) pairs, in order."""
        return [(text, name) for text, name, _, _ in string.Formatter().parse(self)]

    @property
    def recordable(self) -> bool:
        """True when one recording can carry all the fixed words (fields only at the edges)."""
        return len(_worded(self.parts)) == 1

    @property
    def recorded_text(self) -> str:
        """What a recording of this prompt says: the prompt, or the fixed words of a template."""
        worded = _worded(self.parts)
        return worded[0].lstrip("，、：,: ") if len(worded) == 1 else str(self)


class Filled(str):
    """A prompt with its fields filled in (``Prompt.format``)."""

    prompt: Prompt
    values: dict[str, Any]

    def __new__(cls, prompt: Prompt, values: dict[str, Any]) -> Filled:
        filled = super().__new__(cls, str.format(prompt, **values))
        filled.prompt = prompt
        filled.values = values
        return filled

    def pieces(self) -> list[tuple[bool, str]]:
        """(is the recorded part?, text) in order; only for a recordable prompt.

        The fields and any punctuation around them are joined into the spoken pieces.
        """
        pieces: list[tuple[bool, str]] = []
        spoken = ""
        for text, name in self.prompt.parts:
            if _has_words(text):
                if spoken:
                    pieces.append((False, spoken))
                pieces.append((True, text))
                spoken = ""
            else:
                spoken += text
            if name is not None:
                spoken += str(self.values[name])
        if spoken.strip("".join(PUNCTUATION)):
            pieces.append((False, spoken))
        return pieces


def _has_words(text: str) -> bool:
    return any(ch not in PUNCTUATION for ch in text)


def _worded(parts: list[tuple[str, str | None]]) -> list[str]:
    return [text for text, _ in parts if _has_words(text)]


# -- SOS line ---------------------------------------------------------------------------
SOS_CONNECTING = Prompt("正在为您接通救援人员。请不要挂机。")
SOS_WAIT = Prompt("救援人员马上接听。请不要挂机。")
QUEUE_POSITION = Prompt("您排在第{position}位。")
DUTY_CONNECTING = Prompt("正在为您接通值班人员。请不要挂机。")
DUTY_RETRY = Prompt("值班电话还没有接通。正在继续接通，请不要挂机。")
NO_DUTY_PHONES = Prompt("正在继续为您接通，请不要挂机。")

# -- people waiting for a person --------------------------------------------------------
OPERATOR_CONNECTING = Prompt("现在为您找工作人员。请不要挂机。")
SERVICE_WAIT = Prompt("工作人员马上接听，请稍等。")
SYSTEM_TROUBLE = Prompt("对不起，系统出了点问题。正在为您接通值班人员。请不要挂机。")
UNKNOWN_LINE = Prompt("您好，现在为您找工作人员。请不要挂机。")
CONNECTING_OPERATOR = Prompt("正在为您接通工作人员。请不要挂机。")
OPERATOR_BUSY_RETRY = Prompt("工作人员正忙。正在继续为您接通。请不要挂机。")

# -- any menu ---------------------------------------------------------------------------
MENU_AGAIN = Prompt("我再说一遍。")
# After a menu met silence twice: the next sentence (OPERATOR_CONNECTING) says what happens.
NO_INPUT = Prompt("没有听到您的选择。")
OFFER_OPERATOR = Prompt("找工作人员，请按0。")
CALLER_NUMBER_HIDDEN = Prompt("看不到您的电话号码。")

# -- service hotline --------------------------------------------------------------------
HOTLINE_GREETING_KNOWN = Prompt("{title}，您好！这里是智慧养老服务热线。")
HOTLINE_GREETING_UNKNOWN = Prompt("您好！这里是智慧养老服务热线。")
# Four choices, the label before the key; silence repeats the menu, then reaches a person.
HOTLINE_MENU = Prompt("紧急情况，请按1。要人上门帮忙，请按2。想聊聊天，请按3。找工作人员，请按0。")
HOTLINE_SPEECH_HINT = Prompt("也可以直接说出来。")
INVALID_KEY = Prompt("您按的是{key}。")
KEY_NOT_IN_MENU = Prompt("这个键不对。")
INVALID_KEY_UNREADABLE = Prompt("您按的键不对。")
SPEECH_NOT_UNDERSTOOD = Prompt("对不起，没有听清您说的话。")
SERVICE_REGISTERED_LIFE_CARE = Prompt("好的，已经为您登记上门帮忙。")
SERVICE_REGISTERED_HOUSEKEEPING = Prompt("好的，已经为您登记打扫家务。")
SERVICE_REGISTERED_COMPANIONSHIP = Prompt("好的，已经为您登记找人聊天。")
SERVICE_CALL_TODAY = Prompt("工作人员今天会给您打电话。和您商量怎么安排。")
SERVICE_NEXT_STEP = Prompt("现在就找工作人员，请按1。等我们回电话，请按2。")
NO_CALLBACK = Prompt("我们没法给您回电话。")
CALLBACK_PROMISED = Prompt("好的，我们会尽快给您回电话。祝您身体健康，再见。")

# What the caller hears when a service request is taken, by request type.
SERVICE_REGISTERED = {
    "life_care": SERVICE_REGISTERED_LIFE_CARE,
    "housekeeping": SERVICE_REGISTERED_HOUSEKEEPING,
    "companionship": SERVICE_REGISTERED_COMPANIONSHIP,
}
# Names of the service request types for staff (pages, console); callers hear the above.
SERVICE_NAMES = {
    "life_care": "生活照料服务",
    "housekeeping": "家政服务",
    "companionship": "精神关怀服务",
}

# -- shortcut (family) line -------------------------------------------------------------
SHORTCUT_HELLO = Prompt("亲情电话。")
SHORTCUT_MENU_INTRO = Prompt("您要打给哪位亲人？")
SHORTCUT_MENU_ITEM = Prompt("{label}，请按{slot}。")
SHORTCUT_CONNECTING = Prompt("正在为您接通{label}。")
SHORTCUT_NOT_REGISTERED = Prompt("您还没有开通亲情电话。")
SHORTCUT_NO_CONTACTS = Prompt("您还没有设置亲情号码。")
SHORTCUT_EMPTY_SLOT = Prompt("{slot}号键还没有存电话。")
# Hong Kong, Macao and Taiwan are named; "内地" (never "国内") for mainland China.
SHORTCUT_HONG_KONG = Prompt("{label}的电话是香港号码。")
SHORTCUT_MACAO = Prompt("{label}的电话是澳门号码。")
SHORTCUT_TAIWAN = Prompt("{label}的电话是台湾号码。")
SHORTCUT_NOT_MAINLAND = Prompt("{label}的电话不是内地号码。")
SHORTCUT_MAINLAND_ONLY = Prompt("亲情电话只能打内地号码。")
SHORTCUT_QUOTA_USED_UP = Prompt(
    "您本月的免费通话用完了。下个月1号会再送给您。紧急情况请按SOS键。SOS键随时都能用。"
)
SHORTCUT_QUOTA_LOW = Prompt("本月免费通话还剩{minutes}。")
SHORTCUT_CALL_LIMIT = Prompt("这次最多能打{minutes}。")
SHORTCUT_CUT_OFF = Prompt("到时间会自动挂断。")
SHORTCUT_OFFER_MENU = Prompt("要找其他亲人，请按1。")
SHORTCUT_BUSY = Prompt("{label}的电话正在通话中。")
SHORTCUT_NO_ANSWER = Prompt("{label}暂时没有接听。")
SHORTCUT_FAILED = Prompt("{label}的电话暂时打不通。")
SHORTCUT_RETRY_MENU = Prompt("再打一次，请按1。找其他亲人，请按2。")
CALL_ENDED = Prompt("通话结束，祝您身体健康，再见。")

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


# -- calling back an SOS caller who hung up ---------------------------------------------
SOS_CALLBACK_GREETING = Prompt(
    "您好，这里是紧急救援中心。刚才您打了求助电话。现在为您接通工作人员。请不要挂机。"
)

# -- the people who answer (what they hear before accepting; always Mandarin) -----------
# Why the call came, said first (see ``callflows.operator.Reason``).
WHISPER_SOS = Prompt("紧急求助！", staff=True)
WHISPER_HOTLINE_KEY = Prompt("热线按1紧急求助！", staff=True)
WHISPER_SAID = Prompt("热线说了“{words}”！", staff=True)
WHISPER_CALLBACK = Prompt("回拨紧急求助。", staff=True)
WHISPER_HOTLINE = Prompt("服务热线来电。", staff=True)
WHISPER_ASKED = Prompt("服务热线转人工。", staff=True)
WHISPER_NO_INPUT = Prompt("按键超时转人工。", staff=True)
WHISPER_INVALID_INPUT = Prompt("按错键三次转人工。", staff=True)
WHISPER_AFTER_SERVICE_REQUEST = Prompt("热线登记服务后转人工。", staff=True)
WHISPER_NO_CALLBACK_NUMBER = Prompt("热线登记服务，来电号码未显示。", staff=True)
WHISPER_UNKNOWN_LINE = Prompt("未知线路来电。", staff=True)
WHISPER_SHORTCUT_ASKED = Prompt("亲情电话转人工。", staff=True)
WHISPER_QUOTA_USED_UP = Prompt("本月免费分钟已用完。", staff=True)
WHISPER_NOT_REGISTERED = Prompt("亲情电话，号码未开通。", staff=True)
WHISPER_NO_CONTACTS = Prompt("亲情电话，还没有设置亲情号码。", staff=True)
WHISPER_EMPTY_SLOT = Prompt("亲情电话，按的键没有存号码。", staff=True)
WHISPER_FOREIGN_NUMBER = Prompt("亲情电话，亲人不是内地号码。", staff=True)
# Who is calling.
WHISPER_RESIDENT = Prompt("{name}，{age}岁，{community}。地址：{address}。", staff=True)
WHISPER_MEDICAL = Prompt("病史：{notes}。", staff=True)
WHISPER_ALONE = Prompt("独居老人。", staff=True)
WHISPER_DIALECT = Prompt("讲{dialect}。", staff=True)
WHISPER_UNKNOWN = Prompt("来电号码{number}，未登记。", staff=True)
WHISPER_WITHHELD = Prompt("来电号码未显示。", staff=True)
WHISPER_ACCEPT = Prompt("接听请按1。", staff=True)
WHISPER_TAKEN = Prompt("这个来电已经由其他同事接听，谢谢。", staff=True)
WHISPER_NOT_ACCEPTED = Prompt("没有确认接听，来电将转给其他同事。", staff=True)
ACCEPTED_CONNECTING = Prompt("正在接通来电，请稍候。", staff=True)
WHISPER_HELPER_LINE = Prompt("助老员专线来电。", staff=True)
WHISPER_FOLLOWUP = Prompt("服务回访，老人还需要帮忙。", staff=True)

# -- helpers (助老员): dispatch calls, their own line, arrival checks (always Mandarin) ------
# What each need is called aloud (a task's ``need``).
NEED_WORDS = {
    "life_care": "生活照料",
    "housekeeping": "家政服务",
    "companionship": "聊天陪伴",
    "emergency": "紧急上门",
}
HELPER_EMERGENCY = Prompt("紧急任务！", staff=True)
HELPER_TASK = Prompt("{title}，{place}，需要{need}。", staff=True)
HELPER_OFFER_KEYS = Prompt("接单请按1，不能去请按2。", staff=True)
HELPER_NO_KEY = Prompt("没有收到按键，任务将派给其他助老员。", staff=True)
HELPER_ACCEPTED = Prompt("已接单，谢谢您。地址已发短信，请尽快上门。", staff=True)
HELPER_DECLINED = Prompt("好的，任务将派给其他助老员。", staff=True)
HELPER_TASK_GONE = Prompt("这个任务已经不需要您了，谢谢。", staff=True)
HELPER_LINE_COUNT = Prompt("您有{count}个任务。", staff=True)
HELPER_LINE_NONE = Prompt("您现在没有任务。找工作人员请按0。", staff=True)
HELPER_LINE_TASK = Prompt("第{n}个，{title}，{place}，{need}。", staff=True)
HELPER_LINE_KEYS = Prompt("已到达请按1，已完成请按2，不能完成请按3，找工作人员请按0。", staff=True)
HELPER_ARRIVED = Prompt("已记录到达。", staff=True)
HELPER_DONE = Prompt("已记录完成，辛苦了。", staff=True)
HELPER_GIVEN_BACK = Prompt("好的，任务已退回，重新派单。", staff=True)
HELPER_LINE_END = Prompt("没有其他任务了，再见。", staff=True)
HELPER_ARRIVAL_QUESTION = Prompt("您到达{title}家了吗？到了请按1，还在路上请按2。", staff=True)
HELPER_ON_THE_WAY = Prompt("好的，请尽快赶到。", staff=True)
# An unknown number on the helpers' line may be a resident: spoken to as a caller.
HELPER_LINE_UNKNOWN = Prompt("这是助老员专线。为您转接工作人员。")

# -- calling a resident after a visit (follow-up, 回访) ------------------------------------
FOLLOWUP_GREETING = Prompt("{title}您好。")
FOLLOWUP_VISIT = Prompt("助老员今天来做了{need}。")
FOLLOWUP_KEYS = Prompt("满意，请按1。不满意，请按2。还要人帮忙，请按0。")
FOLLOWUP_THANKS = Prompt("谢谢您！祝您身体健康，再见。")
FOLLOWUP_SORRY = Prompt("对不起！我们会尽快联系您，再见。")
FOLLOWUP_NO_KEY = Prompt("没有听到按键。我们改天再问候您，再见。")

WHISPER_CARE_HELP = Prompt("关怀电话，老人说不舒服！", staff=True)
WHISPER_CARE_SILENT = Prompt("关怀电话，老人没有回答。", staff=True)
WHISPER_CARE_CHAT = Prompt("关怀电话，老人想聊聊天。", staff=True)
WHISPER_CALLBACK_REQUESTED = Prompt("热线登记后要求回电。", staff=True)

# -- care calls (关怀电话): the centre calls a resident every day ---------------------------
CARE_GREETING = Prompt("{title}，早上好！")
CARE_GREETING_LATER = Prompt("{title}，您好！")
CARE_WHO = Prompt("我是服务中心的小禾。")
CARE_QUESTION = Prompt("您今天身体好吗？")
CARE_KEYS = Prompt("身体好，请按1。不舒服，请按2。想聊聊天，请按3。")
CARE_FINE = Prompt("太好了！祝您身体健康，明天再给您打电话。")
CARE_TO_PERSON = Prompt("别着急，现在为您找工作人员。请不要挂机。")
CARE_CHAT_TASK = Prompt("好的，会有助老员来陪您聊天。")
CARE_SILENT = Prompt("没有听到您的回答。现在为您找工作人员。请不要挂机。")
# An operator's call back to a hotline caller who asked for one.
HOTLINE_CALLBACK_GREETING = Prompt(
    "您好，这里是服务热线。您刚才要我们回电话。现在为您接通工作人员。"
)

DIALECT_NAMES = {"fuzhou": "福州话", "minnan": "闽南话", "cantonese": "粤语", "hakka": "客家话"}

# -- texts to emergency contacts (not spoken) -------------------------------------------
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

SMS_TASK_OFFER = (
    "【智慧养老派单】{number}号任务：{name}，{place}，需要{need}。请接听派单电话，按1接单。"
)
SMS_TASK_ACCEPTED = "【智慧养老派单】您已接{number}号任务：{name}，{place}，需要{need}。"
SMS_HELPER_COMING = "【智慧养老呼叫中心】助老员{helper}正在赶往{name}家，请保持电话畅通。"
SMS_TASK_UNACCEPTED = (
    "【智慧养老派单】{number}号任务（{name}，{need}）{minutes}分钟无人接单，请安排。"
)
SMS_TASK_NO_HELPER = (
    "【智慧养老派单】{number}号任务（{name}，{need}）：{community}没有能做的助老员，请安排。"
)
SMS_TASK_NOT_ARRIVED = (
    "【智慧养老派单】{number}号紧急任务：助老员{helper}仍未到达{name}家，请跟进。"
)

SMS_CARE_UNREACHABLE = "【智慧养老呼叫中心】今天联系不上{name}，请您方便时问候一下。"


def minutes_text(seconds: int) -> str:
    """Free time as said aloud: ``12分钟``, or ``不到1分钟``."""
    return f"{seconds // 60}分钟" if seconds >= 60 else "不到1分钟"


def catalogue(*, staff: bool = False) -> list[Prompt]:
    """Every prompt callers hear (or, with ``staff``, every prompt at all), in file order."""
    return [p for p in _PROMPTS if staff or not p.staff]


def by_key(key: str) -> Prompt | None:
    """The prompt with this key, if any."""
    return next((p for p in _PROMPTS if p.key == key), None)


def _name_prompts() -> list[Prompt]:
    found = []
    for name, value in globals().items():
        if isinstance(value, Prompt):
            value.key = name.lower()
            found.append(value)
    return found


_PROMPTS = _name_prompts()
