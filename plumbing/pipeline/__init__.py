"""Running the pipeline's steps: each in a nested run, or reused from a finished run with the same content
key (keys, cache), one pipeline at a time per experiment (lock). Used by `main` and `tune`."""
