"""pixsim7/backend/main/services/provider/__init__.py (it re-exports base.py; the plugin imports base.py)."""
