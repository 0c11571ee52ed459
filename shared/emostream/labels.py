"""The seven FER2013 emotion classes, in logit order (no heavy imports: services share it).

``EmotionLabel`` is the one type of a class name; ``EMOTIONS`` lists its values in order. Models
carry their own label names (``Preprocessing.labels``), which default to these.
"""

from typing import Literal, get_args

EmotionLabel = Literal["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
EMOTIONS: tuple[EmotionLabel, ...] = get_args(EmotionLabel)

# The smoother abstains below its confidence: a stable label is an emotion or this.
UNCERTAIN: Literal["uncertain"] = "uncertain"
StableLabel = EmotionLabel | Literal["uncertain"]
