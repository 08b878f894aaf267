"""Sentences and prosody that carry emotion in the synthetic corpora.

Emotion is in the words (templates with emotion-bearing words) and in the
prosody (pitch, pitch range, rate, volume with per-utterance jitter; happy and
angry overlap on purpose). A share of emotional turns uses lexically neutral
sentences, so that only the prosody tells, as in real acted speech.

The prosody table and templates are those of the project's feasibility
measurements, before the generators were written.

Example
-------
>>> import random
>>> rng = random.Random(0)
>>> text = sentence("ang", rng)
>>> isinstance(text, str) and len(text.split()) > 2
True
>>> sorted(prosody("sad", rng))
['pitch', 'pitch_range', 'rate', 'volume']
"""

import re

_W = str.split
NAMES = _W("john mary sarah david emma peter lucy tom anna mark linda paul kate james "
           "rachel simon laura daniel helen george")
PEOPLE = ["my brother", "my sister", "the manager", "our neighbor", "the teacher",
          "my friend", "the doctor", "his wife", "her husband", "the kids", "the team",
          "my parents", "the landlord", "the driver", "the waiter", "my boss", "the nurse",
          "my cousin", "the coach", "our guests"]
NOUNS = _W("car house letter meeting dinner report phone garden train ticket movie concert "
           "package job exam wedding party trip dog cat window door computer bill flight "
           "hotel bicycle kitchen garage contract presentation painting camera laptop guitar "
           "jacket suitcase apartment office restaurant holiday interview project invoice "
           "schedule order delivery lesson game book song photo picture present message email "
           "recipe boat shoes")
TIMES = ["today", "yesterday", "this morning", "last night", "on monday", "on tuesday",
         "on wednesday", "on thursday", "on friday", "on saturday", "on sunday", "next week",
         "last week", "at noon", "tonight", "this weekend", "in the afternoon", "after lunch",
         "before dinner", "last month", "this evening", "tomorrow"]
PLACES = ["at the office", "in the kitchen", "at the station", "in the park", "downtown",
          "at school", "at home", "in the city", "at the airport", "at the hospital",
          "in the garden", "at the store", "at the bank", "in the library", "at the beach",
          "on the bus", "at the hotel", "in the village", "at the market", "at the gym"]
SLOTS = {
    "s": NAMES + PEOPLE, "n": NOUNS, "t": TIMES, "p": PLACES,
    "aa": _W("ridiculous unacceptable outrageous stupid disgusting pathetic insulting "
             "infuriating absurd useless"),
    "av": ["broke", "ruined", "stole", "destroyed", "smashed", "wrecked", "lost", "damaged",
           "threw away", "ignored"],
    "ha": _W("wonderful amazing fantastic brilliant lovely beautiful perfect delightful "
             "awesome marvelous"),
    "hv": _W("won finished fixed found loved enjoyed booked bought passed celebrated"),
    "sa": _W("heartbreaking hopeless miserable depressing painful gloomy tragic unbearable "
             "lonely empty"),
    "sv": ["lost", "missed", "sold", "cancelled", "gave away", "left behind", "forgot",
           "abandoned", "buried", "wasted"],
    "na": _W("available scheduled ready finished open closed delayed printed confirmed updated"),
    "nv": _W("moved checked sent received signed cleaned opened closed ordered printed"),
}

TEMPLATES = {
    "ang": [
        "i am furious that {s} {av} the {n} again", "this is {aa} why did {s} {av} my {n}",
        "how dare you touch my {n} {p}", "i hate the way {s} talks to me {p}",
        "stop lying to me about the {n}", "that {n} is completely {aa} and i am sick of it",
        "get out of my {n} right now", "i told you a hundred times to leave the {n} alone",
        "{s} {av} the {n} {t} and i am so angry", "what the hell were you thinking {t}",
        "i am fed up with this {aa} {n}", "you never listen to me and i am done with you",
        "{s} yelled at me {p} {t} and it was {aa}", "don't you dare blame me for the {n}",
        "this {aa} service makes me want to scream",
        "i will never forgive {s} for what happened {t}",
    ],
    "hap": [
        "i am so happy that {s} {hv} the {n} {t}", "this is {ha} we {hv} the {n}",
        "what a {ha} {n} thank you so much", "i love the {n} you gave me {t}",
        "{s} {hv} the {n} and we are thrilled", "congratulations on the {n} that is {ha}",
        "we had so much fun {p} {t}", "i can not wait to celebrate with {s} {t}",
        "the {n} was absolutely {ha}", "best day ever {s} {hv} the {n}",
        "i am delighted to see you {p}", "everything went {ha} with the {n} {t}",
        "we laughed all evening {p} it was great",
        "i feel wonderful and so excited about the {n}", "you made my day {s} that is {ha}",
        "hooray we finally {hv} the {n}",
    ],
    "sad": [
        "i miss {s} so much since {t}", "it is {sa} that {s} {sv} the {n}",
        "i feel so lonely {p} without {s}", "i am sorry i {sv} the {n} {t}",
        "{s} cried all night after the {n}", "nothing will ever be the same after {t}",
        "we {sv} the {n} and now everything is {sa}", "i cannot stop crying about the {n}",
        "the {n} reminds me of {s} and it hurts", "it was a {sa} goodbye {p} {t}",
        "i wish {s} were still here with me", "my heart is broken since {s} {sv} the {n}",
        "i feel empty and tired all the time", "we will never see {s} again",
        "the funeral was {t} {p} and it was {sa}", "i regret everything about the {n}",
    ],
    "neu": [
        "{s} {nv} the {n} {t}", "the {n} is {na} {p}", "please send the {n} to {s} {t}",
        "the {n} will be {na} {t}", "{s} is waiting {p}", "we need to discuss the {n} {t}",
        "i will check the {n} {p} {t}", "the meeting about the {n} starts {t}",
        "{s} put the {n} {p}", "can you bring the {n} {t}", "the {n} costs twenty dollars",
        "{s} usually takes the bus {t}", "the {n} was {nv} {p}", "i think the {n} is {p}",
        "{s} asked about the {n} {t}", "the store near the {n} opens {t}",
    ],
}

# Prosody per acted emotion: (mean, std) of eSpeak NG parameters.
PROSODY = {
    "neu": dict(pitch=(45, 8), pitch_range=(35, 10), rate=(165, 15), volume=(100, 12)),
    "sad": dict(pitch=(32, 8), pitch_range=(15, 8), rate=(130, 15), volume=(80, 12)),
    "hap": dict(pitch=(66, 10), pitch_range=(78, 12), rate=(188, 18), volume=(120, 18)),
    "ang": dict(pitch=(58, 10), pitch_range=(66, 15), rate=(200, 20), volume=(145, 20)),
}
CLIP = dict(pitch=(5, 99), pitch_range=(0, 100), rate=(95, 260), volume=(50, 200))
EXCLAIM_PROB = {"ang": 0.75, "hap": 0.75, "neu": 0.05, "sad": 0.05}

# IEMOCAP labels beyond the four classes borrow the closest acted emotion.
# "xxx" (no annotator agreement) picks one of the four at random.
ACTED_AS = {"neu": "neu", "hap": "hap", "exc": "hap", "sur": "hap", "ang": "ang",
            "fru": "ang", "sad": "sad", "fea": "sad", "oth": "neu", "dis": "ang"}
NEUTRAL_TEXT_SHARE = 0.3


def acted_emotion(label, rng):
    """The emotion (of neu/hap/sad/ang) that a turn labelled ``label`` is acted with."""
    if label == "xxx":
        return rng.choice(sorted(PROSODY))
    return ACTED_AS[label]


def sentence(emotion, rng, neutral_share=NEUTRAL_TEXT_SHARE):
    """A lower-case sentence for ``emotion`` (lexically neutral with ``neutral_share``)."""
    lexical = emotion
    if emotion != "neu" and rng.random() < neutral_share:
        lexical = "neu"
    template = rng.choice(TEMPLATES[lexical])
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(SLOTS[m.group(1)]), template)


def prosody(emotion, rng):
    """eSpeak NG parameters for ``emotion``, jittered per utterance."""
    out = {}
    for key, (mean, std) in PROSODY[emotion].items():
        low, high = CLIP[key]
        out[key] = min(max(rng.gauss(mean, std), low), high)
    return out


def punctuation(emotion, rng):
    """'!' (exclamation intonation) or '.', more often '!' for aroused emotions."""
    return "!" if rng.random() < EXCLAIM_PROB[emotion] else "."
