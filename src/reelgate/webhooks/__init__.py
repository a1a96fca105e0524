"""Webhooks: `video.completed` / `video.failed` events sent to a key's endpoints, durably, Standard-Webhooks signed."""
