"""The safety rules a complaint's text is searched with before any model reads it.

Anything that smells of danger is ``safety`` whatever a model would say (see
:mod:`cloud.feedback.classify`): the rules below, searched in the NFKC-normalised, lower-cased
text after the idioms that borrow a danger word have been blanked.
"""

from __future__ import annotations

import re

from cloud.feedback.extract import normalise

# (pattern, fault) — searched in the NFKC-normalised, lower-cased text; the first that matches
# names the danger
SAFETY_RULES: tuple[tuple[str, str | None], ...] = (
    # a residual-current device trips on current leaking to earth: a danger, but no overcurrent
    (
        r"(?:漏保|漏电保护|漏电开关).{0,4}(?:跳|掉)"
        r"|\b(?:rcd|rcbo|gfci|gfi|elcb)s?\s+(?:\w+\s+){0,2}(?:trip|pop)\w*"
        r"|\btrip\w*\s+(?:\w+\s+){0,3}(?:rcd|rcbo|gfci|gfi|elcb)s?\b",
        None,
    ),
    # a breaker or a fuse that trips, pops or blows: the unit draws too much current
    (
        r"跳闸|掉闸|(?:总闸|电闸|空开|空气开关|断路器).{0,4}(?:跳|掉)|保险丝.{0,4}(?:烧|熔|断)"
        r"|trip\w*\W+(?:\w+\W+){0,3}breaker|breaker\W+(?:\w+\W+){0,3}trip"
        r"|\b(?:pop|blow|blew)\w*\s+(?:\w+\s+){0,2}breakers?\b"
        r"|\bbreakers?\s+(?:\w+\s+){0,3}(?:pop\w*|cuts?\s+out|goes\s+off|went\s+off)"
        r"|\bfuses?\s+(?:\w+\s+){0,2}(?:blow\w*|blew|pop\w*)|\b(?:blow\w*|blew)\s+(?:\w+\s+)?fuses?\b",
        "overcurrent",
    ),
    (
        r"漏电|触电|被电|电了一下|电得|电击|麻手|麻麻|手[臂指]?(?:都|还|有点|一)?发?麻(?!烦)|击穿",
        None,
    ),
    # a casing or a pipe that is live, and a missing or failed earth
    (
        r"(?:外壳|机壳|壳体|铁壳|金属|铜管|管子|面板|机身|外机|内机|支架).{0,4}"
        r"带电(?!源|辅|池|子|脑|视|话|线|加热)|电笔.{0,6}亮"
        r"|接地线.{0,4}(?:未接|没接|没有接|断|脱|松)|(?:未|没|没有)接地(?!气)"
        r"|接地电阻.{0,8}(?:超标|超出|超过|不合格)"
        r"|\b(?:casing|chassis|case|housing|frame|cabinet|enclosure|metalwork|grille|pipework)"
        r"\s+(?:(?:is|was|are|were|became|becomes|gets|got|being|still)\s+)?(?:live|energi[sz]ed)\b"
        r"|\b(?:live|energi[sz]ed)\s+(?:metal\s+)?(?:casing|chassis|case|housing|frame|cabinet"
        r"|enclosure|grille)\b"
        r"|\b(?:earth|ground)(?:ing)?\s+(?:wire|lead|cable|connection|conductor)\s+(?:\w+\s+){0,2}"
        r"(?:(?:not|never|\w+n['’]t)\s+(?:\w+\s+)?(?:connected|attached|fitted|installed)"
        r"|disconnected|detached|loose|broken|missing)\b"
        r"|\b(?:no|missing|broken|loose|disconnected)\s+(?:earth|ground)(?:ing)?\s+"
        r"(?:wire|lead|cable|connection|conductor)\b"
        r"|(?:\bnot|n['’]t|\bnever)\s+(?:been\s+)?(?:earthed|grounded)\b(?!\s+in\b)"
        r"|\b(?:earth|ground)\s+(?:fault|leakage)|\b(?:leakage|touch)\s+current\b",
        None,
    ),
    (
        r"(?:电线|线头|铜线|导线).{0,3}裸露|裸露.{0,3}(?:电线|线头|铜线|导线)"
        r"|\bexposed\s+(?:live\s+|bare\s+|copper\s+)?wir\w*|\bbare\s+(?:live\s+)?wires?\b",
        None,
    ),
    (r"冒烟|冒.{0,2}烟|烟雾|黑烟|白烟", None),
    (r"焦味|焦糊|糊味|烧焦|烧糊|烧黑|烧毁|烧熔|烧了|熏黑", None),
    # burning and ignition, as the English rules have burn* and ignit*
    (r"起火|着火|失火|火花|火星|打火|明火|火苗|燃爆|自燃|燃烧|起燃|引燃|点燃", None),
    # an electric arc: the blue flash and crackle before a fire
    (
        r"电弧|拉弧|起弧|\barc(?:ing|ed)\b|\barc\s+(?:flash|fault|mark|burn)\w*"
        r"|\belectric(?:al)?\s+arcs?\b|\bblue\s+(?:flash(?:es)?|sparks?|sparking)\b",
        None,
    ),
    (r"发烫|烫手|烫得|熔化", None),
    (r"爆炸|炸裂|爆裂|炸了", None),
    (r"掉落|掉下|坠落|砸", None),
    (r"漏氟|冷媒.{0,2}泄|制冷剂.{0,2}泄|氟利昂.{0,2}泄|漏冷媒|漏制冷剂", None),
    (
        r"electric\w*\s+shock|\bshock(?:s|ed)?\b|electrocut\w*|\btingl\w*"
        r"|\bshocking\s+(?:me|us|him|her|them|people|someone|anyone)\b"
        r"|\bzapped\s+(?:me|us|him|her|them|my|our)\b|\bgot\s+zapped\b",
        None,
    ),
    (r"\bsmok\w*|\bfumes?\b", None),
    (r"\bburn\w*|\bscorch\w*|\bcharred\b|\bsinge\w*", None),
    (r"\bfire\b|\bflames?\b|\bignit\w*|\bsparks?\b|\bsparking\b", None),
    (r"\bexplo(?:de|ded|des|ding|sion|sions)\b|\bmelt\w*", None),
    (
        r"\bfell\b|\bfalling\b|\bfall(?:s|en)?\s+(?:off|down)|\bdropped\s+(?:onto|on|off|from)"
        r"|came\s+off\s+the\s+wall|\bhit\s+(?:my|his|her|someone|somebody)\b",
        None,
    ),
    (r"refrigerant\s+(?:leak\w*|escap\w*)|leak\w*\s+(?:of\s+)?refrigerant|gas\s+leak\w*", None),
    (r"too\s+hot\s+to\s+touch|\boverheat\w*", None),
)
# Idioms that borrow a danger word to say something else (anger, surprise, a hot room, a
# brand's name); blanked before the rules are searched, so that a danger named elsewhere in
# the same text still counts.
IDIOMS: tuple[str, ...] = (
    r"气炸",
    r"砸.{0,4}(?:招牌|牌子|口碑|饭碗)",
    r"\bshocked\s+(?:how|that|to\s+(?:see|find|hear|learn|read|discover)\b|at\s+(?:how|what"
    r"|the\s+(?:price|cost|bill|noise|quality|service|state|lack|level|amount|response|way)))",
    r"\b(?:what|such|quite)\s+a\s+shock\b|\bcame\s+as\s+a\s+shock\b|\bsticker\s+shock\b",
    r"\b(?:i|we|everyone|everybody|the\s+kids|my\s+family)(?:['’](?:m|re)|\s+(?:am|are|is|was|were))?"
    r"\s+(?:all\s+|literally\s+|just\s+)?(?:melting|burning\s+up)\b",
    r"(?:^|[,.;:!?。])\s*melting\s+(?:here|in\s+here|upstairs|downstairs|in\s+(?:this|the)\s+heat)\b",
)
_SAFETY = tuple((re.compile(p, re.IGNORECASE), f) for p, f in SAFETY_RULES)
_IDIOM = re.compile("|".join(f"(?:{p})" for p in IDIOMS), re.IGNORECASE)


def prepare(text: str) -> str:
    return normalise(text).lower()


def safety_rule(text: str) -> tuple[str, str | None] | None:
    """The danger the text names (the matched words, and a fault when the words imply one).

    >>> safety_rule("插头发烫")
    ('发烫', None)
    >>> safety_rule("Every time it starts, the breaker trips.")
    ('breaker trip', 'overcurrent')
    >>> safety_rule("家里空开老是掉"), safety_rule("the breaker keeps popping")
    (('空开老是掉', 'overcurrent'), ('breaker keeps popping', 'overcurrent'))
    >>> safety_rule("制冷效果下降") is None
    True

    An idiom that borrows a danger word is not a danger; the rules alone would take it for one:

    >>> idioms = ["Honestly shocked how loud it is", "We're melting in the bedroom",
    ...           "Melting here, the AC does nothing", "等了三天没人来，气炸了"]
    >>> [_first_rule(prepare(t)) for t in idioms]
    [('shocked', None), ('melting', None), ('melting', None), ('炸了', None)]
    >>> [safety_rule(t) for t in idioms]
    [None, None, None, None]
    >>> [safety_rule(t)[0] for t in ("It shocked me", "Got a shock off the grille",
    ...                              "Shocked how hot the plug got, it is melting")]
    ['shocked', 'shock', 'melting']
    """
    return _first_rule(_IDIOM.sub(" ", prepare(text)))


def _first_rule(prepared: str) -> tuple[str, str | None] | None:
    for pattern, fault in _SAFETY:
        m = pattern.search(prepared)
        if m:
            return m.group(0), fault
    return None
