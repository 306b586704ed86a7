"""pixsim7/backend/main/services/__init__.py."""
