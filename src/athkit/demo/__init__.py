"""The ATH demo: the ATH Shop (a native-mode ATH service) and the runner behind ``ath demo``."""
