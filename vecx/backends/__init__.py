"""Built-in backends, one small class each. Importing this package imports no framework."""
