"""Aggregator service: emotion events to Redis, served over HTTP."""

from emostream.aggregator.api import create_app
from emostream.aggregator.consumer import EventConsumer

__all__ = ["EventConsumer", "create_app"]
