"""routechaos: a chaos test harness for LLM routes.

The import package is ``harness``; the distribution and command are ``routechaos``.
"""

__version__ = "0.1.0"
