"""relay: a deliverability and compliance gateway for outbound marketing mail."""

__version__ = "0.1.0"
__all__ = ["__version__"]
