"""pixsim7/backend/__init__.py."""
