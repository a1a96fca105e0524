"""Generation backends: who makes the video. See `base.Backend`."""
