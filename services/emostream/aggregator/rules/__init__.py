"""Alert rules: their model, their Redis store and the engine that evaluates them."""
