"""File storage for finished videos and thumbnails, addressed by `YYYYMMDD/<32 hex>.<ext>` keys."""
