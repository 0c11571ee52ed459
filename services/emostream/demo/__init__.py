"""The local demo: a broker, Redis and the three services on one machine."""
