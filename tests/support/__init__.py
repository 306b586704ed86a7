"""Helpers shared by the tests: job envelopes, images, catalogs, real servers."""
