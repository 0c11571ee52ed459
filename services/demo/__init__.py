"""The local demo and the embedded servers it (and the tests) start."""

from emostream.services.demo.embedded import RedisServer, TansuBroker

__all__ = ["RedisServer", "TansuBroker"]
