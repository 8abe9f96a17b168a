"""The efficiency benchmark: inference speed and memory of every study model against the device's limit."""
