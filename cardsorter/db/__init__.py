"""Reference database: build, check, load, delta and merge."""
