"""pixsim7/backend/main/__init__.py."""
