"""The aggregator's Redis state: events, per-face tracks, windows and sessions."""
