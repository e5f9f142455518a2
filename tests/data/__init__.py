"""Test data and the fake-record factory shared by the leaderboard tests."""
