"""Chat clients: their background requests and the prompts that must stay videos."""
