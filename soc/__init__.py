"""SOC Command Center: an AI SOC analyst that turns floods of log lines into incidents."""

__version__ = "0.1.0"
