"""Kafka plumbing shared by the services: clients, security, record fetching, dead letters."""
