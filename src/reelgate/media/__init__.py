"""Reading and writing media with PyAV (its wheels carry FFmpeg and libx264): no system ffmpeg needed."""
