"""The SimPy twin of the network."""

from twin.run import RunResult, simulate

__all__ = ["RunResult", "simulate"]
