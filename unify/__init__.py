"""unify: every call, text, email and chat of a customer, in one history."""

__version__ = "0.1.0"
