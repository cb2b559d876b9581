"""utjima (웃지마게임): a try-not-to-laugh video battle judged on each player's device.

Stages, one module each, read top to bottom:
data -> model -> train -> evaluate -> export -> judge -> server -> web.
"""

__version__ = "0.1.0"

# The 7 emotion classes, in the order of the model's `emotion_logits` (FER2013's order).
# model.json repeats this list; every other reader takes it from there.
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# Expressions the judge must never call a laugh (crying, fright, shock, disgust, anger): the
# hard negatives of training and the constraint of the `youden_laugh_like` threshold rule.
LAUGH_LIKE = ("sad", "fear", "surprise", "disgust", "angry")
