"""Aggregator service: emotion events to Redis, served over HTTP."""

from emostream.services.aggregator.api import create_app
from emostream.services.aggregator.consumer import EventConsumer

__all__ = ["EventConsumer", "create_app"]
