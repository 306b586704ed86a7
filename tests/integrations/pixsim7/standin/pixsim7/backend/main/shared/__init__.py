"""pixsim7/backend/main/shared/__init__.py (its logging and auth exports are not used by the plugin)."""
