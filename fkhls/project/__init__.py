"""The hls4ml project: export, the manifest of what was really built, and readers of its files."""
