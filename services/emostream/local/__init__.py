"""Local servers (a Kafka-protocol broker, Redis) for the demo, the tests and the benchmarks."""

from emostream.local.servers import RedisServer, ServiceProcess, TansuBroker, settings_env

__all__ = ["RedisServer", "ServiceProcess", "TansuBroker", "settings_env"]
