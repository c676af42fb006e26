"""The agent that runs on each product: sample, buffer, publish, raise safety events."""
