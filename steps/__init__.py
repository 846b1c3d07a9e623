"""One module per MLproject entry point, and nothing else: each is a thin CLI over demand and plumbing."""
