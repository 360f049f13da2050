"""The test layer: real servers for tests, benchmarks and the demo (`servers`). No product module imports it."""
