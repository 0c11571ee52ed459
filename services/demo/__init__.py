"""The local demo and the embedded servers it (and the tests) start."""

from emostream.services.demo.embedded import RedisServer, ServiceProcess, TansuBroker, settings_env

__all__ = ["RedisServer", "ServiceProcess", "TansuBroker", "settings_env"]
