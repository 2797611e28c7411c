"""The seven canonical emotions and every database's own codes for them.

Canonical order (index = class id everywhere in the project):
angry, disgust, fear, happy, neutral, sad, surprise.
"""

from fer.core.schema import EMOTIONS

EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}

# KDEF file names: <session><sex><id:02d><emotion><angle>.JPG, e.g. AF01ANS.JPG
KDEF_EMOTIONS = {"AF": "fear", "AN": "angry", "DI": "disgust", "HA": "happy",
                 "NE": "neutral", "SA": "sad", "SU": "surprise"}
KDEF_ANGLES = ("FL", "HL", "S", "HR", "FR")  # full left, half left, straight, ...
KDEF_FRONTAL = "S"

# CK+ Emotion/*.txt codes; 2 (contempt) is not one of the seven: the database's
# `class_policy` skips (default) or rejects it.
CK_EMOTIONS = {0: "neutral", 1: "angry", 2: "contempt", 3: "disgust", 4: "fear",
               5: "happy", 6: "sad", 7: "surprise"}

# JAFFE file names: <subject>.<emotion><n>.<id>.tiff, e.g. KA.AN1.39.tiff
JAFFE_EMOTIONS = {"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy",
                  "NE": "neutral", "SA": "sad", "SU": "surprise"}
JAFFE_SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")

# Folder names accepted for `<label>/<file>` layouts (PFA set, actors, generic): the
# emotions, the KDEF and JAFFE codes (lower case) and common synonyms.
LABEL_ALIASES = {**{e: e for e in EMOTIONS},
                 **{code.lower(): e for code, e in {**KDEF_EMOTIONS, **JAFFE_EMOTIONS}.items()},
                 "anger": "angry", "mad": "angry", "disgusted": "disgust", "afraid": "fear",
                 "fearful": "fear", "scared": "fear", "happiness": "happy", "joy": "happy",
                 "sadness": "sad", "surprised": "surprise"}

# FER2013 csv `emotion` column.
FER2013_EMOTIONS = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad",
                    5: "surprise", 6: "neutral"}


def lookup_label(name: str) -> str | None:
    """The canonical emotion a folder/label name stands for, or None if it is outside the
    seven (contempt, a typo, ...): the caller applies the database's class policy."""
    return LABEL_ALIASES.get(str(name).strip().lower())
