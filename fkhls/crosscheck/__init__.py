"""Compare the engines: golden parity, scenario-by-scenario cross-check, its report."""
