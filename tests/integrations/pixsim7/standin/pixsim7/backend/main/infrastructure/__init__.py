"""pixsim7/backend/main/infrastructure/__init__.py."""
