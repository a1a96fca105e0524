"""Metrics (`metrics.py`), structured logs (`logging.py`) and the HTTP middleware that feeds both (`http.py`)."""
