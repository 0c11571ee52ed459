"""emostream-client: typed events, webhook verification and the aggregator's API, without the
service (no torch, no OpenCV)."""

from emostream_client.client import ApiError, EmostreamClient, parse_sse
from emostream_client.models import (
    Alert,
    AlertSummary,
    EmotionChange,
    EmotionEvent,
    EmotionResult,
    Face,
    FaceBox,
    LiveMessage,
    ModelInfo,
    SmoothedEmotion,
)
from emostream_client.webhooks import InvalidSignature, parse_alert, verify

__all__ = [
    "Alert",
    "AlertSummary",
    "ApiError",
    "EmostreamClient",
    "EmotionChange",
    "EmotionEvent",
    "EmotionResult",
    "Face",
    "FaceBox",
    "InvalidSignature",
    "LiveMessage",
    "ModelInfo",
    "SmoothedEmotion",
    "parse_alert",
    "parse_sse",
    "verify",
]
