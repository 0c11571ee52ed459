"""Cameras as data (issue 35): the registry model, its compacted topic and per-camera status."""
