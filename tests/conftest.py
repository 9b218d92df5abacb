# Load vecx's pytest plugin (the `backend` fixture) also when vecx is not installed,
# e.g. with PYTHONPATH=. on the GPU machine. Installed, the entry point loads it under
# the same name, so it is registered once.
pytest_plugins = ["vecx.testing"]
