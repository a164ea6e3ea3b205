"""The page handlers, one module per page (their routes: alertd/http/web.py)."""
