"""The SimPy twin of the network."""

from promotwin.twin.run import RunResult, simulate

__all__ = ["RunResult", "simulate"]
