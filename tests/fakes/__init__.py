"""Fake Garmin Connect and Strava servers for tests and benches, and the fixtures that start them.

Test modules import the fixtures they use from ``fakes.fixtures``.
"""
