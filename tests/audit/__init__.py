"""The cross-channel consistency audit."""
