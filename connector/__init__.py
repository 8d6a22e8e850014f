"""karla-connector engine."""
