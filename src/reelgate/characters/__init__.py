"""Characters: a subject taken from an uploaded clip (a few key frames and a name) that later videos refer to."""
