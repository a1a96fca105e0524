"""What reelgate knows about the chat clients that talk to it."""
