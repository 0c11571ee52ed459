"""The seven FER2013 emotion classes, in logit order (no heavy imports: services share it)."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
