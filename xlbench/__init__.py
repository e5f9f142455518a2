"""xlbench: a benchmark suite and leaderboard harness for cross-lingual speech emotion recognition."""

__version__ = "0.1.0"
