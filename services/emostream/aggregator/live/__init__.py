"""Live push: one Redis subscription fanned out to WebSocket and SSE clients."""
