"""HTTP routes: each parses, calls one core function and shapes the answer."""
